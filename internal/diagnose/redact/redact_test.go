package redact

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	r := &Redactor{Home: "/home/ann", Hostname: "gpu-node-17"}
	tests := []struct{ in, want string }{
		{"token hf_abcdefghijklmnopqrstuvwxyz0123 here", "token hf_[redacted] here"},
		{"nvapi-ABCDEFGHIJKLMNOPQRSTUVWXYZ_012345", "nvapi-[redacted]"},
		{"https://user:s3cr3t@proxy.corp:3128", "https://[redacted]@proxy.corp:3128"},
		{"https://hf.co/x?token=abc123&ok=1", "https://hf.co/x?token=[redacted]&ok=1"},
		{"bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-x", "bearer [redacted-jwt]"},
		{"AKIAIOSFODNN7EXAMPLE", "[redacted-access-key]"},
		{"GPU-fa4e0000-0000-4000-8000-000000000000 on gpu-node-17", "GPU-[uuid] on [host]"},
		{"/home/ann/.cache and /home/anna", "~/.cache and /home/anna"},
		{"nothing secret", "nothing secret"},
	}
	for _, tc := range tests {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if r.Count != 8 {
		t.Errorf("count %d, want 8", r.Count)
	}
}

func TestEnvironment(t *testing.T) {
	r := &Redactor{}
	shown, hidden := r.Environment([]string{
		"HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123", "HF_HOME=/hf", "NSS_API_KEY=xyz",
		"AWS_SECRET_ACCESS_KEY=abc", "PATH=/usr/bin", "HTTPS_PROXY=http://u:p@proxy:3128",
		"NSS_INFERENCE_ENDPOINT=https://x.example/v1?api_key=zzz", "WANDB_API_KEY=w", "WANDB_MODE=offline",
	})
	want := map[string]string{
		"HF_TOKEN": "set, 33 chars", "HF_HOME": "/hf", "NSS_API_KEY": "set, 3 chars",
		"HTTPS_PROXY":            "http://[redacted]@proxy:3128",
		"NSS_INFERENCE_ENDPOINT": "https://x.example/v1?api_key=[redacted]",
		"WANDB_MODE":             "offline",
	}
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
	for _, v := range shown {
		if strings.Contains(v, "hf_abc") || strings.Contains(v, "zzz") || strings.Contains(v, ":p@") {
			t.Errorf("leak: %q", v)
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add("hf_abcdefghijklmnopqrstuvwxyz0123")
	f.Add("https://a:b@c")
	f.Fuzz(func(t *testing.T, s string) {
		r := &Redactor{Home: "/home/ann", Hostname: "node"}
		out := r.String(s)
		// Redaction is idempotent: a second pass finds nothing more.
		r2 := &Redactor{Home: "/home/ann", Hostname: "node"}
		if again := r2.String(out); again != out {
			t.Errorf("second pass changed %q to %q", out, again)
		}
	})
}
