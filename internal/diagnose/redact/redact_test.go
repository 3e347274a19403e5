package redact

import (
	"strings"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/redact/redacttest"
)

func TestGitleaksRulesCompile(t *testing.T) {
	rs, err := gitleaksRules()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.rules) < 200 {
		t.Errorf("%d rules read from gitleaks' defaults, want over 200", len(rs.rules))
	}
	for _, r := range rs.rules {
		if err := r.compile(); err != nil {
			t.Error(err)
		}
	}
}

func TestString(t *testing.T) {
	r := &Redactor{Home: "/home/ann", Hostname: "gpu-node-17"}
	tests := []struct{ in, want string }{
		{"token hf_abcdefghijklmnopqrstuvwxyz0123 here", "token [redacted] here"},
		{"nvapi-ABCDEFGHIJKLMNOPQRSTUVWXYZ_012345", "[redacted]"},
		{"x NSS_hf_abcdefghijklmnopqrstuvwxyz0123 y", "x [redacted] y"}, // a random-looking token as a whole
		{"https://user:s3cr3t@proxy.corp:3128", "https://[redacted]@proxy.corp:3128"},
		{"https://hf.co/x?token=abc123&limit=1", "https://hf.co/x?token=[redacted]&limit=1"},
		{"https://hf.co/x?unknown=abc#frag", "https://hf.co/x?unknown=[redacted]#frag"},
		{"(https://infer.example/v1?code=abc123): HTTP 502", "(https://infer.example/v1?code=[redacted]): HTTP 502"},
		{"bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-x", "bearer [redacted]"},
		{"AKIAIOSFODNN7EXAMPLE", "[redacted]"},
		{"GPU-fa4e0000-0000-4000-8000-000000000000 on gpu-node-17", "GPU-[uuid] on [host]"},
		{"/home/ann/.cache and /home/anna", "~/.cache and /home/anna"},
		// What must stay: paths, model ids, hashes, ordinary prose.
		{"nothing secret", "nothing secret"},
		{"/workspace/safe-synthesizer-artifacts/Llama3B/run-0001/checkpoints", "/workspace/safe-synthesizer-artifacts/Llama3B/run-0001/checkpoints"},
		{"meta-llama/Llama-3.2-1B-Instruct with a token available", "meta-llama/Llama-3.2-1B-Instruct with a token available"},
		{"commit 0123456789abcdef0123456789abcdef01234567", "commit 0123456789abcdef0123456789abcdef01234567"},
		{"https://huggingface.co/api/models?limit=1", "https://huggingface.co/api/models?limit=1"},
		{"https://registry.example/@scope/pkg", "https://registry.example/@scope/pkg"},
	}
	for _, tc := range tests {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCorpus plants every kind of secret, alone and in a sentence, and
// finds none of its pieces in the result.
func TestCorpus(t *testing.T) {
	for _, s := range redacttest.Corpus() {
		if s.Var != "" {
			continue // by name: TestEnvironment
		}
		for _, in := range []string{s.Text, "the value is " + s.Text + " (set by ann)", `{"v": "` + s.Text + `"}`} {
			r := &Redactor{}
			out := r.String(in)
			for _, p := range s.Pieces {
				if strings.Contains(out, p) {
					t.Errorf("%s: %q survives in %q", s.Class, p, out)
				}
			}
			if r.Count == 0 {
				t.Errorf("%s: nothing counted", s.Class)
			}
		}
	}
}

func TestEnvironment(t *testing.T) {
	environ := []string{
		"HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123", "HF_HOME=/hf", "NSS_API_KEY=xyz",
		"AWS_SECRET_ACCESS_KEY=abc", "PATH=/usr/bin", "HTTPS_PROXY=http://u:p@proxy:3128",
		"NSS_INFERENCE_ENDPOINT=https://x.example/v1?api_key=zzz", "WANDB_API_KEY=w", "WANDB_MODE=offline",
	}
	want := map[string]string{
		"HF_TOKEN": "set, 33 chars", "HF_HOME": "/hf", "NSS_API_KEY": "set, 3 chars",
		"HTTPS_PROXY":            "http://[redacted]@proxy:3128",
		"NSS_INFERENCE_ENDPOINT": "https://x.example/v1?api_key=[redacted]",
		"WANDB_MODE":             "offline",
	}
	for _, s := range redacttest.Corpus() {
		if s.Var != "" {
			environ = append(environ, s.Var+"="+s.Text)
			want[s.Var] = "set, " + itoa(len(s.Text)) + " chars"
		}
	}
	shown, hidden := (&Redactor{}).Environment(environ)
	if len(shown) != len(want) {
		t.Errorf("shown %v", shown)
	}
	for k, v := range want {
		if shown[k] != v {
			t.Errorf("%s = %q, want %q", k, shown[k], v)
		}
	}
	if hidden != 3 {
		t.Errorf("hidden %d, want 3 (AWS_SECRET_ACCESS_KEY, PATH, WANDB_API_KEY)", hidden)
	}
}

func itoa(n int) string {
	var b []byte
	for ; n > 0 || len(b) == 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func FuzzString(f *testing.F) {
	f.Add("hf_abcdefghijklmnopqrstuvwxyz0123")
	f.Add("https://a:b@c")
	f.Add("https://a:b/c@d@e:1/x?token=y&limit=2#access_token=z")
	f.Add("GPU-fa4e0000-0000-4000-8000-000000000000 node /home/ann/x")
	for _, s := range redacttest.Corpus() {
		f.Add(s.Text)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := &Redactor{Home: "/home/ann", Hostname: "node"}
		out := r.String(s)
		// Redaction is idempotent: a second pass changes nothing.
		r2 := &Redactor{Home: "/home/ann", Hostname: "node"}
		if again := r2.String(out); again != out {
			t.Errorf("second pass changed %q to %q", out, again)
		}
	})
}

// BenchmarkCompileRules is what nss-diagnose pays once per report to read
// gitleaks' rules (each rule's expression is compiled when first needed).
func BenchmarkCompileRules(b *testing.B) {
	for b.Loop() {
		if _, err := compileRules(gitleaksTOML); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkString redacts a typical report line.
func BenchmarkString(b *testing.B) {
	r := &Redactor{Home: "/home/ann", Hostname: "gpu-node-17"}
	s := "HF_HOME=/home/ann/.cache/huggingface is a writable directory; 1 GPU: NVIDIA H200 (140.4 GiB), driver 580.159.04, CUDA 13.0"
	for b.Loop() {
		r.String(s)
	}
}
