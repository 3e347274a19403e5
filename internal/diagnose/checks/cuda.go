package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// CUDA reports the probe's CUDA stage: a real cuInit, the devices CUDA
// numbers (after CUDA_VISIBLE_DEVICES), a context on each with its free
// memory, the libcuda that was loaded and what it all cost.
var CUDA = gpuDetail("cuda", "CUDA (cuInit and a context per GPU)", "waiting for nss-gpu-probe (CUDA)",
	func(ctx context.Context, e *check.Env, rep *gpureport.Report) check.Result {
		if rep.CUDA == nil {
			return check.Result{Status: check.Skip, Message: "the probe did not run the CUDA stage (an older nss-gpu-probe)"}
		}
		c := rep.CUDA
		var devs []map[string]any
		for _, d := range c.Devices {
			m := map[string]any{"ordinal": d.Ordinal, "name": d.Name, "compute_capability": d.ComputeCapability, "pci_bus_id": d.PCIBusID}
			if d.Context != nil {
				m["context_ms"], m["memory_free_bytes"], m["memory_total_bytes"] = d.Context.Millis, d.Context.MemoryFreeBytes, d.Context.MemoryTotal
				if d.Context.Error != nil {
					m["context_error"] = d.Context.Error.Name
				}
			}
			devs = append(devs, m)
		}
		data := map[string]any{"library": c.Library, "driver_api": c.DriverVersion, "device_count": c.DeviceCount, "devices": devs,
			"init_ms": c.InitMillis, "stage_ms": c.StageMillis, "nvml_ms": rep.NVMLMillis, "nvml_library": rep.NVMLLibrary}
		if len(c.Unavailable) > 0 {
			data["unavailable"] = c.Unavailable
		}
		loader := check.Loader(e)
		r := check.CUDAVerdict(e, rep, &loader, data)
		if r.Status != check.OK {
			return r
		}
		var ms []string
		for _, d := range c.Devices {
			if d.Context != nil {
				ms = append(ms, fmt.Sprintf("GPU %d %s free", d.Ordinal, check.FormatBytes(d.Context.MemoryFreeBytes)))
			}
		}
		r.Message = fmt.Sprintf("%s (cuInit %.1f ms)", r.Message, c.InitMillis)
		if len(ms) > 0 {
			r.Message += ": " + strings.Join(ms, ", ")
		}
		return r
	})

// GPULibraries reports which libcuda.so.1 and libnvidia-ml.so.1 the loader
// picks and why, and what is wrong with them.
var GPULibraries = check.Check{
	ID: "gpu-libraries", Title: "driver libraries the loader picks", Timeout: defaultCheckTimeout, Doing: "reading /etc/ld.so.cache",
	Run: func(ctx context.Context, e *check.Env) check.Result {
		if !e.Exists("/dev/nvidiactl") && !e.Exists("/proc/driver/nvidia") && !e.WSL() {
			return check.Result{Status: check.Skip, Message: "no GPU (see the GPU check)"}
		}
		rep := check.Loader(e)
		data := map[string]any{"libraries": rep.Libraries, "kernel_module": rep.KernelModule, "ld_library_path": e.Get("LD_LIBRARY_PATH")}
		if len(rep.Findings) > 0 {
			data["findings"] = rep.Findings
			worst := rep.Findings[0]
			for _, f := range rep.Findings[1:] {
				if f.Status > worst.Status {
					worst = f
				}
			}
			msg := worst.Message
			if len(rep.Findings) > 1 {
				msg += fmt.Sprintf(" (and %d more, in data.findings)", len(rep.Findings)-1)
			}
			return check.Result{Status: worst.Status, Data: data, Message: msg, Hint: worst.Hint}
		}
		var parts []string
		for _, l := range rep.Libraries {
			switch {
			case l.Path == "":
				parts = append(parts, l.Name+" not found")
			default:
				parts = append(parts, l.Name+" -> "+l.Real+" (from "+l.From+")")
			}
		}
		return check.Result{Status: check.OK, Data: data, Message: strings.Join(parts, "; ")}
	},
}

// GPUDevices opens each NVIDIA device node and compares the GPU nodes with
// NVML's count.
var GPUDevices = check.Check{
	ID: "gpu-devices", Title: "GPU device nodes", Timeout: gpuTimeout, Doing: "opening /dev/nvidia*",
	Run: func(ctx context.Context, e *check.Env) check.Result {
		if !e.Exists("/dev/nvidiactl") {
			if e.WSL() {
				return check.Result{Status: check.Skip, Message: "WSL2: GPUs come through /dev/dxg; there are no /dev/nvidia* nodes to open"}
			}
			return check.Result{Status: check.Skip, Message: "no GPU (see the GPU check)"}
		}
		a := check.CheckDeviceAccess(e)
		data := map[string]any{"nodes": a.Nodes, "gpu_nodes": a.GPUNodes}
		if len(a.CgroupDenied) > 0 {
			data["cgroup_denied"] = a.CgroupDenied
			return check.Result{Status: check.Fail, Data: data,
				Message: "opening " + strings.Join(a.CgroupDenied, ", ") + " is not permitted although they exist: the container's device cgroup has lost access to the GPUs (after systemctl daemon-reload on the host)",
				Hint:    check.CgroupLostHint(e.Runtime())}
		}
		if len(a.NotGranted) > 0 {
			data["not_granted"] = a.NotGranted
			if v := e.Get("SLURM_JOB_GPUS"); v != "" {
				data["slurm_job_gpus"] = v
			}
		}
		for _, n := range a.Nodes {
			if n.Denied && !n.NotGranted {
				return check.Result{Status: check.Fail, Data: data, Message: "cannot open " + n.Path + ": " + n.Error,
					Hint: "request GPUs through the runtime instead of mounting /dev/nvidia* by hand: " + e.Runtime().GPUHint()}
			}
		}
		out := e.GPUOutcome(ctx)
		if out.Failure == gpuhelper.None && out.Report != nil && out.Report.Loaded {
			n := len(out.Report.Devices)
			data["nvml_devices"] = n
			mig := false
			for _, d := range out.Report.Devices {
				mig = mig || d.MIGMode == "enabled"
			}
			if n != a.GrantedGPUs && !mig {
				msg := fmt.Sprintf("NVML counts %d GPU(s) but %d /dev/nvidiaN node(s) exist: the device nodes do not match the GPUs given", n, a.GPUNodes)
				if len(a.NotGranted) > 0 {
					msg = fmt.Sprintf("NVML counts %d GPU(s) but %d of the %d /dev/nvidiaN node(s) open: the device nodes do not match the GPUs given", n, a.GrantedGPUs, a.GPUNodes)
				}
				return check.Result{Status: check.Warn, Data: data, Message: msg,
					Hint: "request GPUs through the runtime instead of mounting /dev/nvidia* by hand: " + e.Runtime().GPUHint()}
			}
		}
		if len(a.NotGranted) > 0 {
			return check.Result{Status: check.OK, Data: data, Message: fmt.Sprintf("%d of %d GPU node(s) open, /dev/nvidiactl and /dev/nvidia-uvm open: this %s is granted a subset of the node's GPUs (%s refused, as a cgroup that grants some GPUs refuses the others)",
				a.GrantedGPUs, a.GPUNodes, grantee(e), strings.Join(a.NotGranted, ", "))}
		}
		return check.Result{Status: check.OK, Data: data, Message: fmt.Sprintf("%d GPU node(s), /dev/nvidiactl and /dev/nvidia-uvm open", a.GPUNodes)}
	},
}

// grantee names what a device cgroup belongs to, in the runtime's terms.
func grantee(e *check.Env) string {
	switch {
	case e.Get("SLURM_JOB_ID") != "":
		return "Slurm job (ConstrainDevices)"
	case e.Runtime().Name == "kubernetes":
		return "pod"
	}
	return "container"
}

// GPUHealth reports NVML's view of each GPU's hardware: pages and rows
// waiting for a reset, uncorrectable ECC errors, clocks held down, a PCIe
// link below its maximum, the NVSwitch fabric, persistence and compute mode.
var GPUHealth = gpuDetail("gpu-health", "GPU hardware health", "waiting for nss-gpu-probe (health)",
	func(ctx context.Context, e *check.Env, rep *gpureport.Report) check.Result {
		var fails, warns, notes []string
		var devs []map[string]any
		for _, d := range rep.Devices {
			m := map[string]any{"index": d.Index, "persistence_mode": d.PersistenceMode}
			devs = append(devs, m)
			h := d.Health
			if h == nil {
				continue
			}
			m["health"] = h
			g := fmt.Sprintf("GPU %d", d.Index)
			if h.RetiredPagesPending != nil && *h.RetiredPagesPending {
				fails = append(fails, g+": retired pages wait for a GPU reset")
			}
			if h.RowRemapFailed != nil && *h.RowRemapFailed {
				fails = append(fails, g+": a memory row remapping failed (the GPU needs service)")
			} else if h.RowRemapPending != nil && *h.RowRemapPending {
				fails = append(fails, g+": remapped memory rows wait for a GPU reset")
			}
			if h.VolatileUncorrectableECC != nil && *h.VolatileUncorrectableECC > 0 {
				fails = append(fails, fmt.Sprintf("%s: %d uncorrectable ECC error(s) since the driver loaded", g, *h.VolatileUncorrectableECC))
			}
			for _, ev := range h.ClockEvents {
				switch ev {
				case "hw-slowdown", "hw-thermal-slowdown", "sw-thermal-slowdown", "hw-power-brake-slowdown":
					warns = append(warns, g+": clocks held down ("+ev+")")
				}
			}
			if h.PCIeMaxWidth > 0 && h.PCIeWidth > 0 && h.PCIeWidth < h.PCIeMaxWidth {
				warns = append(warns, fmt.Sprintf("%s: PCIe link x%d of x%d", g, h.PCIeWidth, h.PCIeMaxWidth))
			}
			if h.PCIeMaxGen > 0 && h.PCIeGen > 0 && h.PCIeGen < h.PCIeMaxGen {
				// An idle GPU lowers its link speed to save power: a note, not a warning.
				notes = append(notes, fmt.Sprintf("%s: PCIe gen %d of %d (normal while idle)", g, h.PCIeGen, h.PCIeMaxGen))
			}
			switch {
			case h.FabricState == "not-started" || h.FabricState == "in-progress":
				fails = append(fails, g+": NVSwitch fabric registration "+h.FabricState+" (fabric manager)")
			case h.FabricState == "completed" && h.FabricStatus != "":
				fails = append(fails, g+": NVSwitch fabric registration failed ("+h.FabricStatus+")")
			}
			switch h.ComputeMode {
			case "prohibited":
				fails = append(fails, g+": compute mode is prohibited: no CUDA process may use it")
			case "exclusive-process", "exclusive-thread":
				notes = append(notes, g+": compute mode "+h.ComputeMode+" (one process at a time)")
			}
			if d.PersistenceMode == "disabled" {
				notes = append(notes, g+": persistence mode off (every start pays a cold driver init)")
			}
		}
		data := map[string]any{"devices": devs}
		if len(notes) > 0 {
			data["notes"] = notes
		}
		switch {
		case len(fails) > 0:
			return check.Result{Status: check.Fail, Data: data, Message: strings.Join(append(fails, warns...), "; "),
				Hint: "on the host: check nvidia-smi -q (ECC, Remapped Rows, Fabric) and dmesg for Xid errors; reset the GPU (sudo nvidia-smi -r -i <gpu>) or drain the node and reboot; start nvidia-fabricmanager on NVSwitch systems; sudo nvidia-smi -c DEFAULT for compute mode"}
		case len(warns) > 0:
			return check.Result{Status: check.Warn, Data: data, Message: strings.Join(warns, "; ") + ": training will be slower",
				Hint: "on the host: nvidia-smi -q -d PERFORMANCE,TEMPERATURE shows why; check cooling and power, and reseat the card if its PCIe link is narrow"}
		}
		msg := "no pending retirements, remaps or uncorrectable ECC errors; clocks and links nominal"
		if len(notes) > 0 {
			msg += "; " + strings.Join(notes, "; ")
		}
		return check.Result{Status: check.OK, Data: data, Message: msg}
	})
