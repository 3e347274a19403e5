package main_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// cudaCase is one CUDA outcome, made by the fake libcuda (and, where the
// cause needs it, the fake NVML and the environment).
type cudaCase struct {
	name  string
	env   []string // NSS_FAKE_CUDA, NSS_FAKE_NVML, LD_LIBRARY_PATH, ...
	cause string   // in the message
	fix   string   // in the hint (Docker's words)
}

func cudaCases() []cudaCase {
	return []cudaCase{
		{"3 MIG without instances", []string{"NSS_FAKE_CUDA=init=3", "NSS_FAKE_NVML=mig,migdevices=0"}, "MIG is enabled on GPU 0 but no MIG instance exists", "nvidia-smi mig -cgi"},
		{"3 otherwise", []string{"NSS_FAKE_CUDA=init=3", "NSS_FAKE_NVML=mig"}, "CUDA cuInit failed with CUDA_ERROR_NOT_INITIALIZED (3)", "--diagnose"},
		{"34 stub", []string{"LD_LIBRARY_PATH=" + bins.StubDir + ":" + bins.NVMLDir}, "stub libcuda", "remove the stubs folder from LD_LIBRARY_PATH"},
		{"35 insufficient driver", []string{"NSS_FAKE_CUDA=init=35"}, "older than this CUDA library needs", "update the host's NVIDIA driver"},
		{"46 exclusive process", []string{"NSS_FAKE_CUDA=init=46"}, "exclusive-process compute mode", "docker run -e NVIDIA_VISIBLE_DEVICES=<free GPU> ..."},
		{"100 hidden devices", []string{"NSS_FAKE_CUDA=init=100"}, "NVML sees 1 GPU(s) but CUDA sees none", "docker run --gpus all ..."},
		{"101 CUDA_VISIBLE_DEVICES", []string{"NSS_FAKE_CUDA=devices=1", "CUDA_VISIBLE_DEVICES=4"}, `CUDA_VISIBLE_DEVICES="4" names no GPU CUDA can use`, "docker run -e CUDA_VISIBLE_DEVICES=0 ..."},
		{"101 from cuDeviceGetCount", []string{"NSS_FAKE_CUDA=count=101", "CUDA_VISIBLE_DEVICES=0,9"}, "CUDA_ERROR_INVALID_DEVICE", "CUDA_VISIBLE_DEVICES=0"},
		{"802 fabric manager", []string{"NSS_FAKE_CUDA=init=802"}, "fabric manager is not running", "systemctl enable --now nvidia-fabricmanager"},
		{"803 driver mismatch", []string{"NSS_FAKE_CUDA=init=803"}, "and the kernel module", "reboot the host"},
		{"804 compat on an unsupported GPU", []string{"NSS_FAKE_CUDA=init=804"}, "forward-compatibility libraries", "cuda/compat"},
		{"999 unknown", []string{"NSS_FAKE_CUDA=init=999"}, "NVML sees 1 GPU(s) but CUDA sees none (CUDA_ERROR_UNKNOWN)", "docker run --gpus all ..."},
		{"hang in cuInit", []string{"NSS_FAKE_CUDA=hang", "NSS_ENTRYPOINT_TIMEOUT=1s"}, "CUDA did not answer in time", "nvidia-smi -pm 1"},
		{"crash in cuInit", []string{"NSS_FAKE_CUDA=crash"}, "crashed in cuInit (crashed with SIGSEGV)", "reinstall the NVIDIA driver"},
		{"old libcuda", []string{"LD_LIBRARY_PATH=" + bins.CUDAOldDir + ":" + bins.NVMLDir, "NSS_FAKE_CUDA=init=35"}, "older than this CUDA library needs", "update the host's NVIDIA driver"},
	}
}

// TestEveryCUDAResultStillStartsTheTarget runs nss-entrypoint with the CUDA
// stage asked for (NSS_ENTRYPOINT_CUDA=on) over the fake libcuda, through
// the real nss-gpu-probe and dlopen: each result prints its cause and fix,
// and the target starts with its arguments and nothing more.
func TestEveryCUDAResultStillStartsTheTarget(t *testing.T) {
	for _, tc := range cudaCases() {
		t.Run(tc.name, func(t *testing.T) {
			env := append(baseEnv(root(t, true), "FAKE_TARGET_EXIT=42", "NSS_ENTRYPOINT_CUDA=on"), tc.env...)
			res := runEP(t, env, "run", "--data", "x.csv")
			if res.code != 42 {
				t.Fatalf("exit %d, want the target's 42; stderr %s", res.code, res.stderr)
			}
			if !strings.Contains(res.stderr, tc.cause) || !strings.Contains(res.stderr, tc.fix) {
				t.Errorf("stderr lacks %q or %q:\n%s", tc.cause, tc.fix, res.stderr)
			}
			r := report(t, res)
			if got := r.Args(); !slices.Equal(got, []string{"safe-synthesizer", "run", "--data", "x.csv"}) {
				t.Errorf("argv %q", got)
			}
			if want := inheritedFDs(t); !slices.Equal(r.FDNumbers(), want) {
				t.Errorf("target descriptors %v, want %v", r.FDs, want)
			}
			if res.took > 3*time.Second {
				t.Errorf("start took %v", res.took)
			}
		})
	}
}

// TestCUDAIsNotOnTheStartPathByDefault: until cuInit's cost is measured on
// a GPU host, the start path does not call it, so a broken libcuda does not
// show at start-up (the report shows it).
func TestCUDAIsNotOnTheStartPathByDefault(t *testing.T) {
	for _, env := range [][]string{{"NSS_FAKE_CUDA=init=802"}, {"NSS_FAKE_CUDA=hang"}, {"NSS_FAKE_CUDA=init=802", "NSS_ENTRYPOINT_CUDA=off"}} {
		res := runEP(t, append(baseEnv(root(t, true)), env...))
		if res.code != 0 || res.stderr != "nss-entrypoint: ok: 5 checks passed; 1 GPU: NVIDIA H200 (140.4 GiB), driver 580.159.04, CUDA 13.0\n" {
			t.Errorf("%v: exit %d, stderr %q", env, res.code, res.stderr)
		}
	}
	res := runEP(t, append(baseEnv(root(t, true)), "NSS_ENTRYPOINT_CUDA=on"))
	if !strings.HasSuffix(res.stderr, "CUDA 13.0, cuInit ok\n") {
		t.Errorf("with the CUDA stage asked for: %q", res.stderr)
	}
}

// TestDiagnoseRunsTheCUDAStage: the report always runs cuInit and a context
// per GPU, and says the cause and fix of each result in its cuda check.
func TestDiagnoseRunsTheCUDAStage(t *testing.T) {
	cases := append(cudaCases(), cudaCase{"out of memory at context creation", []string{"NSS_FAKE_CUDA=ctx=2"}, "could not make a CUDA context", "NVIDIA_VISIBLE_DEVICES=<free GPU>"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := append(baseEnv(root(t, true), "NSS_FAKE_NVML=devices=1"), tc.env...)
			res := runEP(t, env, "--diagnose", "--format", "json", "--timeout", "5s")
			var doc struct {
				Checks []struct {
					ID, Status, Message, Hint string
					Data                      map[string]any
				}
			}
			if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
				t.Fatalf("%v\n%s\n%s", err, res.stdout, res.stderr)
			}
			for _, c := range doc.Checks {
				if c.ID != "cuda" {
					continue
				}
				if c.Status == "ok" || !strings.Contains(c.Message, tc.cause) || !strings.Contains(c.Hint, tc.fix) {
					t.Errorf("cuda check %s: %q / %q, want %q / %q", c.Status, c.Message, c.Hint, tc.cause, tc.fix)
				}
				return
			}
			t.Error("no cuda check in the report")
		})
	}
}
