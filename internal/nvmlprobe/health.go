package nvmlprobe

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// health reads a GPU's hardware state. Every call is guarded by a symbol
// lookup; NOT_SUPPORTED (a consumer GPU has no ECC or row remapping) leaves
// the field empty without an error.
func (p *prober) health(dev nvml.Device, fail func(string, nvml.Return)) *gpureport.Health {
	h := &gpureport.Health{}
	bad := func(field string, ret nvml.Return) {
		if ret != nvml.ERROR_NOT_SUPPORTED {
			fail(field, ret)
		}
	}
	if p.has("nvmlDeviceGetRetiredPagesPendingStatus") {
		if st, ret := dev.GetRetiredPagesPendingStatus(); ret == nvml.SUCCESS {
			h.RetiredPagesPending = ptr(st == nvml.FEATURE_ENABLED)
		} else {
			bad("retired_pages_pending", ret)
		}
	}
	if p.has("nvmlDeviceGetRemappedRows") {
		if _, _, pending, failed, ret := dev.GetRemappedRows(); ret == nvml.SUCCESS {
			h.RowRemapPending, h.RowRemapFailed = ptr(pending), ptr(failed)
		} else {
			bad("row_remap", ret)
		}
	}
	if p.has("nvmlDeviceGetTotalEccErrors") {
		if n, ret := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC); ret == nvml.SUCCESS {
			h.VolatileUncorrectableECC = ptr(n)
		} else {
			bad("volatile_uncorrectable_ecc", ret)
		}
	}
	// The event-reasons call replaced the throttle-reasons one (same bits).
	var reasons uint64
	ret := nvml.ERROR_FUNCTION_NOT_FOUND
	if p.lib.Extensions().LookupSymbol("nvmlDeviceGetCurrentClocksEventReasons") == nil {
		reasons, ret = dev.GetCurrentClocksEventReasons()
	} else if p.has("nvmlDeviceGetCurrentClocksThrottleReasons") {
		reasons, ret = dev.GetCurrentClocksThrottleReasons()
	}
	switch ret {
	case nvml.SUCCESS:
		h.ClockEventReasons, h.ClockEvents = ptr(reasons), ClockEvents(reasons)
	case nvml.ERROR_FUNCTION_NOT_FOUND:
	default:
		bad("clock_event_reasons", ret)
	}
	pcie := []struct {
		sym   string
		field string
		get   func() (int, nvml.Return)
		dst   *int
	}{
		{"nvmlDeviceGetCurrPcieLinkGeneration", "pcie_gen", dev.GetCurrPcieLinkGeneration, &h.PCIeGen},
		{"nvmlDeviceGetMaxPcieLinkGeneration", "pcie_max_gen", dev.GetMaxPcieLinkGeneration, &h.PCIeMaxGen},
		{"nvmlDeviceGetCurrPcieLinkWidth", "pcie_width", dev.GetCurrPcieLinkWidth, &h.PCIeWidth},
		{"nvmlDeviceGetMaxPcieLinkWidth", "pcie_max_width", dev.GetMaxPcieLinkWidth, &h.PCIeMaxWidth},
	}
	for _, c := range pcie {
		if p.has(c.sym) {
			if v, ret := c.get(); ret == nvml.SUCCESS {
				*c.dst = v
			} else {
				bad(c.field, ret)
			}
		}
	}
	if p.has("nvmlDeviceGetGpuFabricInfo") {
		if fi, ret := dev.GetGpuFabricInfo(); ret == nvml.SUCCESS {
			h.FabricState = FabricState(fi.State)
			if fi.State == nvml.GPU_FABRIC_STATE_COMPLETED && nvml.Return(fi.Status) != nvml.SUCCESS {
				h.FabricStatus = returnName(nvml.Return(fi.Status))
			}
		} else {
			bad("fabric_state", ret)
		}
	}
	if p.has("nvmlDeviceGetComputeMode") {
		if m, ret := dev.GetComputeMode(); ret == nvml.SUCCESS {
			h.ComputeMode = ComputeMode(m)
		} else {
			bad("compute_mode", ret)
		}
	}
	return h
}

// clockEventNames names NVML's clock-event reason bits, lowest first.
var clockEventNames = []struct {
	bit  uint64
	name string
}{
	{nvml.ClocksEventReasonGpuIdle, "gpu-idle"},
	{nvml.ClocksEventReasonApplicationsClocksSetting, "applications-clocks-setting"},
	{nvml.ClocksEventReasonSwPowerCap, "sw-power-cap"},
	{nvml.ClocksThrottleReasonHwSlowdown, "hw-slowdown"},
	{nvml.ClocksEventReasonSyncBoost, "sync-boost"},
	{nvml.ClocksEventReasonSwThermalSlowdown, "sw-thermal-slowdown"},
	{nvml.ClocksThrottleReasonHwThermalSlowdown, "hw-thermal-slowdown"},
	{nvml.ClocksThrottleReasonHwPowerBrakeSlowdown, "hw-power-brake-slowdown"},
	{nvml.ClocksEventReasonDisplayClockSetting, "display-clock-setting"},
}

// ClockEvents names the bits set in an NVML clock-event reason mask.
func ClockEvents(mask uint64) []string {
	var out []string
	for _, r := range clockEventNames {
		if mask&r.bit != 0 {
			out = append(out, r.name)
		}
	}
	return out
}

// FabricState names an nvmlGpuFabricState_t.
func FabricState(s uint8) string {
	switch s {
	case nvml.GPU_FABRIC_STATE_NOT_SUPPORTED:
		return "not-supported"
	case nvml.GPU_FABRIC_STATE_NOT_STARTED:
		return "not-started"
	case nvml.GPU_FABRIC_STATE_IN_PROGRESS:
		return "in-progress"
	case nvml.GPU_FABRIC_STATE_COMPLETED:
		return "completed"
	}
	return "unknown"
}

// ComputeMode names an nvmlComputeMode_t.
func ComputeMode(m nvml.ComputeMode) string {
	switch m {
	case nvml.COMPUTEMODE_DEFAULT:
		return "default"
	case nvml.COMPUTEMODE_EXCLUSIVE_THREAD:
		return "exclusive-thread"
	case nvml.COMPUTEMODE_PROHIBITED:
		return "prohibited"
	case nvml.COMPUTEMODE_EXCLUSIVE_PROCESS:
		return "exclusive-process"
	}
	return "unknown"
}

func ptr[T any](v T) *T { return &v }
