package secret

import (
	"strconv"
	"strings"
	"testing"
)

func TestScrubber(t *testing.T) {
	environ := []string{
		"HF_TOKEN= hf_valueOfTheTokenVariable \n",
		"DB_PASSWORD=correct-horse",
		"MY_API_KEY=ab\x1bcdefgh",
		"SHORT_TOKEN=12345",         // too short to look for
		"KEYBOARD=us-international", // not a secret's name
		"NO_EQUALS_TOKEN",
		"A_PASSWORD=abcdefgh",
		"B_PASSWORD=efghijklmnop",
		"LATIN1_PASSWORD=S3cret\xffPassw0rdXYZ",
		// Places, not secrets: the shell's working directories and
		// variables that say where a secret is.
		"PWD=/workspace",
		"OLDPWD=/workspace/old",
		"HF_TOKEN_PATH=/hf/mytoken",
		"SSL_CERT_DIR=/etc/ssl/certs",
	}
	quote := func(s string) string { return strconv.Quote(s)[1 : len(strconv.Quote(s))-1] }
	s := NewScrubber(environ, quote)
	cases := []struct{ in, want string }{
		{"HF_HOME=hf_valueOfTheTokenVariable does not exist", "HF_HOME=[redacted] does not exist"},
		{"dir /mnt/correct-horse/x", "dir /mnt/[redacted]/x"},
		{`path "ab\x1bcdefgh"`, `path "[redacted]"`},
		{"pin 12345 stays", "pin 12345 stays"},
		{"layout us-international stays", "layout us-international stays"},
		{"https://alice:pw@host.example/x and http://bob@h2?q", "https://[redacted]@host.example/x and http://[redacted]@h2?q"},
		{"https://host.example/a@b stays", "https://host.example/a@b stays"},
		{"ssh://a@b@c:22/x", "ssh://[redacted]@c:22/x"},
		{"no url @ here://", "no url @ here://"},
		{"token hf_ABCDEFGHIJKLMNOPQRSTUVWXYZ, next", "token [redacted], next"},
		{"NSS_hf_ABCDEFGHIJKLMNOPQRSTUVWXYZ", "NSS_[redacted]"},
		{"shf_ABCDEFGHIJKLMNOPQRSTUVWXYZ stays (after a letter)", "shf_ABCDEFGHIJKLMNOPQRSTUVWXYZ stays (after a letter)"},
		{"hf_short stays", "hf_short stays"},
		{"hf_hf_ABCDEFGHIJKLMNOPQRSTUVWXYZ", "hf_[redacted]"},
		{"key nvapi-abc_DEF-0123456789abcdefghij!", "key [redacted]!"},
		{"", ""},
		// Two values that overlap go whole.
		{"HF_HOME=/x/abcdefghijklmnop", "HF_HOME=/x/[redacted]"},
		// A value that is not UTF-8, as JSON writes it (U+FFFD a byte).
		{"driver S3cret\uFFFDPassw0rdXYZ, CUDA 13.0", "driver [redacted], CUDA 13.0"},
		{"/workspace is empty; /workspace/old; /hf/mytoken holds white space; /etc/ssl/certs", "/workspace is empty; /workspace/old; /hf/mytoken holds white space; /etc/ssl/certs"},
		// A password may hold "#", "?", "/" and "@": the last "@" before
		// the URL's end ends it.
		{"/mnt/https://svc:Pa#ss@nas.example/data", "/mnt/https://[redacted]@nas.example/data"},
		{"s3://svc:S3cr3t/pw@bucket/hf", "s3://[redacted]@bucket/hf"},
		{"https://user:pa?ss@host/x", "https://[redacted]@host/x"},
		{`{"u":"https:\/\/u:p@h"}`, `{"u":"https:\/\/[redacted]@h"}`},
	}
	for _, c := range cases {
		if got := s.String(c.in); got != c.want {
			t.Errorf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	var none *Scrubber
	if got := none.String("x https://u:p@h hf_ABCDEFGHIJKLMNOPQRSTUVWXYZ correct-horse"); got != "x https://[redacted]@h [redacted] correct-horse" {
		t.Errorf("nil Scrubber: %q", got)
	}
	// Text without a secret comes back as it is, without copying.
	in := strings.Repeat("plain text ", 100)
	if got := s.String(in); got != in {
		t.Errorf("plain text changed: %q", got)
	}
}

func TestName(t *testing.T) {
	for _, n := range []string{"HF_TOKEN", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "my-api-key", "OAUTH", "SESSIONID", "X_PIN"} {
		if !Name(n) {
			t.Errorf("Name(%q) = false", n)
		}
	}
	for _, n := range []string{"HF_HOME", "PATH", "KEYBOARD", "SIGNAL", "PINNED", "NSS_WORKSPACE"} {
		if Name(n) {
			t.Errorf("Name(%q) = true", n)
		}
	}
}

func BenchmarkScrubAStartLine(b *testing.B) {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=3f2a1b", "HOME=/root", "HF_HOME=/workspace/.hf_cache",
		"HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWx12", "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility", "LANG=C.UTF-8",
		"CUDA_VERSION=13.0.1", "NV_CUDA_LIB_VERSION=13.0.1-1", "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64", "TERM=xterm",
		"NSS_CONFIG=/workspace/config.yaml", "PYTHONUNBUFFERED=1", "VIRTUAL_ENV=/opt/venv", "NCCL_VERSION=2.27.7-1", "WANDB_MODE=offline",
		"NVIDIA_REQUIRE_CUDA=cuda>=13.0", "NV_LIBCUBLAS_VERSION=13.0.2.14-1", "TZ=UTC"}
	quote := func(s string) string {
		// As the entrypoint's form does: no copy where %q changes nothing.
		if !strings.ContainsAny(s, "\"\\") {
			return s
		}
		q := strconv.Quote(s)
		return q[1 : len(q)-1]
	}
	// As a start with two warnings scrubs: each message and hint, then
	// the lines written.
	texts := []string{
		"/dev/shm is 64 MiB; PyTorch DataLoader workers need more shared memory", "docker run --shm-size=1g ... (or --ipc=host)",
		"no GPU is visible in this container (no /dev/nvidiactl, no /proc/driver/nvidia)", "give the container GPUs: docker run --gpus all ...",
		"nss-entrypoint: warning: /dev/shm is 64 MiB; PyTorch DataLoader workers need more shared memory\nnss-entrypoint:   fix: docker run --shm-size=1g ... (or --ipc=host)\nnss-entrypoint: error: no GPU is visible in this container (no /dev/nvidiactl, no /proc/driver/nvidia)\nnss-entrypoint:   fix: give the container GPUs: docker run --gpus all ...\n",
	}
	for b.Loop() {
		s := NewScrubber(env, quote)
		for _, t := range texts {
			s.String(t)
		}
	}
}

// Many secret-named variables whose values all appear in the text: each is
// replaced, by either way of looking (a few, value by value; thousands,
// names first), and the work grows with their number, not its square
// (BenchmarkScrubManySecrets: 5000 took a second before, 5 ms now).
func TestScrubManySecrets(t *testing.T) {
	for _, n := range []int{20, 5000} {
		env, text := manySecrets(n)
		got, count := NewScrubber(env).Scrub(text)
		if strings.Contains(got, "value") || n == 20 && count != n || count < 1 {
			t.Errorf("%d variables: %d replaced; %q...", n, count, got[:min(len(got), 200)])
		}
	}
}

// manySecrets returns n secret-named variables with distinct values and a
// text that holds each value once.
func manySecrets(n int) (env []string, text string) {
	var b strings.Builder
	for i := range n {
		v := "value" + strconv.Itoa(i) + "x"
		env = append(env, "K"+strconv.Itoa(i)+"_KEY="+v)
		b.WriteString(v + " ")
	}
	return env, b.String()
}

func BenchmarkScrubManySecrets(b *testing.B) {
	env, text := manySecrets(5000)
	s := NewScrubber(env)
	for b.Loop() {
		s.Scrub(text)
	}
}

// FuzzScrub: whatever text surrounds a secret value, and whatever other
// secret overlaps it, the scrubbed text holds neither value, and Scrub
// does not panic.
func FuzzScrub(f *testing.F) {
	f.Add("prefix ", "abcdefgh", "efghijkl", " suffix https://u:p@h/x hf_ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	f.Add("", "S3cret\xffPassw0rd", "nvapi-ABCDEFGHIJKLMNOPQRSTUV", "")
	f.Fuzz(func(t *testing.T, pre, a, b, post string) {
		if len(a) < minValue || len(b) < minValue || strings.ContainsRune(a+b, 0) {
			return
		}
		env := []string{"A_PASSWORD=" + a, "B_TOKEN=" + b}
		text := pre + a + b + post + b[:len(b)/2] + a
		got := NewScrubber(env).String(text)
		if ta := strings.TrimSpace(a); len(ta) >= minValue && strings.Contains(got, ta) {
			t.Errorf("%q shows %q", got, ta)
		}
		if tb := strings.TrimSpace(b); len(tb) >= minValue && strings.Contains(got, tb) {
			t.Errorf("%q shows %q", got, tb)
		}
	})
}
