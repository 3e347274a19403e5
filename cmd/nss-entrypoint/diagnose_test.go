package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/redact/redacttest"
	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/report/reporttest"
)

// A planted secret: where it was put, and the pieces of it that must not
// appear in a report.
type plant struct {
	where  string
	pieces []string
	// inEnv: it sits in the environment, so --no-redact shows it.
	inEnv bool
}

// plantedRoot returns a container root and an environment with a secret of
// every kind in redacttest's corpus planted where a report once leaked it:
// in allowlisted variables (NSS_*, HF_*, WANDB_PROJECT, the proxies), by
// variable name, in /workspace/.env (a multi-line private key), in the token
// file, the config file and its path.
func plantedRoot(t *testing.T) (string, []string, []plant) {
	t.Helper()
	r := root(t, true)
	corpus := redacttest.Corpus()
	byClass := map[string]redacttest.Secret{}
	for _, s := range corpus {
		byClass[s.Class] = s
	}
	hf := func(where string) string { return "hf_PLANTED" + where + "TOKENabcdefghijklmnop" }
	var plants []plant
	var env []string
	set := func(name, value string, pieces ...string) {
		env = append(env, name+"="+value)
		plants = append(plants, plant{where: name, pieces: pieces, inEnv: true})
	}
	for i, s := range corpus {
		if s.Proxy {
			// Go and curl take a proxy without a scheme.
			for _, name := range []string{"HTTP_PROXY", "ALL_PROXY", "all_proxy", "no_proxy"} {
				set(name, s.Text, s.Pieces...)
			}
		}
		switch {
		case s.Var != "":
			set(s.Var, s.Text, s.Pieces...)
		case i%2 == 0:
			set(fmt.Sprintf("NSS_PLANTED_%d", i), s.Text, s.Pieces...)
		default:
			set(fmt.Sprintf("HF_PLANTED_%d", i), s.Text, s.Pieces...)
		}
	}
	aws := byClass["AWS secret access key in an innocently named variable"]
	set("WANDB_PROJECT", aws.Text, aws.Pieces...)
	proxy := byClass["URL password with / and @"]
	set("HTTPS_PROXY", proxy.Text, proxy.Pieces...)
	set("http_proxy", proxy.Text, proxy.Pieces...)
	user := byClass["token as the URL's user name"]
	set("HF_ENDPOINT", user.Text, user.Pieces...)
	query := byClass["query parameters"]
	set("NSS_INFERENCE_ENDPOINT", query.Text, query.Pieces...)
	set("NVIDIA_NOTE", "nvapi-PLANTEDnvidiaKEYabcdefghijklm", "nvapi-PLANTEDnvidiaKEYabcdefghijklm")
	set("NSS_AUTH_HEADER", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJQTEFOVEVEIn0.PLANTEDjwtSIGabcdef", "PLANTEDjwtSIG", "eyJzdWIiOiJQTEFOVEVEIn0")
	set("HF_TOKEN", hf("env"), hf("env"))
	set("NSS_"+hf("name")+"=1", "x", hf("name"))

	// A private key of its own in .env, so that --no-redact shows none of it.
	var pemLines []string
	for _, l := range byClass["PEM private key"].Pieces {
		pemLines = append(pemLines, reverse(l))
	}
	pem := "-----BEGIN OPENSSH PRIVATE KEY-----\n" + strings.Join(pemLines, "\n") + "\n-----END OPENSSH PRIVATE KEY-----\n"
	cfgName := "cfg-" + hf("path") + ".yaml"
	// And one without quotes, whose base64 lines read as NAME= lines.
	bodyLine := "Wx7Kq2Zp9LrPLANTED="
	files := map[string]string{
		"hf/token": hf("file") + "\n",
		"workspace/.env": "PRIVATE_KEY=\"" + pem + "\"\nHF_TOKEN=" + hf("dotenv") + "\nexport WANDB_API_KEY=x\n" +
			"SSH_KEY=-----BEGIN OPENSSH PRIVATE KEY-----\n" + bodyLine + "\n-----END OPENSSH PRIVATE KEY-----\n",
		// The user's passwd name is personal.
		"etc/passwd":           fmt.Sprintf("jdoe.PLANTEDrealname:x:%d:%d:Jane Doe:/home/appuser:/bin/sh\nroot:x:0:0:root:/root:/bin/sh\n", os.Geteuid(), os.Getegid()),
		"workspace/" + cfgName: "model: meta-llama/Llama-3.2-1B\napi_key: " + hf("config") + "\n",
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(r, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A secret variable's value reused where the report shows a path:
	// found by value, as the start-up lines find it.
	set("DB_PASSWORD", "Summer2024reused", "Summer2024reused")
	env = append(env, "NSS_ARTIFACTS_PATH=/workspace/Summer2024reused")
	env = append(env, "NSS_CONFIG=/workspace/"+cfgName)
	plants = append(plants,
		plant{where: "token file", pieces: []string{hf("file")}},
		plant{where: ".env value", pieces: []string{hf("dotenv")}},
		plant{where: ".env multi-line private key", pieces: pemLines},
		plant{where: "config contents", pieces: []string{hf("config")}},
		plant{where: "config path", pieces: []string{hf("path")}, inEnv: true},
		plant{where: ".env unquoted private key", pieces: []string{strings.TrimSuffix(bodyLine, "=")}},
		plant{where: "passwd user name", pieces: []string{"jdoe.PLANTEDrealname"}, inEnv: true})

	full := baseEnv(r, append([]string{"NSS_FAKE_NVML=devices=1"}, env...)...)
	// baseEnv's HF_TOKEN gives way to the planted one.
	for i, kv := range full {
		if strings.HasPrefix(kv, "HF_TOKEN=hf_test") {
			full = append(full[:i], full[i+1:]...)
			break
		}
	}
	return r, full, plants
}

// TestDiagnoseRedactsEverySecret runs the real nss-diagnose (through
// nss-entrypoint --diagnose) over the planted root in every format.
func TestDiagnoseRedactsEverySecret(t *testing.T) {
	_, env, plants := plantedRoot(t)
	for _, args := range [][]string{
		{"--diagnose"}, {"--diagnose", "--verbose"}, {"--diagnose", "--format", "json"},
		{"--diagnose", "--format", "markdown"}, {"--diagnose", "--format=json", "--verbose"},
	} {
		res := runEP(t, env, args...)
		if res.code != 0 && res.code != 1 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		for _, p := range plants {
			for _, piece := range p.pieces {
				if strings.Contains(res.stdout, piece) || strings.Contains(res.stderr, piece) {
					t.Errorf("%v: %s leaked %q", args, p.where, piece)
				}
			}
		}
		if !strings.Contains(res.stdout, "redact") {
			t.Errorf("%v: no redaction footer", args)
		}
		if !strings.Contains(res.stdout, "PRIVATE_KEY") {
			t.Errorf("%v: the .env key names are missing", args)
		}
	}
	// The control: without redaction every secret planted in the
	// environment shows, so the test above can see each leak. .env values,
	// the token file and the config's contents are never shown.
	for _, format := range []string{"json", "text"} {
		res := runEP(t, env, "--diagnose", "--verbose", "--format", format, "--no-redact")
		for _, p := range plants {
			for _, piece := range p.pieces {
				if shown := strings.Contains(res.stdout, piece) || strings.Contains(res.stdout, jsonString(piece)); shown != p.inEnv {
					t.Errorf("--no-redact --format %s: %s piece %q shown %v, want %v", format, p.where, piece, shown, p.inEnv)
				}
			}
		}
	}
	// Usage errors do not echo the arguments.
	secret := "hf_PLANTEDargTOKENabcdefghijklmnop"
	for _, args := range [][]string{{"--format", secret}, {"--timeout", secret}, {"--" + secret}, {secret}} {
		res := runEP(t, env, append([]string{"--diagnose"}, args...)...)
		if res.code != 2 || strings.Contains(res.stderr+res.stdout, "PLANTEDarg") {
			t.Errorf("%v: exit %d, stderr %q", args, res.code, res.stderr)
		}
	}
}

// A secret that is not UTF-8 (a Latin-1 password) reused in a path the
// report shows: the report's checks' data goes through a JSON round trip
// before redaction, which writes each such byte as U+FFFD; the secret is
// looked for in that form too.
func TestDiagnoseRedactsASecretThatIsNotUTF8(t *testing.T) {
	const secret = "S3cret\xffPassw0rdXYZ"
	env := baseEnv(root(t, false), "DB_PASSWORD="+secret, "NSS_WORKSPACE=/w/"+secret)
	for _, format := range []string{"text", "json", "markdown"} {
		res := runEP(t, env, "--diagnose", "--verbose", "--format", format)
		if strings.Contains(res.stdout, "Passw0rdXYZ") || strings.Contains(res.stderr, "Passw0rdXYZ") {
			t.Errorf("--format %s shows the secret:\n%s", format, res.stdout)
		}
	}
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

// jsonString is s as encoding/json writes it inside a string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func TestDiagnoseJSON(t *testing.T) {
	_, env, _ := plantedRoot(t)
	res := runEP(t, env, "--diagnose", "--format", "json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, res.stdout)
	}
	if err := reporttest.Validate(t, reporttest.Schema(t), []byte(res.stdout)); err != nil {
		t.Error(err)
	}
	checks := map[string]map[string]any{}
	for _, c := range doc["checks"].([]any) {
		m := c.(map[string]any)
		checks[m["id"].(string)] = m
	}
	if checks["gpu"]["status"] != "ok" || !strings.Contains(checks["gpu"]["message"].(string), "1 GPU: NVIDIA H200") {
		t.Errorf("gpu check %v", checks["gpu"])
	}
	if checks["hf-gated-model"]["status"] != "ok" {
		t.Errorf("gated model with a token: %v", checks["hf-gated-model"])
	}
	if got := doc["facts"].(map[string]any)["environment"].(map[string]any)["NSS_DB_PASS"]; got != "set, 21 chars" {
		t.Errorf("NSS_DB_PASS shown as %v", got)
	}
}

// nss-diagnose and the helpers it runs are Go programs: the user's Go
// settings, meant for the user's programs, reach neither runtime (the entry
// stub for nss-diagnose, gpuhelper's helperEnv for the helpers). A
// GOMEMLIMIT=4G aborted nss-diagnose before its main.
func TestDiagnoseRunsWhateverTheUsersGoSettings(t *testing.T) {
	_, env, _ := plantedRoot(t)
	env = append(env, "GOMEMLIMIT=4G", "GODEBUG=inittrace=1", "GOGC=off", "GOMAXPROCS=64")
	res := runEP(t, env, "--diagnose", "--format", "json")
	if res.code != 0 || runtimeTrace.MatchString(res.stderr) {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	var doc struct {
		Checks []struct{ ID, Status, Message string }
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, res.stdout)
	}
	for _, c := range doc.Checks {
		if c.ID == "gpu" && (c.Status != "ok" || !strings.Contains(c.Message, "1 GPU: NVIDIA H200")) {
			t.Errorf("gpu check: %s %s", c.Status, c.Message)
		}
	}
}

func TestDiagnoseNamesASlowCheck(t *testing.T) {
	env := baseEnv(root(t, true), "NSS_FAKE_NVML=hang")
	res := runEP(t, env, "--diagnose", "--timeout", "4s")
	if !strings.Contains(res.stderr, "still waiting on GPU: waiting for nss-gpu-probe (NVML)") {
		t.Errorf("no progress line on stderr: %q", res.stderr)
	}
	if !strings.Contains(res.stdout, "did not answer in time") {
		t.Errorf("the report does not say the probe timed out:\n%s", res.stdout)
	}
	if res.took > 8e9 {
		t.Errorf("took %v with --timeout 4s", res.took)
	}
}

// TestDiagnoseEscapesInvisible plants characters that change how a line
// reads without being seen (bidi override, zero-width, BOM, line
// separator, Unicode tags) in a variable: no format shows one raw.
func TestDiagnoseEscapesInvisible(t *testing.T) {
	invisible := "\u202e\u200b\u2060\ufeff\u2028\U000E0041\U000E007F"
	env := baseEnv(root(t, true), "NSS_FAKE_NVML=devices=1", "NSS_NOTE=a"+invisible+"b")
	for _, format := range []string{"text", "json", "markdown"} {
		res := runEP(t, env, "--diagnose", "--verbose", "--format", format)
		if !strings.Contains(res.stdout, "NSS_NOTE") {
			t.Errorf("%s: NSS_NOTE not shown", format)
		}
		if i := strings.IndexAny(res.stdout, invisible); i >= 0 {
			t.Errorf("%s: raw invisible character at %d: %q", format, i, res.stdout[max(0, i-40):min(len(res.stdout), i+40)])
		}
	}
}

// TestDiagnoseEndsInTime gives the report about 1 MB of hostile
// environment (URLs of 120,000 "@", thousands of keyword-laden values):
// redaction stops at --timeout, so the report still comes, promptly.
func TestDiagnoseEndsInTime(t *testing.T) {
	extra := []string{"NSS_FAKE_NVML=devices=1"}
	for i := range 8 {
		extra = append(extra, fmt.Sprintf("NSS_N%d=http://%s", i, strings.Repeat("@", 120000)))
	}
	for i := range 3000 {
		extra = append(extra, fmt.Sprintf("NSS_K%d=password token secret api_key aws github slack %d", i, i))
	}
	res := runEP(t, baseEnv(root(t, true), extra...), "--diagnose", "--format", "json", "--timeout", "2s")
	if res.code != 0 && res.code != 1 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, `"schema_version"`) {
		t.Errorf("no report: %.300s", res.stdout)
	}
	// Not a timing measurement: the deadline is 2 s plus a second of grace;
	// before the fix this took minutes.
	if res.took > 15*time.Second {
		t.Errorf("took %v with --timeout 2s", res.took)
	}
}

// nss-entrypoint --diagnose without nss-diagnose beside it says so with its
// own path escaped: a folder name holding a terminal escape sequence does
// not reach the terminal raw.
func TestDiagnoseWithoutTheReportEscapesItsPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x\x1b]0;PWNED\a\x1b[31m")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bins.Entrypoint)
	if err != nil {
		t.Fatal(err)
	}
	ep := filepath.Join(dir, "nss-entrypoint")
	if err := os.WriteFile(ep, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ep, "--diagnose")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.Run()
	if cmd.ProcessState.ExitCode() != 3 || !strings.Contains(errb.String(), "--diagnose needs nss-diagnose") {
		t.Fatalf("exit %d: %q", cmd.ProcessState.ExitCode(), errb.String())
	}
	if strings.ContainsAny(errb.String(), "\x1b\a") {
		t.Errorf("a raw escape sequence reached stderr: %q", errb.String())
	}
}
