package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/report/reporttest"
)

// Secrets planted in every place one can hide; none may reach any format.
var planted = []string{
	"hf_PLANTEDenvTOKENabcdefghijklmnop",  // HF_TOKEN value
	"hf_PLANTEDfileTOKENabcdefghijklmno",  // token file
	"hf_PLANTEDdotenvTOKENabcdefghijklm",  // /workspace/.env value
	"hf_PLANTEDconfigTOKENabcdefghijklm",  // inside the config file
	"hf_PLANTEDpathTOKENabcdefghijklmno",  // in the config path
	"hf_PLANTEDnameTOKENabcdefghijklmno",  // in a variable name
	"nvapi-PLANTEDnvidiaKEYabcdefghijklm", // NVIDIA API key in an allowed variable
	"PLANTEDproxyPASSWORD",                // URL credentials
	"PLANTEDqueryTOKEN",                   // token= query parameter
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJQTEFOVEVEIn0.PLANTEDjwtSIG",
	"AKIAPLANTEDKEY123456",
	"PLANTEDsecretVALUE", // any variable whose name says SECRET
}

func plantedRoot(t *testing.T) (string, []string) {
	t.Helper()
	r := root(t, true)
	cfgDir := filepath.Join(r, "workspace")
	cfgName := "cfg-" + planted[4] + ".yaml"
	files := map[string]string{
		"hf/token":             planted[1] + "\n",
		"workspace/.env":       "HF_TOKEN=" + planted[2] + "\nWANDB_API_KEY=x\n",
		"workspace/" + cfgName: "model: meta-llama/Llama-3.2-1B\napi_key: " + planted[3] + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = cfgDir
	env := baseEnv(r,
		"NSS_FAKE_NVML=devices=1",
		"NSS_CONFIG=/workspace/"+cfgName,
		"NSS_"+planted[5]+"=1",
		"NVIDIA_API_KEY="+planted[6],
		"NVIDIA_NOTE="+planted[6],
		"HTTPS_PROXY=http://user:"+planted[7]+"@proxy.corp:3128",
		"NSS_INFERENCE_ENDPOINT=https://infer.example/v1?token="+planted[8],
		"NSS_AUTH_HEADER=Bearer "+planted[9],
		"CUDA_NOTE="+planted[10],
		"MY_SECRET="+planted[11],
	)
	// baseEnv's HF_TOKEN is replaced by the planted one.
	for i, kv := range env {
		if strings.HasPrefix(kv, "HF_TOKEN=") {
			env[i] = "HF_TOKEN=" + planted[0]
		}
	}
	return r, env
}

func TestDiagnoseRedactsEverySecret(t *testing.T) {
	_, env := plantedRoot(t)
	for _, args := range [][]string{
		{"--diagnose"}, {"--diagnose", "--verbose"}, {"--diagnose", "--format", "json"},
		{"--diagnose", "--format", "markdown"}, {"--diagnose", "--format=json", "--verbose"},
	} {
		res := runEP(t, env, args...)
		if res.code != 0 && res.code != 1 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		for _, s := range planted {
			if strings.Contains(res.stdout, s) || strings.Contains(res.stderr, s) {
				t.Errorf("%v: %q leaked", args, s)
			}
		}
		if !strings.Contains(res.stdout, "redact") {
			t.Errorf("%v: no redaction footer", args)
		}
	}
	// The same run without redaction shows them: the test can see a leak.
	res := runEP(t, env, "--diagnose", "--format", "json", "--no-redact")
	if !strings.Contains(res.stdout, planted[0]) {
		t.Error("--no-redact hides HF_TOKEN: the redaction test above proves nothing")
	}
}

func TestDiagnoseJSON(t *testing.T) {
	_, env := plantedRoot(t)
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
	if got := doc["facts"].(map[string]any)["environment"].(map[string]any)["NVIDIA_API_KEY"]; got != "set, 35 chars" {
		t.Errorf("NVIDIA_API_KEY shown as %v", got)
	}
}

func TestDiagnoseExitCodes(t *testing.T) {
	r := root(t, true)
	good := baseEnv(r, "NSS_FAKE_NVML=devices=1")
	tests := []struct {
		name string
		env  []string
		args []string
		code int
	}{
		{"failed check", baseEnv(t.TempDir()), nil, 1},
		{"usage: unknown flag", good, []string{"--frobnicate"}, 2},
		{"usage: bad format", good, []string{"--format", "yaml"}, 2},
		{"usage: stray argument", good, []string{"extra"}, 2},
		{"help", good, []string{"--help"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runEP(t, tc.env, append([]string{"--diagnose"}, tc.args...)...)
			if res.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %s", res.code, tc.code, res.stderr)
			}
			if tc.code == 2 && (res.stdout != "" || !strings.Contains(res.stderr, "usage: nss-entrypoint --diagnose")) {
				t.Errorf("usage error: stdout %q stderr %q", res.stdout, res.stderr)
			}
		})
	}
	// Warnings only: 0, or 1 with --strict.
	res := runEP(t, good, "--diagnose", "--format", "json")
	var doc struct {
		Overall string `json:"overall"`
	}
	json.Unmarshal([]byte(res.stdout), &doc)
	if doc.Overall == "fail" {
		t.Fatalf("the good root fails: %s", res.stdout)
	}
	want, strict := 0, 0
	if doc.Overall == "warn" {
		strict = 1
	}
	if res.code != want {
		t.Errorf("exit %d with overall %s", res.code, doc.Overall)
	}
	if res := runEP(t, good, "--diagnose", "--strict"); res.code != strict {
		t.Errorf("--strict exit %d, want %d", res.code, strict)
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

func TestDiagnoseWithoutNssDiagnose(t *testing.T) {
	// nss-entrypoint alone, without nss-diagnose beside it.
	dir := t.TempDir()
	b, err := os.ReadFile(bins.Entrypoint)
	if err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(dir, "nss-entrypoint")
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(alone, "--diagnose", "--format", "json")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("err %v, want exit 3", err)
	}
	if stdout.String() != "" || !strings.Contains(stderr.String(), "--diagnose needs nss-diagnose next to nss-entrypoint") {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}
