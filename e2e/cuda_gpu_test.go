//go:build gpu

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cudaProbe is the part of nss-gpu-probe's report the CUDA tests read.
type cudaProbe struct {
	NVMLLibrary string  `json:"nvml_library"`
	NVMLMillis  float64 `json:"nvml_ms"`
	Devices     []struct {
		Health map[string]any `json:"health"`
	} `json:"devices"`
	CUDA *struct {
		Library string `json:"library"`
		Error   *struct {
			Function, Name, Message string
			Code                    int
		} `json:"error"`
		DriverVersion int `json:"driver_version"`
		DeviceCount   int `json:"device_count"`
		Devices       []struct {
			Ordinal           int    `json:"ordinal"`
			Name              string `json:"name"`
			ComputeCapability string `json:"compute_capability"`
			Context           *struct {
				Error           any     `json:"error"`
				MemoryFreeBytes uint64  `json:"memory_free_bytes"`
				Millis          float64 `json:"ms"`
			} `json:"context"`
		} `json:"devices"`
		InitMillis  float64 `json:"init_ms"`
		StageMillis float64 `json:"stage_ms"`
	} `json:"cuda"`
}

func runProbe(t *testing.T, env []string, args ...string) cudaProbe {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir(t), "nss-gpu-probe"), args...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nss-gpu-probe %v: %v", args, err)
	}
	var p cudaProbe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return p
}

func TestCUDAMatchesNvidiaSMI(t *testing.T) {
	rows := requireGPU(t)
	p := runProbe(t, hostEnv(binDir(t)), "--diagnose")
	c := p.CUDA
	if c == nil || c.Error != nil {
		t.Fatalf("CUDA stage %+v", c)
	}
	t.Logf("libcuda %s, libnvidia-ml %s, cuInit %.1f ms, stage %.1f ms", c.Library, p.NVMLLibrary, c.InitMillis, c.StageMillis)
	if c.DeviceCount != len(rows) || len(c.Devices) != len(rows) {
		t.Fatalf("CUDA counts %d devices, nvidia-smi %d", c.DeviceCount, len(rows))
	}
	for i, row := range rows {
		d := c.Devices[i]
		if d.Name != row.Name || d.ComputeCapability != row.ComputeCap {
			t.Errorf("CUDA device %d %q %s, nvidia-smi %q %s", i, d.Name, d.ComputeCapability, row.Name, row.ComputeCap)
		}
		if d.Context == nil || d.Context.Error != nil || d.Context.MemoryFreeBytes == 0 {
			t.Errorf("context on device %d: %+v", i, d.Context)
		}
	}
	if want := smiCUDA(t); fmt.Sprintf("%d.%d", c.DriverVersion/1000, c.DriverVersion%1000/10) != want {
		t.Errorf("cuDriverGetVersion %d, nvidia-smi CUDA %s", c.DriverVersion, want)
	}
	// The loaded libraries are the driver's own, versioned like the driver.
	for _, lib := range []string{c.Library, p.NVMLLibrary} {
		if !strings.Contains(lib, rows[0].Driver) {
			t.Errorf("loaded %q, want a file of driver %s", lib, rows[0].Driver)
		}
	}
	if len(p.Devices) == 0 || p.Devices[0].Health == nil {
		t.Errorf("no health in --diagnose: %+v", p.Devices)
	} else {
		t.Logf("GPU 0 health: %v", p.Devices[0].Health)
	}
}

func TestCUDAVisibleDevicesMissingIndex(t *testing.T) {
	rows := requireGPU(t)
	p := runProbe(t, hostEnv(binDir(t), fmt.Sprintf("CUDA_VISIBLE_DEVICES=%d", len(rows))), "--cuda")
	if p.CUDA == nil || p.CUDA.Error == nil || (p.CUDA.Error.Code != 100 && p.CUDA.Error.Code != 101) {
		t.Fatalf("CUDA_VISIBLE_DEVICES=%d on %d GPUs: %+v", len(rows), len(rows), p.CUDA)
	}
	t.Logf("CUDA_VISIBLE_DEVICES=%d: %s in %s", len(rows), p.CUDA.Error.Name, p.CUDA.Error.Function)
	// And the entrypoint, asked for the CUDA stage, says so and starts the target.
	ep := exec.Command(filepath.Join(binDir(t), "nss-entrypoint"))
	ep.Env = hostEnv(binDir(t), fmt.Sprintf("CUDA_VISIBLE_DEVICES=%d", len(rows)), "NSS_ENTRYPOINT_CUDA=on", "FAKE_TARGET_EXIT=7", "NSS_WORKSPACE=/", "HF_HOME=/tmp", "HF_TOKEN=x")
	out, err := ep.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || !strings.Contains(string(out), "CUDA_VISIBLE_DEVICES") {
		t.Errorf("entrypoint: %v\n%s", err, out)
	}
}

// TestStubLibcudaOnLDLibraryPath puts a stub libcuda first on
// LD_LIBRARY_PATH: the CUDA toolkit's own when this host has one, else the
// fake stub `make gpu-suite` built (stubs/ beside bin/).
func TestStubLibcudaOnLDLibraryPath(t *testing.T) {
	requireGPU(t)
	stubs := filepath.Join(filepath.Dir(binDir(t)), "stubs")
	for _, dir := range []string{"/usr/local/cuda/lib64/stubs", "/usr/local/cuda/targets/x86_64-linux/lib/stubs", "/usr/local/cuda/targets/sbsa-linux/lib/stubs"} {
		if _, err := os.Stat(filepath.Join(dir, "libcuda.so")); err == nil {
			stubs = dir
			break
		}
	}
	if _, err := os.Stat(filepath.Join(stubs, "libcuda.so")); err != nil {
		t.Skip("no stub libcuda.so: neither the CUDA toolkit's nor the suite's")
	}
	t.Logf("stub: %s/libcuda.so", stubs)
	// dlopen("libcuda.so.1") needs that name: link it in a folder of ours.
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(stubs, "libcuda.so"), filepath.Join(dir, "libcuda.so.1")); err != nil {
		t.Fatal(err)
	}
	env := hostEnv(binDir(t))
	for i, kv := range env {
		if strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			env = append(env[:i], env[i+1:]...)
			break
		}
	}
	p := runProbe(t, append(env, "LD_LIBRARY_PATH="+dir), "--cuda")
	if p.CUDA == nil || p.CUDA.Error == nil || p.CUDA.Error.Code != 34 {
		t.Fatalf("stub libcuda: %+v", p.CUDA)
	}
	if !strings.Contains(p.CUDA.Library, "stubs") {
		t.Errorf("loaded %q, want the stub", p.CUDA.Library)
	}
}

// TestCUDAInitCost measures what the CUDA stage adds to the probe: the
// probe with NVML only against the probe with --cuda, interleaved, 20 runs
// each, medians. The start path may run cuInit only if the difference is
// under 50 ms (check.StartupCUDA); the figures go to cuda-timings.md.
func TestCUDAInitCost(t *testing.T) {
	requireGPU(t)
	env := hostEnv(binDir(t))
	probe := filepath.Join(binDir(t), "nss-gpu-probe")
	var nvmlOnly, withCUDA, initMs []time.Duration
	for i := 0; i < 20; i++ {
		for _, cuda := range []bool{false, true} {
			args := []string{}
			if cuda {
				args = append(args, "--cuda")
			}
			cmd := exec.Command(probe, args...)
			cmd.Env = env
			start := time.Now()
			out, err := cmd.Output()
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if !cuda {
				nvmlOnly = append(nvmlOnly, took)
				continue
			}
			withCUDA = append(withCUDA, took)
			var p cudaProbe
			if json.Unmarshal(out, &p) == nil && p.CUDA != nil {
				initMs = append(initMs, time.Duration(p.CUDA.InitMillis*float64(time.Millisecond)))
			}
		}
	}
	added := median(withCUDA) - median(nvmlOnly)
	verdict := "over 50 ms: cuInit stays in --diagnose only"
	if added < 50*time.Millisecond {
		verdict = "under 50 ms: cuInit may run on the start path (set startupCUDADefault)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| nss-gpu-probe (median of 20, interleaved) | median |\n|---|---|\n")
	fmt.Fprintf(&b, "| NVML only | %s |\n| NVML + CUDA stage (--cuda) | %s |\n| cuInit alone (inside the stage) | %s |\n",
		median(nvmlOnly).Round(10*time.Microsecond), median(withCUDA).Round(10*time.Microsecond), median(initMs).Round(10*time.Microsecond))
	fmt.Fprintf(&b, "\nadded by the CUDA stage: %s, %s\n", added.Round(10*time.Microsecond), verdict)
	t.Log("\n" + b.String())
	if out := os.Getenv("NSS_E2E_OUT"); out != "" {
		os.WriteFile(filepath.Join(out, "cuda-timings.md"), []byte(b.String()), 0o644)
	}
}
