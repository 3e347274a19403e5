package gpuhelper

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCUDAStageThroughTheRealProbe runs nss-gpu-probe --cuda or --diagnose
// over the fake libnvidia-ml and the fake libcuda, both found by dlopen
// through LD_LIBRARY_PATH, and reads what the CUDA stage says.
func TestCUDAStageThroughTheRealProbe(t *testing.T) {
	type tc struct {
		name  string
		dir   string // LD_LIBRARY_PATH; bins.NVMLDir when ""
		nvml  string
		cuda  string
		extra []string
		args  []string
		check func(t *testing.T, o Outcome)
	}
	codeAt := func(fn string, code int, name string) func(t *testing.T, o Outcome) {
		return func(t *testing.T, o Outcome) {
			c := o.Report.CUDA
			if c == nil || c.Error == nil || c.Error.Code != code || c.Error.Name != name || !strings.HasPrefix(c.Error.Function, fn) || c.Error.Message == "" {
				t.Errorf("cuda %+v error %+v, want %s in %s", c, c.Error, name, fn)
			}
			if !o.Report.Loaded || len(o.Report.Devices) == 0 {
				t.Errorf("the NVML part was lost: %+v", o.Report)
			}
		}
	}
	tests := []tc{
		{name: "healthy, two GPUs", nvml: "devices=2", cuda: "devices=2,cc=8.9", args: []string{"--cuda"}, check: func(t *testing.T, o Outcome) {
			c := o.Report.CUDA
			if c == nil || c.Error != nil || c.DeviceCount != 2 || len(c.Devices) != 2 || c.DriverVersion != 13000 || c.Contexts {
				t.Fatalf("cuda %+v", c)
			}
			d := c.Devices[1]
			if d.Ordinal != 1 || d.Name != "NVIDIA H200" || d.ComputeCapability != "8.9" || d.PCIBusID != "0000:07:00.0" || d.Context != nil {
				t.Errorf("device %+v", d)
			}
			if c.Library != filepath.Join(bins.NVMLDir, "libcuda.so.1") || o.Report.NVMLLibrary != filepath.Join(bins.NVMLDir, "libnvidia-ml.so.1") {
				t.Errorf("libraries %q %q", c.Library, o.Report.NVMLLibrary)
			}
			if o.Report.Devices[0].Health != nil {
				t.Error("health without --diagnose")
			}
		}},
		{name: "diagnose: contexts and health", cuda: "devices=1,free=1024", nvml: "remap_pending,ecc=2,clocks=0x48,pcie=4/5/8/16,fabric=1,compute_mode=3", args: []string{"--diagnose"}, check: func(t *testing.T, o Outcome) {
			c := o.Report.CUDA
			if c == nil || c.Error != nil || !c.Contexts || len(c.Devices) != 1 {
				t.Fatalf("cuda %+v", c)
			}
			ctx := c.Devices[0].Context
			if ctx == nil || ctx.Error != nil || ctx.MemoryFreeBytes != 1024<<20 || ctx.MemoryTotal != 143771<<20 {
				t.Errorf("context %+v", ctx)
			}
			h := o.Report.Devices[0].Health
			if h == nil || h.RowRemapPending == nil || !*h.RowRemapPending || *h.RowRemapFailed || *h.RetiredPagesPending ||
				*h.VolatileUncorrectableECC != 2 || strings.Join(h.ClockEvents, ",") != "hw-slowdown,hw-thermal-slowdown" ||
				h.PCIeGen != 4 || h.PCIeMaxGen != 5 || h.PCIeWidth != 8 || h.PCIeMaxWidth != 16 || h.FabricState != "not-started" || h.ComputeMode != "exclusive-process" {
				t.Errorf("health %+v", h)
			}
		}},
		{name: "diagnose: the context is released", cuda: "devices=2", args: []string{"--diagnose"}, check: func(t *testing.T, o Outcome) {
			log, err := os.ReadFile(os.Getenv("NSS_TEST_CUDA_LOG"))
			if err != nil || string(log) != "retain 0\nrelease 0\nretain 1\nrelease 1\n" {
				t.Errorf("context calls %q (%v)", log, err)
			}
		}},
		{name: "old libcuda: fallbacks, names from our table", dir: bins.CUDAOldDir + ":" + bins.NVMLDir, cuda: "ctx=2", args: []string{"--diagnose"}, check: func(t *testing.T, o Outcome) {
			c := o.Report.CUDA
			if c == nil || c.Library != filepath.Join(bins.CUDAOldDir, "libcuda.so.1") {
				t.Fatalf("cuda %+v", c)
			}
			if c.Error == nil || c.Error.Code != 2 || c.Error.Name != "CUDA_ERROR_OUT_OF_MEMORY" || c.Error.Function != "cuCtxCreate_v2(0)" {
				t.Errorf("error %+v", c.Error)
			}
			for _, fn := range []string{"cuDeviceGetPCIBusId", "cuGetErrorName", "cuGetErrorString"} {
				if !strings.Contains(strings.Join(c.Unavailable, " "), fn) {
					t.Errorf("unavailable %v lacks %s", c.Unavailable, fn)
				}
			}
		}},
		{name: "stub library", dir: bins.StubDir + ":" + bins.NVMLDir, args: []string{"--cuda"}, check: func(t *testing.T, o Outcome) {
			codeAt("cuInit", 34, "CUDA_ERROR_STUB_LIBRARY")(t, o)
			if !strings.HasSuffix(o.Report.CUDA.Library, "/stubs/libcuda.so") {
				t.Errorf("library %q: dladdr should name the real file behind the link", o.Report.CUDA.Library)
			}
		}},
		{name: "no libcuda", dir: bins.NVMLOldDir, args: []string{"--cuda"}, check: func(t *testing.T, o Outcome) {
			c := o.Report.CUDA
			if c == nil || c.Error == nil || c.Error.Name != "LIBRARY_NOT_FOUND" || !strings.Contains(c.LoadError, "libcuda.so.1") {
				t.Errorf("cuda %+v", c)
			}
		}},
		{name: "CUDA_VISIBLE_DEVICES names a missing GPU", cuda: "devices=2", extra: []string{"CUDA_VISIBLE_DEVICES=5"}, args: []string{"--cuda"}, check: codeAt("cuInit", 100, "CUDA_ERROR_NO_DEVICE")},
		{name: "CUDA_VISIBLE_DEVICES is read up to its first bad entry", cuda: "devices=2", extra: []string{"CUDA_VISIBLE_DEVICES=1,7,0"}, args: []string{"--cuda"}, check: func(t *testing.T, o Outcome) {
			if c := o.Report.CUDA; c.Error != nil || c.DeviceCount != 1 || c.Devices[0].PCIBusID != "0000:07:00.0" {
				t.Errorf("cuda %+v", c)
			}
		}},
		{name: "hang in cuInit: the NVML part survives", cuda: "hang", args: []string{"--cuda", "--budget=800ms"}, check: func(t *testing.T, o Outcome) {
			c := o.Report.CUDA
			if c == nil || c.Error == nil || c.Error.Name != "TIMEOUT" || c.Error.Function != "cuInit" {
				t.Errorf("cuda %+v", c)
			}
			if !o.Report.Loaded || len(o.Report.Devices) != 1 {
				t.Errorf("NVML part %+v", o.Report)
			}
		}},
		{name: "crash in cuInit: the NVML part survives", cuda: "crash", args: []string{"--cuda"}, check: func(t *testing.T, o Outcome) {
			c := o.Report.CUDA
			if c == nil || c.Error == nil || c.Error.Name != "CRASHED" || c.Error.Function != "cuInit" || !strings.Contains(c.Error.Message, "SIGSEGV") {
				t.Errorf("cuda %+v", c)
			}
		}},
	}
	for _, code := range []struct {
		setting string
		fn      string
		code    int
		name    string
	}{
		{"init=3", "cuInit", 3, "CUDA_ERROR_NOT_INITIALIZED"},
		{"init=35", "cuInit", 35, "CUDA_ERROR_INSUFFICIENT_DRIVER"},
		{"init=46", "cuInit", 46, "CUDA_ERROR_DEVICE_UNAVAILABLE"},
		{"init=100", "cuInit", 100, "CUDA_ERROR_NO_DEVICE"},
		{"init=802", "cuInit", 802, "CUDA_ERROR_SYSTEM_NOT_READY"},
		{"init=803", "cuInit", 803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"},
		{"init=804", "cuInit", 804, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"},
		{"init=999", "cuInit", 999, "CUDA_ERROR_UNKNOWN"},
		{"count=101", "cuDeviceGetCount", 101, "CUDA_ERROR_INVALID_DEVICE"},
		{"ctx=46", "cuDevicePrimaryCtxRetain(0)", 46, "CUDA_ERROR_DEVICE_UNAVAILABLE"},
		{"ctx=2", "cuDevicePrimaryCtxRetain(0)", 2, "CUDA_ERROR_OUT_OF_MEMORY"},
	} {
		tests = append(tests, tc{name: "result " + code.setting, cuda: code.setting, args: []string{"--diagnose"}, check: codeAt(code.fn, code.code, code.name)})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = bins.NVMLDir
			}
			log := filepath.Join(t.TempDir(), "cuda.log")
			t.Setenv("NSS_TEST_CUDA_LOG", log)
			env := append(probeEnv(dir, tc.nvml, tc.extra...), "NSS_FAKE_CUDA="+tc.cuda, "NSS_FAKE_CUDA_LOG="+log)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			o := Run(ctx, bins.Probe, env, tc.args...)
			if o.Failure != None || o.Report == nil {
				t.Fatalf("failure %q (%s)", o.Failure, o.Detail)
			}
			tc.check(t, o)
		})
	}
}

// TestAKilledProbeLeavesNoCUDAStageBehind: when the caller's deadline kills
// the probe while its CUDA stage hangs in cuInit, the stage dies with it.
func TestAKilledProbeLeavesNoCUDAStageBehind(t *testing.T) {
	marker := "NSS_TEST_MARKER=" + filepath.Base(t.TempDir())
	env := append(probeEnv(bins.NVMLDir, ""), "NSS_FAKE_CUDA=hang", marker)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	// The probe is told it has 30 s, so its own deadline for the stage is
	// far away: only the caller's kill ends it.
	if o := Run(ctx, bins.Probe, env, "--cuda", "--budget=30s"); o.Failure != TimedOut {
		t.Fatalf("failure %q", o.Failure)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		left := stagesWith(marker)
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d CUDA stage process(es) outlived the probe", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stagesWith counts live processes whose environment holds marker.
func stagesWith(marker string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
		if strings.Contains(string(b), marker) && !strings.Contains(string(stat), ") Z ") {
			n++
		}
	}
	return n
}
