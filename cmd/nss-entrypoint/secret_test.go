package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The start-up lines quote what the user set and what the probe said, and
// they land in container logs: no secret may be printed, whichever message
// quotes it (internal/secret, applied where every line is written). Each
// case puts a secret where one message or another quotes it.
func TestStartupLinesNeverShowASecret(t *testing.T) {
	const hfToken = "hf_AbCdEfGhIjKlMnOpQrStUvWx12"
	const nvKey = "nvapi-AbCdEfGhIjKlMnOpQrStUvWx12"
	cases := []struct {
		name   string
		gpu    bool
		code   int
		secret string
		extra  []string
	}{
		{"a token pasted into HF_HOME", false, 0, hfToken, []string{"HF_HOME=" + hfToken}},
		{"a password in a URL in HF_HOME", false, 0, "s3cretPW", []string{"HF_HOME=https://alice:s3cretPW@proxy.example/hf"}},
		{"a secret variable's value as the workspace", false, 0, "correct-horse-battery", []string{"DB_PASSWORD=correct-horse-battery", "NSS_WORKSPACE=/mnt/correct-horse-battery"}},
		{"an escaped secret value", false, 0, "pa\x1bss-word-9", []string{"MY_API_KEY=pa\x1bss-word-9", "HF_HOME=/x/pa\x1bss-word-9"}},
		{"a key in the probe's driver version", true, 0, nvKey, []string{"NSS_FAKE_NVML=driver=" + nvKey}},
		{"a token as the timeout", false, 0, hfToken, []string{"NSS_ENTRYPOINT_TIMEOUT=" + hfToken}},
		{"a token as the target", false, 127, hfToken, []string{"NSS_ENTRYPOINT_TARGET=" + hfToken}},
		// The line is cut at 2 KiB of text: a secret across the cut was
		// found by neither half.
		{"a token across the line's cut", false, 0, hfToken[:12], []string{"HF_HOME=/" + strings.Repeat("a", 2020) + "/" + hfToken}},
		// The timeout's warning quotes the value as Go's %q does.
		{"a quoted secret value", false, 0, `Pa"ss\word123`, []string{`HF_TOKEN=Pa"ss\word123`, `NSS_ENTRYPOINT_TIMEOUT=Pa"ss\word123`}},
		{"a URL password holding '#'", false, 0, "Pa#ss", []string{"NSS_WORKSPACE=/mnt/https://svc:Pa#ss@nas.example/data"}},
		// The probe's JSON writes a byte that is not UTF-8 as U+FFFD.
		{"a secret that is not UTF-8, through the probe", true, 0, "Passw0rdXYZ", []string{"DB_PASSWORD=S3cret\xffPassw0rdXYZ", "NSS_FAKE_NVML=driver=S3cret\xffPassw0rdXYZ"}},
		// Two values that overlap go whole, not one and the other's tail.
		{"two secrets that overlap", false, 0, "ijklmnop", []string{"A_PASSWORD=abcdefgh", "B_PASSWORD=efghijklmnop", "HF_HOME=/x/abcdefghijklmnop"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runEP(t, baseEnv(root(t, c.gpu), c.extra...))
			if res.code != c.code {
				t.Fatalf("exit %d, want %d\n%s", res.code, c.code, res.stderr)
			}
			shown := strings.NewReplacer(`\x1b`, "\x1b", `\"`, `"`, `\\`, `\`).Replace(res.stderr)
			if strings.Contains(shown, c.secret) || strings.Contains(res.stderr, c.secret) {
				t.Errorf("the secret %q is shown:\n%s", c.secret, res.stderr)
			}
			if !strings.Contains(res.stderr, "[redacted]") {
				t.Errorf("no [redacted] where the secret was:\n%s", res.stderr)
			}
		})
	}
}

// The scrubber takes out secrets, not places: the shell's PWD and a
// variable that says where a token is (HF_TOKEN_PATH) are shown as they
// are, though their names hold PWD and TOKEN.
func TestStartupLinesShowPlacesAsTheyAre(t *testing.T) {
	r := root(t, false)
	if err := os.WriteFile(filepath.Join(r, "hf", "mytoken"), []byte("  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		extra      []string
	}{
		{"PWD", "/missing-ws does not exist", []string{"NSS_WORKSPACE=/missing-ws", "PWD=/missing-ws", "OLDPWD=/missing-ws"}},
		{"HF_TOKEN_PATH", "/hf/mytoken holds only white space", []string{"HF_TOKEN=", "HF_TOKEN_PATH=/hf/mytoken"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := runEP(t, baseEnv(r, c.extra...))
			if !strings.Contains(res.stderr, c.want) {
				t.Errorf("want %q in:\n%s", c.want, res.stderr)
			}
		})
	}
}
