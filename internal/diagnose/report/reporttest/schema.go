// Package reporttest validates --diagnose JSON documents against
// docs/diagnose.schema.json for the tests of the report and of the
// commands. It exists for tests.
package reporttest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

// SchemaPath is the schema's place in the repository.
var SchemaPath = filepath.Join(testbuild.RepoRoot(), "docs", "diagnose.schema.json")

// Schema compiles docs/diagnose.schema.json (JSON Schema 2020-12, with
// format assertions on).
func Schema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile(SchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(SchemaPath, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaPath)
	if err != nil {
		t.Fatalf("compile the schema: %v", err)
	}
	return s
}

// Validate decodes doc and returns the schema's verdict on it: nil when it
// is valid.
func Validate(t testing.TB, s *jsonschema.Schema, doc []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return s.Validate(v)
}
