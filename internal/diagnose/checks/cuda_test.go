package checks_test

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/check/checktest"
	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/checks"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

func b(v bool) *bool     { return &v }
func u(v uint64) *uint64 { return &v }
func withHealth(h gpureport.Health, persistence string) *gpureport.Report {
	r := checktest.Healthy(2)
	r.Devices[1].Health = &h
	r.Devices[0].Health = &gpureport.Health{ComputeMode: "default"}
	r.Devices[1].PersistenceMode = persistence
	return r
}

func TestGPUHealth(t *testing.T) {
	ok := gpureport.Health{RetiredPagesPending: b(false), RowRemapPending: b(false), RowRemapFailed: b(false), VolatileUncorrectableECC: u(0),
		ClockEvents: []string{"gpu-idle"}, PCIeGen: 5, PCIeMaxGen: 5, PCIeWidth: 16, PCIeMaxWidth: 16, FabricState: "not-supported", ComputeMode: "default"}
	mod := func(f func(h *gpureport.Health)) gpureport.Health { h := ok; f(&h); return h }
	tests := []struct {
		name        string
		rep         *gpureport.Report
		status      check.Status
		msg         string
		persistence string
	}{
		{"healthy", withHealth(ok, "enabled"), check.OK, "no pending retirements", ""},
		{"idle link gen is a note", withHealth(mod(func(h *gpureport.Health) { h.PCIeGen = 1 }), "disabled"), check.OK, "GPU 1: PCIe gen 1 of 5 (normal while idle); GPU 1: persistence mode off", ""},
		{"retired pages", withHealth(mod(func(h *gpureport.Health) { h.RetiredPagesPending = b(true) }), ""), check.Fail, "GPU 1: retired pages wait for a GPU reset", ""},
		{"row remap pending", withHealth(mod(func(h *gpureport.Health) { h.RowRemapPending = b(true) }), ""), check.Fail, "remapped memory rows wait", ""},
		{"row remap failed", withHealth(mod(func(h *gpureport.Health) { h.RowRemapFailed, h.RowRemapPending = b(true), b(true) }), ""), check.Fail, "remapping failed", ""},
		{"ECC", withHealth(mod(func(h *gpureport.Health) { h.VolatileUncorrectableECC = u(4) }), ""), check.Fail, "4 uncorrectable ECC error(s)", ""},
		{"thermal", withHealth(mod(func(h *gpureport.Health) { h.ClockEvents = []string{"hw-thermal-slowdown"} }), ""), check.Warn, "clocks held down (hw-thermal-slowdown)", ""},
		{"power brake", withHealth(mod(func(h *gpureport.Health) { h.ClockEvents = []string{"hw-power-brake-slowdown"} }), ""), check.Warn, "hw-power-brake-slowdown", ""},
		{"narrow link", withHealth(mod(func(h *gpureport.Health) { h.PCIeWidth = 8 }), ""), check.Warn, "PCIe link x8 of x16", ""},
		{"fabric not started", withHealth(mod(func(h *gpureport.Health) { h.FabricState = "not-started" }), ""), check.Fail, "fabric registration not-started", ""},
		{"fabric failed", withHealth(mod(func(h *gpureport.Health) { h.FabricState, h.FabricStatus = "completed", "ERROR_NOT_READY" }), ""), check.Fail, "failed (ERROR_NOT_READY)", ""},
		{"prohibited", withHealth(mod(func(h *gpureport.Health) { h.ComputeMode = "prohibited" }), ""), check.Fail, "compute mode is prohibited", ""},
		{"exclusive is a note", withHealth(mod(func(h *gpureport.Health) { h.ComputeMode = "exclusive-process" }), ""), check.OK, "compute mode exclusive-process", ""},
		{"no health (older probe)", checktest.Healthy(1), check.OK, "no pending", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t)
			withGPU(t, e, tc.rep, nil)
			hint := ""
			if tc.status == check.Warn || tc.status == check.Fail {
				hint = "on the host"
			}
			checktest.Expect(t, checktest.Run(t, checks.GPUHealth, e), tc.status, tc.msg, hint)
		})
	}
}

func TestGPUDevicesAndCUDAChecks(t *testing.T) {
	two := checktest.Healthy(2)
	tests := []struct {
		name   string
		c      check.Check
		rep    *gpureport.Report
		nodes  map[string]string
		denied bool
		status check.Status
		msg    string
	}{
		{"nodes match", checks.GPUDevices, checktest.Healthy(1), map[string]string{"/dev/nvidia-uvm": "", "/dev/nvidia0": ""}, false, check.OK, "1 GPU node(s)"},
		{"nodes differ", checks.GPUDevices, two, map[string]string{"/dev/nvidia-uvm": "", "/dev/nvidia0": ""}, false, check.Warn, "NVML counts 2 GPU(s) but 1 /dev/nvidiaN node(s) exist"},
		{"cgroup lost", checks.GPUDevices, two, map[string]string{"/dev/nvidia0": "", "/dev/nvidia1": ""}, true, check.Fail, "device cgroup has lost access"},
		{"cuda works", checks.CUDA, withCUDA(gpureport.CUDA{DriverVersion: 13000, DeviceCount: 1, Contexts: true, InitMillis: 91.5,
			Devices: []gpureport.CUDADevice{{Ordinal: 0, Context: &gpureport.CUDAContext{MemoryFreeBytes: 100 << 30}}}}), nil, false, check.OK, "cuInit works; CUDA 13.0 sees 1 device(s), a context on each (cuInit 91.5 ms): GPU 0 100 GiB free"},
		{"cuda fails", checks.CUDA, withCUDA(gpureport.CUDA{DeviceCount: -1, Error: &gpureport.CUDAError{Function: "cuInit", Code: 802, Name: "CUDA_ERROR_SYSTEM_NOT_READY"}}), nil, false, check.Fail, "fabric manager"},
		{"older probe", checks.CUDA, checktest.Healthy(1), nil, false, check.Skip, "did not run the CUDA stage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t)
			withGPU(t, e, tc.rep, tc.nodes)
			e.OpenDevice = func(string) error {
				if tc.denied {
					return &os.PathError{Op: "open", Err: unix.EPERM}
				}
				return nil
			}
			hint := ""
			if tc.status == check.Warn || tc.status == check.Fail {
				hint = " "
			}
			checktest.Expect(t, checktest.Run(t, tc.c, e), tc.status, tc.msg, hint)
		})
	}
	for _, c := range []check.Check{checks.CUDA, checks.GPUDevices, checks.GPULibraries, checks.GPUHealth} {
		if r := checktest.Run(t, c, checktest.FakeEnv(t)); r.Status != check.Skip {
			t.Errorf("%s without a GPU: %v %q", c.ID, r.Status, r.Message)
		}
	}
}

func withCUDA(c gpureport.CUDA) *gpureport.Report {
	r := checktest.Healthy(1)
	r.CUDA = &c
	return r
}

// TestGPUDevicesUnderConstrainDevices: a Slurm node's /dev has every GPU and
// the job's cgroup allows the ones it was given; the others refuse with
// EPERM. That is the job's allocation, not a lost cgroup, when NVML agrees.
func TestGPUDevicesUnderConstrainDevices(t *testing.T) {
	four := map[string]string{"/dev/nvidia-uvm": "", "/dev/nvidia0": "", "/dev/nvidia1": "", "/dev/nvidia2": "", "/dev/nvidia3": ""}
	for _, tc := range []struct {
		name    string
		env     []string
		refused string // GPU indices, as the job is not given them
		nvml    int
		status  check.Status
		msg     string
	}{
		{"plain Slurm, one GPU of four", []string{"SLURM_JOB_ID=42", "SLURM_JOB_GPUS=0", "CUDA_VISIBLE_DEVICES=0"}, "123", 1, check.OK,
			"1 of 4 GPU node(s) open, /dev/nvidiactl and /dev/nvidia-uvm open: this Slurm job (ConstrainDevices) is granted a subset"},
		{"pyxis, two GPUs of four", []string{"SLURM_JOB_ID=42", "SLURM_JOB_GPUS=1,3"}, "02", 2, check.OK, "2 of 4 GPU node(s) open"},
		{"NVML disagrees with the granted nodes", []string{"SLURM_JOB_ID=42"}, "123", 2, check.Warn, "NVML counts 2 GPU(s) but 1 of the 4 /dev/nvidiaN node(s) open"},
		{"every GPU refused is still a loss", []string{"SLURM_JOB_ID=42"}, "0123", 1, check.Fail, "device cgroup has lost access"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			withGPU(t, e, checktest.Healthy(tc.nvml), four)
			if strings.HasPrefix(tc.name, "pyxis") {
				checktest.Mk(t, e, map[string]string{"/etc/rc": "# enroot-provenance: x\n"})
			}
			e.OpenDevice = func(p string) error {
				if i, ok := strings.CutPrefix(p, e.Path("/dev/nvidia")); ok && len(i) == 1 && strings.Contains(tc.refused, i) {
					return &os.PathError{Op: "open", Path: p, Err: unix.EPERM}
				}
				return nil
			}
			r := checktest.Run(t, checks.GPUDevices, e)
			hint := ""
			if tc.status != check.OK {
				hint = "srun --gpus=1"
			}
			checktest.Expect(t, r, tc.status, tc.msg, hint)
			if strings.Contains(r.Hint, "--device") {
				t.Errorf("srun has no --device: %s", r.Hint)
			}
		})
	}
}
