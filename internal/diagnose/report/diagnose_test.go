package report

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/redact"
	"github.com/nvidia-nemo/nss-entrypoint/internal/golden"
)

var sampleResults = []check.Result{
	{ID: "runtime", Title: "container runtime", Status: check.OK, Message: "docker (/.dockerenv exists)", Duration: 150 * time.Microsecond,
		Data: map[string]any{"name": "docker"}},
	{ID: "workspace", Title: "workspace", Status: check.Warn, Message: "/workspace is empty: no data is mounted there",
		Hint: `mount your data with an absolute host path: docker run -v "$(pwd)/data:/workspace/data" ...`, Duration: 2 * time.Millisecond,
		Data: map[string]any{"path": "/workspace"}},
	{ID: "gpu", Title: "GPU", Status: check.Fail, Message: "libnvidia-ml.so.1 is not in the container | pipes",
		Hint: "install the NVIDIA Container Toolkit", Duration: 12 * time.Millisecond,
		Data: map[string]any{"nvml_code": 12, "uuid": "GPU-fa4e0000-0000-4000-8000-000000000000"}},
	{ID: "network", Title: "network reachability", Status: check.Skip, Message: "not checked (run with --online)"},
}

var sampleEnv = []string{"HF_HOME=/home/ann/.cache/huggingface", "HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123", "PATH=/usr/bin", "NSS_LOG_LEVEL=INFO"}

func sampleDoc() Document {
	r := &redact.Redactor{Home: "/home/ann", Hostname: "gpu-node-17"}
	tool := Tool{Name: "nss-entrypoint", Version: "1.2.3", Commit: "abc1234", CUDAVariant: "cu129"}
	facts := Facts{Runtime: "docker", UID: 1000, GID: 1000, Kernel: "6.8.0", OS: "Debian GNU/Linux 12 (bookworm)"}
	return Build(tool, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), sampleResults, facts, sampleEnv, r)
}

func TestDiagnoseGolden(t *testing.T) {
	d := sampleDoc()
	j, err := JSON(d)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "diagnose.json", j)
	validateJSON(t, j)
	golden.Check(t, "diagnose-plain.txt", Text(d, TextOptions{}))
	golden.Check(t, "diagnose-terminal.txt", Text(d, TextOptions{Colour: true, Unicode: true}))
	golden.Check(t, "diagnose-verbose.txt", Text(d, TextOptions{Verbose: true}))
	golden.Check(t, "diagnose.md", Markdown(d))
}

// The header's host line names what is known: no dangling ", kernel"
// without an OS, no line at all without either.
func TestTextHostLine(t *testing.T) {
	for _, tc := range []struct{ os, kernel, want string }{
		{"Debian", "6.8.0", "\nDebian, kernel 6.8.0\n"},
		{"", "6.8.0", "\nkernel 6.8.0\n"},
		{"Debian", "", "\nDebian\n"},
	} {
		d := sampleDoc()
		d.Facts.OS, d.Facts.Kernel = tc.os, tc.kernel
		if got := string(Text(d, TextOptions{})); !strings.Contains(got, tc.want) {
			t.Errorf("OS %q, kernel %q: header %q, want a line %q", tc.os, tc.kernel, firstN(got, 3), tc.want)
		}
	}
	d := sampleDoc()
	d.Facts.OS, d.Facts.Kernel = "", ""
	if got := string(Text(d, TextOptions{})); strings.Contains(got, "kernel") {
		t.Errorf("no OS and no kernel: %q", firstN(got, 3))
	}
}

func firstN(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func TestBuildRedactsEverywhere(t *testing.T) {
	d := sampleDoc()
	for _, out := range [][]byte{must(JSON(d)), Text(d, TextOptions{Verbose: true}), Markdown(d)} {
		s := string(out)
		for _, leak := range []string{"hf_abcdefghij", "fa4e0000", "/home/ann"} {
			if strings.Contains(s, leak) {
				t.Errorf("%q leaked into:\n%s", leak, s)
			}
		}
	}
	if d.Redaction.Redacted != 2 || d.Facts.HiddenVariables != 1 || d.Facts.Environment["HF_TOKEN"] != "set, 33 chars" {
		t.Errorf("redaction %+v, facts %+v", d.Redaction, d.Facts)
	}
	if d.Facts.Environment["HF_HOME"] != "~/.cache/huggingface" {
		t.Errorf("HF_HOME shown as %q", d.Facts.Environment["HF_HOME"])
	}
	plain := Build(Tool{}, time.Now(), sampleResults, Facts{}, sampleEnv, nil)
	if plain.Redaction.Enabled || plain.Facts.Environment["HF_TOKEN"] == "" || !strings.Contains(string(Text(plain, TextOptions{})), "redaction OFF") {
		t.Errorf("--no-redact document: %+v", plain.Redaction)
	}
}

// TestNoControlCharacters plants terminal escapes, C1 controls, bidi
// overrides, invalid UTF-8 and a Markdown fence in every string a check,
// the facts or the environment can carry: the text and Markdown reports
// show none of them raw.
func TestNoControlCharacters(t *testing.T) {
	evil := "a\x1b]0;pwned\x07b\x1b[2Jc\u009bd\u202ee\xfff\r\ng\x7f````h" + invisible
	results := []check.Result{{ID: "workspace" + evil, Title: "t", Status: check.Warn, Message: evil, Hint: evil,
		Data: map[string]any{"k" + evil: evil, "list": []string{evil}}}}
	facts := Facts{Runtime: evil, Kernel: evil, OS: evil}
	tool := Tool{Version: evil, Commit: evil, CUDAVariant: evil}
	for _, r := range []*redact.Redactor{nil, {}} {
		d := Build(tool, time.Now(), results, facts, []string{"NSS_X=" + evil, "NSS_" + evil + "=1"}, r)
		md := string(Markdown(d))
		outputs := map[string]string{
			"text":     string(Text(d, TextOptions{})),
			"verbose":  string(Text(d, TextOptions{Verbose: true})),
			"colour":   string(Text(d, TextOptions{Verbose: true, Colour: true})),
			"markdown": md,
			"json":     string(must(JSON(d))),
		}
		for name, out := range outputs {
			if !utf8.ValidString(out) {
				t.Errorf("%s (redact %v): not UTF-8: %q", name, r != nil, out)
			}
			for i, c := range []rune(out) {
				colourSGR := name == "colour" && c == 0x1b && strings.HasPrefix(string([]rune(out)[i:]), "\x1b[")
				if (c < 0x20 && c != '\n' && !colourSGR) || 0x7f <= c && c <= 0x9f || strings.ContainsRune(invisible, c) {
					t.Errorf("%s (redact %v): raw %U in\n%q", name, r != nil, c, out)
					break
				}
			}
			if strings.Contains(out, "\x1b[2J") || strings.Contains(out, "\x1b]0;") {
				t.Errorf("%s: an escape sequence survives", name)
			}
		}
		// The fence around the full report is longer than the planted one.
		if !strings.Contains(md, "`````text\n") {
			t.Errorf("markdown fence not lengthened:\n%s", md)
		}
	}
}

// invisible holds a character of each kind that changes how text reads
// without being seen: a bidi override, zero-width space and joiner, word
// joiner, byte-order mark, line and paragraph separators, and the tag
// characters of "ASCII smuggling".
const invisible = "\u202e\u200b\u200d\u2060\ufeff\u2028\u2029\U000E0041\U000E007F\u2066"

func TestSummary(t *testing.T) {
	tests := []struct {
		c    check.Counts
		want string
	}{
		{check.Counts{OK: 11}, "no problems in 11 checks"},
		{check.Counts{OK: 8, Warn: 2, Fail: 1}, "2 warnings, 1 failure in 11 checks"},
		{check.Counts{OK: 5, Warn: 1, Skip: 3}, "1 warning in 9 checks (3 skipped)"},
	}
	for _, tc := range tests {
		if got := Summary(Document{Counts: tc.c}); got != tc.want {
			t.Errorf("Summary(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
