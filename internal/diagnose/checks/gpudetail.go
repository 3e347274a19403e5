package checks

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// gpuTimeout bounds the GPU probe in diagnose mode: nvmlInit takes 1-3 s
// per GPU without persistence mode.
const gpuTimeout = 10 * defaultCheckTimeout

// healthyReport returns the GPU report when the probe worked and saw GPUs,
// or a Skip result saying why the detail check cannot run.
func healthyReport(ctx context.Context, e *check.Env) (*gpureport.Report, *check.Result) {
	if !e.Exists("/dev/nvidiactl") && !e.WSL() {
		return nil, &check.Result{Status: check.Skip, Message: "no GPU (see the GPU check)"}
	}
	out := e.GPUOutcome(ctx)
	if out.Failure != gpuhelper.None || out.Report == nil || !out.Report.Loaded || len(out.Report.Devices) == 0 {
		return nil, &check.Result{Status: check.Skip, Message: "NVML gave no devices (see the GPU check)"}
	}
	return out.Report, nil
}

// gpuDetail is a report check that needs the GPU probe's report with
// devices in it: without one it skips, saying why (healthyReport), and run
// is not called.
func gpuDetail(id, title, doing string, run func(ctx context.Context, e *check.Env, rep *gpureport.Report) check.Result) check.Check {
	return check.Check{ID: id, Title: title, Timeout: gpuTimeout, Doing: doing,
		Run: func(ctx context.Context, e *check.Env) check.Result {
			rep, skip := healthyReport(ctx, e)
			if skip != nil {
				return *skip
			}
			return run(ctx, e, rep)
		}}
}

// cudaNeed is the CUDA driver API version each variant family needs.
func cudaNeed(variant string) (need int, driver string, ok bool) {
	switch {
	case strings.HasPrefix(variant, "cu12"):
		return 12000, ">= 525.60.13", true
	case strings.HasPrefix(variant, "cu13"):
		return 13000, ">= 580", true
	}
	return 0, "", false
}

// GPUDriver checks the driver's CUDA version against the image's CUDA
// variant: cu12x wheels need a CUDA 12 driver, cu13x need 580 or newer.
var GPUDriver = gpuDetail("gpu-driver", "driver vs CUDA variant", "waiting for nss-gpu-probe",
	func(ctx context.Context, e *check.Env, rep *gpureport.Report) check.Result {
		variant := e.CUDAVariant
		data := map[string]any{"driver_version": rep.DriverVersion, "cuda_driver_version": rep.CUDAVersion(), "cuda_variant": variant}
		need, driver, ok := cudaNeed(variant)
		switch {
		case !ok:
			return check.Result{Status: check.Skip, Data: data, Message: "the image's CUDA variant is unknown (built without CUDA_VARIANT)"}
		case rep.CUDADriverVersion == 0:
			return check.Result{Status: check.Warn, Data: data, Message: "the driver did not say which CUDA version it supports", Hint: "run nvidia-smi on the host; update the driver if it is very old"}
		case rep.CUDADriverVersion < need:
			return check.Result{Status: check.Fail, Data: data,
				Message: fmt.Sprintf("driver %s supports CUDA %s, but this %s image needs CUDA %s (driver %s)", rep.DriverVersion, rep.CUDAVersion(), variant, gpureport.FormatCUDAVersion(need), driver),
				Hint:    fmt.Sprintf("update the host's NVIDIA driver to %s, or use an image built for an older CUDA variant", driver)}
		}
		return check.Result{Status: check.OK, Data: data, Message: fmt.Sprintf("driver %s (CUDA %s) runs %s", rep.DriverVersion, rep.CUDAVersion(), variant)}
	})

// GPUCompute fails when a GPU cannot train in bf16 (compute capability < 8.0)
// and notes more than one GPU.
var GPUCompute = gpuDetail("gpu-compute", "compute capability", "waiting for nss-gpu-probe",
	func(ctx context.Context, e *check.Env, rep *gpureport.Report) check.Result {
		var old []string
		var caps []string
		for _, d := range rep.Devices {
			caps = append(caps, d.ComputeCapability)
			if major, err := strconv.Atoi(strings.SplitN(d.ComputeCapability, ".", 2)[0]); err == nil && major < 8 {
				old = append(old, fmt.Sprintf("GPU %d (%s, %s)", d.Index, d.Name, d.ComputeCapability))
			}
		}
		data := map[string]any{"compute_capabilities": caps, "devices": len(rep.Devices)}
		if len(old) > 0 {
			return check.Result{Status: check.Fail, Data: data,
				Message: strings.Join(old, ", ") + ": compute capability below 8.0 has no bf16, which training uses",
				Hint:    "run on an Ampere or newer GPU (A100, A10, L4, L40S, H100, H200)"}
		}
		msg := "compute capability " + strings.Join(uniq(caps), ", ") + " (bf16 available)"
		if len(rep.Devices) > 1 {
			msg += fmt.Sprintf("; note: %d GPUs are visible", len(rep.Devices))
		}
		return check.Result{Status: check.OK, Data: data, Message: msg}
	})

// GPUMemory warns when other processes hold GPU memory.
var GPUMemory = gpuDetail("gpu-memory", "GPU memory in use", "waiting for nss-gpu-probe",
	func(ctx context.Context, e *check.Env, rep *gpureport.Report) check.Result {
		var busy []string
		var devs []map[string]any
		for _, d := range rep.Devices {
			devs = append(devs, map[string]any{"index": d.Index, "name": d.Name, "memory_total_bytes": d.MemoryTotalBytes,
				"memory_used_bytes": d.MemoryUsedBytes, "compute_processes": d.ComputeProcesses, "mig_mode": d.MIGMode,
				"mig_devices": d.MIGDevices, "persistence_mode": d.PersistenceMode})
			if d.ComputeProcesses > 0 {
				busy = append(busy, fmt.Sprintf("GPU %d: %d processes, %s used", d.Index, d.ComputeProcesses, check.FormatBytes(d.MemoryUsedBytes)))
			} else if d.ComputeProcesses < 0 && d.MemoryUsedBytes > 1<<30 {
				busy = append(busy, fmt.Sprintf("GPU %d: %s used", d.Index, check.FormatBytes(d.MemoryUsedBytes)))
			}
		}
		data := map[string]any{"devices": devs}
		if len(busy) > 0 {
			return check.Result{Status: check.Warn, Data: data,
				Message: "other processes hold GPU memory (" + strings.Join(busy, "; ") + "): training may run out of memory",
				Hint:    "stop the other jobs (nvidia-smi on the host lists them) or choose a free GPU with NVIDIA_VISIBLE_DEVICES"}
		}
		return check.Result{Status: check.OK, Data: data, Message: "no other process holds GPU memory"}
	})

// CUDAVisible fails when CUDA_VISIBLE_DEVICES names a GPU this container
// cannot see (NVML ignores the variable; CUDA honours it).
var CUDAVisible = check.Check{
	ID: "cuda-visible-devices", Title: "CUDA_VISIBLE_DEVICES", Timeout: gpuTimeout, Doing: "waiting for nss-gpu-probe",
	Run: func(ctx context.Context, e *check.Env) check.Result {
		v, set := e.Getenv("CUDA_VISIBLE_DEVICES")
		if !set {
			return check.Result{Status: check.OK, Message: "not set: CUDA uses every visible GPU"}
		}
		data := map[string]any{"value": v}
		if strings.TrimSpace(v) == "" || strings.TrimSpace(v) == "-1" {
			return check.Result{Status: check.Fail, Data: data, Message: fmt.Sprintf("CUDA_VISIBLE_DEVICES=%q hides every GPU from CUDA", v),
				Hint: "unset CUDA_VISIBLE_DEVICES, or list the GPUs to use (0, 1, ...)"}
		}
		rep, skip := healthyReport(ctx, e)
		if skip != nil {
			skip.Data = data
			return *skip
		}
		var bad []string
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			if n, err := strconv.Atoi(id); err == nil {
				if n < 0 || n >= len(rep.Devices) {
					bad = append(bad, id)
				}
				continue
			}
			found := false
			for _, d := range rep.Devices {
				if d.UUID != "" && (strings.HasPrefix(d.UUID, id) || strings.HasPrefix(id, "MIG-")) {
					found = true
				}
			}
			if !found {
				bad = append(bad, id)
			}
		}
		if len(bad) > 0 {
			return check.Result{Status: check.Fail, Data: data,
				Message: fmt.Sprintf("CUDA_VISIBLE_DEVICES names %s, but this container sees %d GPU(s) (indices 0-%d)", strings.Join(bad, ", "), len(rep.Devices), len(rep.Devices)-1),
				Hint:    "use indices as the container numbers its GPUs (from 0), or unset CUDA_VISIBLE_DEVICES"}
		}
		return check.Result{Status: check.OK, Data: data, Message: "CUDA_VISIBLE_DEVICES=" + v + " names visible GPUs"}
	},
}

// GPUUVM fails when NVML works but /dev/nvidia-uvm is missing: CUDA cannot
// run without it.
var GPUUVM = gpuDetail("gpu-uvm", "/dev/nvidia-uvm", "waiting for nss-gpu-probe",
	func(ctx context.Context, e *check.Env, _ *gpureport.Report) check.Result {
		if !e.Exists("/dev/nvidia-uvm") && e.WSL() {
			return check.Result{Status: check.Skip, Message: "WSL2: CUDA reaches the GPU through /dev/dxg and needs no /dev/nvidia-uvm"}
		}
		if !e.Exists("/dev/nvidia-uvm") {
			return check.Result{Status: check.Fail, Message: "NVML sees the GPUs but /dev/nvidia-uvm is missing: CUDA programs will fail to start",
				Hint: "load nvidia-uvm on the host (sudo modprobe nvidia-uvm, or run nvidia-smi once) and request GPUs through the runtime: " + e.Runtime().GPUHint()}
		}
		return check.Result{Status: check.OK, Message: "/dev/nvidia-uvm present"}
	})

func uniq(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
