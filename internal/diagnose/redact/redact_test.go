package redact

import (
	"strings"
	"testing"
	"time"

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
		// Secret names as JSON keys, an API key header, a session id, a
		// bearer token in a URL; prose with the same words stays.
		{`{"password": "Zq41abc"}`, `{"password": [redacted]}`},
		{`{"apiKey":"Zq41abc","n":1}`, `{"apiKey":[redacted],"n":1}`},
		{`{"access_token": "a\"b", "token": 12345}`, `{"access_token": [redacted], "token": [redacted]}`},
		{"x-api-key: Zq14abc", "x-api-key: [redacted]"},
		{"https://app.example/login;jsessionid=Zq9ABC?x=1", "https://app.example/login;jsessionid=[redacted]?x=[redacted]"},
		{"auth header Bearer%20Zq14abcdefgh", "auth header Bearer%20[redacted]"},
		{"no Hugging Face token: gated models will fail", "no Hugging Face token: gated models will fail"},
		// Only where the path begins: not inside another path.
		{"HF_HOME=/mnt/home/ann/hf does not exist", "HF_HOME=/mnt/home/ann/hf does not exist"},
		{"HF_HOME=/home/ann/hf, -v /home/ann:/x (/home/ann)", "HF_HOME=~/hf, -v ~:/x (~)"},
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
	var proxies []redacttest.Secret
	for _, s := range redacttest.Corpus() {
		if s.Var != "" {
			environ = append(environ, s.Var+"="+s.Text)
			want[s.Var] = "set, " + itoa(len(s.Text)) + " chars"
		}
		if s.Proxy {
			proxies = append(proxies, s)
		}
	}
	for _, s := range proxies {
		for _, name := range []string{"HTTP_PROXY", "https_proxy", "ALL_PROXY", "no_proxy"} {
			environ = append(environ, name+"="+s.Text)
			want[name] = "[redacted]" + s.Text[strings.IndexByte(s.Text, '@'):]
		}
	}
	// A second definition: the target reads the first (getenv(3), Python).
	environ = append(environ, "HF_HOME=/second", "WANDB_MODE=online")
	shown, hidden := (&Redactor{}).Environment(environ)
	if plain := Plain(environ); plain["HF_HOME"] != "/hf" || plain["WANDB_MODE"] != "offline" {
		t.Errorf("Plain shows the later definitions: %q, %q", plain["HF_HOME"], plain["WANDB_MODE"])
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
	corpus := redacttest.Corpus()
	f.Fuzz(func(t *testing.T, s string) {
		r := &Redactor{Home: "/home/ann", Hostname: "node"}
		out := r.String(s)
		// A planted secret put anywhere in the input does not survive.
		if c := corpus[len(s)%len(corpus)]; c.Var == "" {
			mid := len(s) / 2
			planted := s[:mid] + " " + c.Text + " " + s[mid:]
			got := (&Redactor{}).String(planted)
			for _, p := range c.Pieces {
				if strings.Contains(got, p) && !strings.Contains(s, p) {
					t.Errorf("%s: %q survives in %q", c.Class, p, got)
				}
			}
		}
		// Redaction is idempotent: a second pass changes nothing.
		r2 := &Redactor{Home: "/home/ann", Hostname: "node"}
		if again := r2.String(out); again != out {
			t.Errorf("second pass changed %q to %q", out, again)
		}
	})
}

// TestURLUserinfo: the user information of a URL is found whatever
// follows the host, and an "@" in a path is left alone.
func TestURLUserinfo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"inference endpoint (http://alice:pw1@127.0.0.1:1): Get", "inference endpoint (http://[redacted]@127.0.0.1:1): Get"},
		{"a http://u:p@h, b", "a http://[redacted]@h, b"},
		{"http://u:p@h;x", "http://[redacted]@h;x"},
		{"{http://u:p@h}", "{http://[redacted]@h}"},
		{"http://u:p@h*!|", "http://[redacted]@h*!|"},
		{"http://u:p@[fe80::1%25eth0]:3128", "http://[redacted]@[fe80::1%25eth0]:3128"},
		{"https://u:p@prøxy.example/", "https://[redacted]@prøxy.example/"},
		{"https://u:p@h/ünï", "https://[redacted]@h/ünï"},
		{`"https:\/\/u:p@h\/v1"`, `"https:\/\/[redacted]@h\/v1"`},
		{"http://u:p/x@y@h:1/path", "http://[redacted]@h:1/path"},
		{"https://tok@h/@scope/pkg", "https://[redacted]@h/@scope/pkg"},
		{"http://a:b@c,http://d:e@f", "http://[redacted]@c,http://[redacted]@f"},
		{"https://registry.example/@scope/pkg", "https://registry.example/@scope/pkg"},
		{"git+https://github.com/org/repo@v1.2", "git+https://github.com/org/repo@v1.2"},
		{"https://h/x?a=b@c", "https://h/x?a=[redacted]"},
		{"mail bob@example.com", "mail bob@example.com"},
		{"http://[redacted]@h", "http://[redacted]@h"},
	}
	for _, tc := range tests {
		if got := (&Redactor{}).urls(tc.in); got != tc.want {
			t.Errorf("urls(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// BenchmarkURLManyAt redacts a URL of 120,000 "@": linear time keeps it
// in the low milliseconds (the old scan took seconds).
func BenchmarkURLManyAt(b *testing.B) {
	s := "http://" + strings.Repeat("@", 120000)
	for b.Loop() {
		(&Redactor{}).String(s[:MaxScanned])
		(&Redactor{}).urls(s)
	}
}

func TestLinear(t *testing.T) {
	// Not a timing assertion: the work done must not grow with the square
	// of the input, which a count of scanned bytes would show; here the
	// scan must simply finish on inputs that took minutes before.
	for _, s := range []string{
		"http://" + strings.Repeat("@", 200000),
		strings.Repeat("http://", 30000) + strings.Repeat("@", 1000),
		strings.Repeat("a:b@", 50000),
	} {
		(&Redactor{}).urls(s)
	}
}

func TestLongAndLate(t *testing.T) {
	r := &Redactor{}
	if got := r.String(strings.Repeat("x", MaxScanned+1)); got != "[16385 bytes, not shown]" || r.Count != 1 {
		t.Errorf("long value: %q, count %d", got, r.Count)
	}
	r = &Redactor{Deadline: time.Now().Add(-time.Second)}
	if got := r.String("harmless"); got != outOfTime {
		t.Errorf("after the deadline: %q", got)
	}
}

func TestAnchorWhole(t *testing.T) {
	tests := []struct{ in, want string }{
		{`(?i)^true|false|null$`, `(?i)^(?:true|false|null)$`},
		{`^\$(?:\d+|{\d+})$`, `^\$(?:\d+|{\d+})$`},
		{`^(?i:a+|b+)$`, `^(?i:a+|b+)$`},
		{`^[a|b]$`, `^[a|b]$`},
		{`^a|b`, `^a|b`},
	}
	for _, tc := range tests {
		if got := anchorWhole(tc.in); got != tc.want {
			t.Errorf("anchorWhole(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	rs, err := gitleaksRules()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"TrueLove2024x", "notfalse1234"} {
		if allowed(rs.global, v, v, v) {
			t.Errorf("the global allowlist passes %q", v)
		}
	}
	if !allowed(rs.global, "true", "true", "true") {
		t.Error("the global allowlist no longer passes \"true\"")
	}
}

func TestSecretName(t *testing.T) {
	for _, n := range []string{"NSS_DB_CREDS", "NSS_DB_CRED", "NSS_DB_PW", "NSS_SIGNING_PIN", "NSS_SAS_SIG", "NSS_TLS_CERT",
		"NSS_APIKEY", "NSS_OAUTH", "NSS_AUTHORIZATION", "NSS_SESSION_ID", "HF_TOKEN", "NSS_DB_PASSWORD", "NSS_COOKIE", "nss_db_pw"} {
		if !SecretName(n) {
			t.Errorf("%s is not secret", n)
		}
	}
	// The variables the README and docs document, and a few look-alikes.
	for _, n := range []string{"NVIDIA_DRIVER_CAPABILITIES", "NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "HF_HOME", "HF_HUB_CACHE",
		"HF_HUB_OFFLINE", "HF_ENDPOINT", "NSS_CONFIG", "NSS_WORKSPACE", "NSS_ARTIFACTS_PATH", "NSS_INFERENCE_ENDPOINT", "NSS_LOG_LEVEL",
		"NSS_LOG_FORMAT", "NSS_VENV", "NSS_ENTRYPOINT_CHECKS", "NSS_ENTRYPOINT_CUDA", "NSS_ENTRYPOINT_TIMEOUT", "NSS_GPU_PROBE",
		"VLLM_ATTENTION_BACKEND", "VLLM_CACHE_ROOT", "WANDB_MODE", "TRANSFORMERS_OFFLINE", "NSS_STOP_SIGNAL", "NSS_PINNED_MEMORY", "NCCL_P2P_DISABLE"} {
		if SecretName(n) {
			t.Errorf("%s is taken for a secret", n)
		}
	}
}

func TestHostAndUser(t *testing.T) {
	r := &Redactor{Hostname: "GpuNode17", User: "jdoe.realname"}
	tests := []struct{ in, want string }{
		{"on GPUNODE17 and gpunode17.corp.example", "on [host] and [host].corp.example"},
		{"http://gpunode17:8080", "http://[host]:8080"},
		{"xgpunode17 gpunode17x /data/gpunode17", "xgpunode17 gpunode17x /data/gpunode17"},
		{"uid 0 (jdoe.realname)", "uid 0 ([user])"},
	}
	for _, tc := range tests {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	short := &Redactor{Hostname: "gpu", User: "root"}
	for _, s := range []string{"fix: docker run --gpus all", "1 GPU: NVIDIA H200", "--device nvidia.com/gpu=all", "uid 0 (root)"} {
		if got := short.String(s); got != s {
			t.Errorf("host gpu: %q became %q", s, got)
		}
	}
	if got := short.String("host gpu here"); got != "host [host] here" {
		t.Errorf("host gpu: %q", got)
	}
}

func TestProxyWithoutScheme(t *testing.T) {
	shown, _ := (&Redactor{}).Environment([]string{"HTTP_PROXY=u:Pw9secretY@127.0.0.1:1", "no_proxy=localhost,u:p@h:1,.corp", "ALL_PROXY=socks5://u:p@h",
		"https_proxy=u:pa/ss@h:1"})
	want := map[string]string{"HTTP_PROXY": "[redacted]@127.0.0.1:1", "no_proxy": "localhost,[redacted]@h:1,.corp", "ALL_PROXY": "socks5://[redacted]@h",
		"https_proxy": "[redacted]@h:1"}
	for k, v := range want {
		if shown[k] != v {
			t.Errorf("%s = %q, want %q", k, shown[k], v)
		}
	}
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
