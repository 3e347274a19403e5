package report

import (
	"encoding/json"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/report/reporttest"
)

// validateJSON validates a rendered document against the schema.
func validateJSON(t *testing.T, doc []byte) {
	t.Helper()
	if err := reporttest.Validate(t, reporttest.Schema(t), doc); err != nil {
		t.Error(err)
	}
}

func TestSchemaValidatorCatchesMistakes(t *testing.T) {
	schema := reporttest.Schema(t)
	good, _ := JSON(sampleDoc())
	if err := reporttest.Validate(t, schema, good); err != nil {
		t.Fatalf("the sample fails: %v", err)
	}
	// Each mutation must be caught: the validator is not a rubber stamp.
	mutations := map[string]func(map[string]any){
		"unknown status":    func(m map[string]any) { m["checks"].([]any)[0].(map[string]any)["status"] = "meh" },
		"missing overall":   func(m map[string]any) { delete(m, "overall") },
		"extra field":       func(m map[string]any) { m["surprise"] = 1 },
		"string count":      func(m map[string]any) { m["counts"].(map[string]any)["ok"] = "3" },
		"negative duration": func(m map[string]any) { m["checks"].([]any)[0].(map[string]any)["duration_ms"] = -1.0 },
		"unknown check id":  func(m map[string]any) { m["checks"].([]any)[0].(map[string]any)["id"] = "Workspace" },
		"env not a string":  func(m map[string]any) { m["facts"].(map[string]any)["environment"].(map[string]any)["X"] = 1.0 },
		"float uid":         func(m map[string]any) { m["facts"].(map[string]any)["uid"] = 1.5 },
		"not a timestamp":   func(m map[string]any) { m["generated_at"] = "yesterday" },
	}
	for name, mutate := range mutations {
		var doc map[string]any
		if err := json.Unmarshal(good, &doc); err != nil {
			t.Fatal(err)
		}
		mutate(doc)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := reporttest.Validate(t, schema, b); err == nil {
			t.Errorf("%s: not caught", name)
		}
	}
}
