package report

import (
	"encoding/json"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/redact"
)

// SchemaVersion is the version of the --diagnose JSON document. It changes
// only when a field is removed or changes meaning; fields may be added.
const SchemaVersion = 1

// Document is the --diagnose report, the one model that all three formats
// render. docs/diagnose.md documents it field by field.
type Document struct {
	SchemaVersion int          `json:"schema_version"`
	Tool          Tool         `json:"tool"`
	GeneratedAt   string       `json:"generated_at"`
	Overall       string       `json:"overall"`
	Counts        check.Counts `json:"counts"`
	Checks        []CheckDoc   `json:"checks"`
	Facts         Facts        `json:"facts"`
	Redaction     Redaction    `json:"redaction"`
}

// Tool identifies the build that wrote the report.
type Tool struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Commit      string `json:"commit"`
	CUDAVariant string `json:"cuda_variant"`
}

// CheckDoc is one check's result.
type CheckDoc struct {
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	Status     string         `json:"status"`
	Message    string         `json:"message"`
	Hint       string         `json:"hint"`
	DurationMS float64        `json:"duration_ms"`
	Data       map[string]any `json:"data"`
}

// Facts are the context a support engineer needs besides the checks.
type Facts struct {
	Runtime     string            `json:"runtime"`
	UID         int               `json:"uid"`
	GID         int               `json:"gid"`
	Kernel      string            `json:"kernel"`
	OS          string            `json:"os"`
	Environment map[string]string `json:"environment"`
	// HiddenVariables counts the variables left out by the allowlist.
	HiddenVariables int `json:"hidden_variables"`
}

// Redaction says what was done to keep secrets out.
type Redaction struct {
	Enabled bool `json:"enabled"`
	// Redacted counts the values replaced (secrets, secret-named variables,
	// GPU UUIDs, the host name).
	Redacted int `json:"redacted"`
}

// Build assembles the document from results and facts, redacting every
// string when r is not nil.
func Build(tool Tool, now time.Time, results []check.Result, facts Facts, environ []string, r *redact.Redactor) Document {
	d := Document{SchemaVersion: SchemaVersion, Tool: tool, GeneratedAt: now.UTC().Format(time.RFC3339),
		Overall: check.Worst(results).String(), Counts: check.Count(results)}
	for _, res := range results {
		data := res.Data
		if data == nil {
			data = map[string]any{}
		}
		d.Checks = append(d.Checks, CheckDoc{ID: res.ID, Title: res.Title, Status: res.Status.String(),
			Message: res.Message, Hint: res.Hint, DurationMS: float64(res.Duration.Microseconds()) / 1000, Data: normalise(data)})
	}
	d.Facts = facts
	if r == nil {
		d.Facts.Environment = redact.Plain(environ)
		return d
	}
	d.Facts.Environment, d.Facts.HiddenVariables = r.Environment(environ)
	for i := range d.Checks {
		c := &d.Checks[i]
		c.Message, c.Hint = r.String(c.Message), r.String(c.Hint)
		c.Data = r.Value(c.Data).(map[string]any)
	}
	d.Facts.Kernel, d.Facts.OS = r.String(d.Facts.Kernel), r.String(d.Facts.OS)
	d.Redaction = Redaction{Enabled: true, Redacted: r.Count}
	return d
}

// normalise turns check data into the plain shapes encoding/json decodes
// to, so that redaction and rendering see one representation.
func normalise(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return map[string]any{"unrenderable": err.Error()}
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return map[string]any{"unrenderable": err.Error()}
	}
	return out
}

// JSON renders the document, indented, with a final newline. It is never
// coloured.
func JSON(d Document) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(escapeJSON(b), '\n'), nil
}
