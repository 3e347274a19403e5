package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/jsonschema"
)

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "diagnose.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	return schema
}

// ValidateJSON is shared with the command's tests through testdata: it
// decodes a document and validates it against the schema.
func validateJSON(t *testing.T, doc []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	for _, err := range jsonschema.Validate(loadSchema(t), v, "$") {
		t.Error(err)
	}
}

func TestSchemaValidatorCatchesMistakes(t *testing.T) {
	schema := loadSchema(t)
	good, _ := JSON(sampleDoc())
	var v map[string]any
	json.Unmarshal(good, &v)
	if errs := jsonschema.Validate(schema, v, "$"); len(errs) > 0 {
		t.Fatalf("the sample fails: %v", errs)
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
	}
	for name, mutate := range mutations {
		var doc map[string]any
		json.Unmarshal(good, &doc)
		mutate(doc)
		if errs := jsonschema.Validate(schema, doc, "$"); len(errs) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}
