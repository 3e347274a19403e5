package nvmlprobe

import (
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// healthy sets the health functions of the mock's devices; the mock has
// none of its own, and calling one it lacks panics.
func healthy(srv *server.Server) {
	for _, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_DISABLED, nvml.SUCCESS }
		dev.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.SUCCESS }
		dev.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 0, nvml.SUCCESS }
		dev.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return nvml.ClocksEventReasonGpuIdle, nvml.SUCCESS }
		dev.GetCurrPcieLinkGenerationFunc = func() (int, nvml.Return) { return 5, nvml.SUCCESS }
		dev.GetMaxPcieLinkGenerationFunc = func() (int, nvml.Return) { return 5, nvml.SUCCESS }
		dev.GetCurrPcieLinkWidthFunc = func() (int, nvml.Return) { return 16, nvml.SUCCESS }
		dev.GetMaxPcieLinkWidthFunc = func() (int, nvml.Return) { return 16, nvml.SUCCESS }
		dev.GetGpuFabricInfoFunc = func() (nvml.GpuFabricInfo, nvml.Return) {
			return nvml.GpuFabricInfo{State: nvml.GPU_FABRIC_STATE_COMPLETED}, nvml.SUCCESS
		}
		dev.GetComputeModeFunc = func() (nvml.ComputeMode, nvml.Return) { return nvml.COMPUTEMODE_DEFAULT, nvml.SUCCESS }
		dev.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
	}
}

func TestHealthOnADGXH100(t *testing.T) {
	srv := dgxh100.New()
	healthy(srv)
	sick := srv.Devices[3].(*server.Device)
	sick.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 1, true, false, nvml.SUCCESS }
	sick.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		return nvml.ClocksThrottleReasonHwPowerBrakeSlowdown | nvml.ClocksEventReasonSwThermalSlowdown, nvml.SUCCESS
	}
	sick.GetGpuFabricInfoFunc = func() (nvml.GpuFabricInfo, nvml.Return) {
		return nvml.GpuFabricInfo{State: nvml.GPU_FABRIC_STATE_COMPLETED, Status: uint32(nvml.ERROR_NOT_READY)}, nvml.SUCCESS
	}
	rep := CollectWith(srv, Options{Health: true, Library: func() string { return "/lib/libnvidia-ml.so.550.54.15" }})
	if rep.Panic != "" {
		t.Fatal(rep.Panic)
	}
	if rep.NVMLLibrary != "/lib/libnvidia-ml.so.550.54.15" {
		t.Errorf("library %q", rep.NVMLLibrary)
	}
	h := rep.Devices[0].Health
	if h == nil || *h.RowRemapPending || *h.VolatileUncorrectableECC != 0 || strings.Join(h.ClockEvents, ",") != "gpu-idle" ||
		h.PCIeGen != 5 || h.FabricState != "completed" || h.FabricStatus != "" || h.ComputeMode != "default" {
		t.Errorf("GPU 0 health %+v", h)
	}
	s := rep.Devices[3].Health
	if !*s.RowRemapPending || strings.Join(s.ClockEvents, ",") != "sw-thermal-slowdown,hw-power-brake-slowdown" || s.FabricStatus != "ERROR_NOT_READY" {
		t.Errorf("GPU 3 health %+v", s)
	}
	if rep2 := Collect(srv); rep2.Devices[0].Health != nil {
		t.Error("health without asking")
	}
}

func TestHealthGuardsEveryCall(t *testing.T) {
	srv := dgxh100.NewWithGPUs(dgxh100.NewDevice(0).Config)
	healthy(srv)
	dev := srv.Devices[0].(*server.Device)
	// A consumer GPU: no ECC, no row remapping, no fabric.
	dev.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.ERROR_NOT_SUPPORTED }
	dev.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) {
		return 0, nvml.ERROR_NOT_SUPPORTED
	}
	// An old driver: no event reasons (the throttle reasons instead), no
	// fabric info, no compute mode. Calling one would panic in the mock.
	missing := map[string]bool{"nvmlDeviceGetCurrentClocksEventReasons": true, "nvmlDeviceGetGpuFabricInfo": true, "nvmlDeviceGetComputeMode": true}
	dev.GetCurrentClocksEventReasonsFunc, dev.GetGpuFabricInfoFunc, dev.GetComputeModeFunc = nil, nil, nil
	dev.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) { return nvml.ClocksThrottleReasonHwSlowdown, nvml.SUCCESS }
	srv.LookupSymbolFunc = func(name string) error {
		if missing[name] {
			return errors.New("undefined symbol")
		}
		return nil
	}
	rep := CollectWith(srv, Options{Health: true})
	if rep.Panic != "" {
		t.Fatalf("an unguarded call: %s", rep.Panic)
	}
	h := rep.Devices[0].Health
	if h.RowRemapPending != nil || h.VolatileUncorrectableECC != nil || h.FabricState != "" || h.ComputeMode != "" ||
		strings.Join(h.ClockEvents, ",") != "hw-slowdown" || len(rep.Devices[0].Errors) != 0 {
		t.Errorf("health %+v errors %v", h, rep.Devices[0].Errors)
	}
	if got := strings.Join(rep.Unavailable, " "); got != "nvmlDeviceGetGpuFabricInfo nvmlDeviceGetComputeMode" {
		t.Errorf("unavailable %q", got)
	}
}
