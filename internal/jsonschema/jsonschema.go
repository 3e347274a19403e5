// Package jsonschema validates decoded JSON against the small subset of JSON
// Schema that docs/diagnose.schema.json uses. It exists for tests.
package jsonschema

import (
	"fmt"
	"math"
	"slices"
)

// Validate checks v against the subset of JSON Schema that
// docs/diagnose.schema.json uses: type, enum, required, properties,
// additionalProperties (false or a schema), items and minimum.
func Validate(schema map[string]any, v any, path string) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if t, ok := schema["type"].(string); ok {
		okType := false
		switch t {
		case "object":
			_, okType = v.(map[string]any)
		case "array":
			_, okType = v.([]any)
		case "string":
			_, okType = v.(string)
		case "boolean":
			_, okType = v.(bool)
		case "number":
			_, okType = v.(float64)
		case "integer":
			f, isNum := v.(float64)
			okType = isNum && f == math.Trunc(f)
		}
		if !okType {
			fail("want %s, got %T", t, v)
			return errs
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		fail("%v is not one of %v", v, enum)
	}
	if min, ok := schema["minimum"].(float64); ok {
		if f, isNum := v.(float64); isNum && f < min {
			fail("%v < minimum %v", f, min)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		for _, r := range asSlice(schema["required"]) {
			if _, present := obj[r.(string)]; !present {
				fail("missing required %q", r)
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for k, val := range obj {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, Validate(ps, val, path+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("unexpected property %q", k)
				}
			case map[string]any:
				errs = append(errs, Validate(ap, val, path+"."+k)...)
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := schema["items"].(map[string]any); ok {
			for i, it := range arr {
				errs = append(errs, Validate(items, it, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
