package check

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// StartupCUDA reports whether the start path asks nss-gpu-probe for the
// CUDA stage (a real cuInit). The rule: only if cuInit's median added cost
// over NVML alone, measured on a GPU host (the GPU-host suite's
// cuda-timings.md), is under 50 ms. It has not been measured yet, so the
// default is the safe one: cuInit runs in --diagnose only, and the start
// path keeps the cheap checks (device nodes, loader forensics).
// NSS_ENTRYPOINT_CUDA=on asks for it anyway; off keeps it off.
func StartupCUDA(e *Env) bool {
	switch strings.ToLower(e.Get("NSS_ENTRYPOINT_CUDA")) {
	case "on", "1", "true", "yes":
		return true
	}
	return startupCUDADefault
}

// startupCUDADefault is the measured decision (see StartupCUDA).
const startupCUDADefault = false

// CUDAVerdict judges the CUDA stage of a report whose NVML part is healthy:
// the cause of a failing CUresult and its fix, in the runtime's words.
// loader may be nil.
func CUDAVerdict(e *Env, rep *gpureport.Report, loader *LoaderReport, data map[string]any) Result {
	c := rep.CUDA
	rt := e.Runtime()
	if c.Library != "" {
		data["cuda_library"] = c.Library
	}
	data["cuda_init_ms"], data["cuda_device_count"] = c.InitMillis, c.DeviceCount
	if c.DriverVersion > 0 {
		data["cuda_driver_api"] = gpureport.FormatCUDAVersion(c.DriverVersion)
	}
	if c.Error == nil {
		return Result{Status: OK, Data: data, Message: cudaSummary(c)}
	}
	ce := c.Error
	data["cuda_function"], data["cuda_code"], data["cuda_error"] = ce.Function, ce.Code, ce.Name
	if ce.Message != "" {
		data["cuda_message"] = ce.Message
	}
	r := Result{Status: Fail, Data: data}
	what := fmt.Sprintf("%s failed with %s (%d)", ce.Function, ce.Name, ce.Code)
	nvmlGPUs := len(rep.Devices)
	cudaLib := LibraryChoice{Path: c.Library, Real: c.Library}
	if loader != nil && len(loader.Libraries) > 0 {
		cudaLib = loader.Libraries[0]
	}
	visible, visibleSet := e.Getenv("CUDA_VISIBLE_DEVICES")
	ldPath := e.Get("LD_LIBRARY_PATH")

	switch {
	case ce.Name == "TIMEOUT":
		r.Status = Warn
		r.Message = fmt.Sprintf("CUDA did not answer in time (%s, in %s): a busy or unhealthy driver, or GPUs without persistence mode", ce.Message, ce.Function)
		r.Hint = "run nvidia-smi on the host; enable persistence mode (sudo nvidia-smi -pm 1)"
		if e.RaiseTimeoutFix == "" {
			// On the start path the probe's time is NSS_ENTRYPOINT_TIMEOUT;
			// the report gives the GPU checks a time of its own.
			r.Hint += "; or " + e.RaiseTimeout("20s")
		}
	case ce.Name == "GARBAGE":
		r.Status = Warn
		r.Message = fmt.Sprintf("the CUDA driver library (%s) gave an answer that makes no sense in %s (%s)", libDesc(cudaLib), ce.Function, ce.Message)
		r.Hint = "run nvidia-smi on the host; keep driver libraries out of the image and off LD_LIBRARY_PATH so that the toolkit's libcuda is the one loaded: " + rt.GPUHint()
	case ce.Name == "LIBRARY_UNLOADABLE":
		r.Message = "NVML works but libcuda.so.1 cannot be loaded: dlopen stopped at " + c.Library + " (" + strings.TrimPrefix(ce.Message, c.Library+": ") + ")"
		if cudaLib.Path != "" && cudaLib.Broken != "" && (cudaLib.Path == c.Library || cudaLib.Real == c.Library) {
			r.Message += ", which is " + cudaLib.Broken + " (" + cudaLib.From + ")"
		}
		from := ""
		if withoutEntry(ldPath, path.Dir(c.Library)) != withoutEntry(ldPath, "") {
			from = "LD_LIBRARY_PATH"
		}
		r.Hint = unloadableHint(rt, LibraryChoice{Path: c.Library, From: from}, ldPath)
	case ce.Name == "CRASHED" || ce.Name == "EXITED" || ce.Name == "NOT_STARTED":
		r.Status = Warn
		r.Message = fmt.Sprintf("the CUDA driver library crashed in %s (%s)", ce.Function, ce.Message)
		r.Hint = "run nvidia-smi on the host; if it also fails, reinstall the NVIDIA driver; keep driver libraries out of the image"
	case ce.Name == "LIBRARY_NOT_FOUND":
		r.Message = "NVML works but libcuda.so.1 is not in the container: the driver's compute libraries were not injected"
		r.Hint = "keep NVIDIA_DRIVER_CAPABILITIES=compute,utility (or all) and start with GPUs: " + rt.GPUHint()
	case ce.Name == "FUNCTION_NOT_FOUND":
		r.Message = "the libcuda.so.1 the loader picks (" + c.Library + ") lacks " + ce.Function + ": it is not a CUDA driver library"
		r.Hint = "remove that file from the image or from LD_LIBRARY_PATH; the NVIDIA Container Toolkit injects the host's libcuda: " + rt.GPUHint()
	case ce.Code == gpureport.CUDAStubLibrary:
		r.Message = "CUDA loaded the CUDA toolkit's stub libcuda (" + c.Library + "): it exists only for linking, so every CUDA call fails"
		r.Hint = stubHint(rt, ldPath)
	case ce.Code == gpureport.CUDAInsufficientDriver:
		r.Message = fmt.Sprintf("the NVIDIA driver (%s, CUDA %s) is older than this CUDA library needs", rep.DriverVersion, rep.CUDAVersion())
		r.Hint = "update the host's NVIDIA driver; on data-center GPUs the cuda-compat libraries are the alternative; make sure no newer libcuda is baked into the image"
	case ce.Code == gpureport.CUDASystemDriverMismatch:
		r.Message = "the CUDA user-mode driver (" + libDesc(cudaLib) + ") and the kernel module (" + kernelOf(loader, rep) + ") differ"
		if cudaLib.Compat {
			r.Message += ": CUDA forward-compatibility libraries older than the host driver are on LD_LIBRARY_PATH"
			r.Hint = "remove the cuda/compat folder from LD_LIBRARY_PATH: " + ldPathHint(rt, ldPath, "compat")
		} else {
			r.Message += ": the host driver was upgraded without a reboot, or driver libraries are baked into the image"
			r.Hint = "reboot the host after a driver upgrade; never install libcuda or libnvidia-* in the image"
		}
	case ce.Code == gpureport.CUDACompatNotSupportedOnDevice:
		r.Message = "CUDA forward-compatibility libraries (" + libDesc(cudaLib) + ") were loaded on a GPU that does not support them (only data-center GPUs do)"
		r.Hint = "remove the cuda/compat folder from LD_LIBRARY_PATH (" + ldPathHint(rt, ldPath, "compat") + "), or update the host's driver to one that supports this CUDA"
	case ce.Code == gpureport.CUDASystemNotReady:
		r.Message = "CUDA is not ready (" + ce.Name + "): on an NVSwitch system (HGX, DGX) the fabric manager is not running or has not finished"
		r.Hint = "on the host, start the fabric manager at the driver's version (" + rep.DriverVersion + "): sudo systemctl enable --now nvidia-fabricmanager; then check nvidia-smi -q | grep -A2 Fabric"
		if rt.Name == "kubernetes" {
			r.Hint = "on the node, start nvidia-fabricmanager at the driver's version (" + rep.DriverVersion + "); with the GPU Operator its driver container runs it"
		}
	case ce.Code == gpureport.CUDANotInitialized && migWithoutInstances(rep) != "":
		r.Message = "MIG is enabled on " + migWithoutInstances(rep) + " but no MIG instance exists: CUDA has no device to use"
		r.Hint = "on the host, create instances (sudo nvidia-smi mig -cgi <profile> -C) or disable MIG (sudo nvidia-smi -i <gpu> -mig 0)"
		if rt.Name == "kubernetes" {
			r.Hint = "label the node with a MIG configuration for the GPU Operator's MIG manager (nvidia.com/mig.config=all-1g.10gb, for example), or disable MIG"
		}
	case ce.Code == gpureport.CUDADeviceUnavailable:
		r.Message = "a GPU is busy or unavailable (" + ce.Name + "): it is in exclusive-process compute mode" + computeModeOf(rep) + " and another process holds it"
		r.Hint = "stop the other process (nvidia-smi on the host lists it), set the default compute mode on the host (sudo nvidia-smi -c DEFAULT), or use another GPU: " + rt.EnvHint("NVIDIA_VISIBLE_DEVICES=<free GPU>")
	case (ce.Code == gpureport.CUDANoDevice || ce.Code == gpureport.CUDAInvalidDevice) && visibleSet:
		r.Message = fmt.Sprintf("CUDA_VISIBLE_DEVICES=%q names no GPU CUDA can use, though NVML sees %d: %s", visible, nvmlGPUs, ce.Name)
		r.Hint = "unset CUDA_VISIBLE_DEVICES, or number the GPUs as this container does (0-" + strconv.Itoa(max(nvmlGPUs-1, 0)) + "): " + rt.EnvHint("CUDA_VISIBLE_DEVICES=0")
	case ce.Code == gpureport.CUDAInvalidDevice:
		r.Message = "CUDA says a device ordinal is invalid (" + ce.Function + ")"
		r.Hint = "unset CUDA_VISIBLE_DEVICES and request GPUs through the runtime: " + rt.GPUHint()
	case (ce.Code == gpureport.CUDANoDevice || ce.Code == gpureport.CUDAUnknown) && e.WSL() && !e.Exists("/dev/nvidiactl"):
		r.Message = "CUDA failed (" + ce.Name + ") on WSL2 although NVML sees the GPU: the Windows driver and the WSL libraries in /usr/lib/wsl/lib do not work together"
		r.Hint = "update the NVIDIA driver on Windows, keep /usr/lib/wsl/lib first on LD_LIBRARY_PATH (no libcuda in the image), then run wsl --shutdown and start again"
	case (ce.Code == gpureport.CUDANoDevice || ce.Code == gpureport.CUDAUnknown) && !e.Exists("/dev/nvidia-uvm"):
		r.Message = "CUDA failed (" + ce.Name + ") because /dev/nvidia-uvm is missing: NVML works without it, CUDA does not"
		r.Hint = "load nvidia-uvm on the host (sudo modprobe nvidia-uvm, or run nvidia-smi once) and request GPUs through the runtime: " + rt.GPUHint()
	case ce.Code == gpureport.CUDANoDevice || ce.Code == gpureport.CUDAUnknown:
		acc := CheckDeviceAccess(e)
		if len(acc.CgroupDenied) > 0 {
			r.Message = "CUDA failed (" + ce.Name + "): opening " + strings.Join(acc.CgroupDenied, ", ") + " is not permitted although they exist: the container's device cgroup has lost access to the GPUs (after systemctl daemon-reload on the host)"
			r.Hint = CgroupLostHint(rt)
		} else {
			r.Message = fmt.Sprintf("NVML sees %d GPU(s) but CUDA sees none (%s): the GPU device nodes are hidden from this container", nvmlGPUs, ce.Name)
			r.Hint = "request GPUs through the runtime rather than mounting /dev/nvidia* by hand: " + rt.GPUHint()
		}
	case ce.Code == gpureport.CUDAOutOfMemory:
		r.Message = "GPU memory is exhausted: " + ce.Function + " could not make a CUDA context; other processes hold the memory"
		r.Hint = "stop the other jobs (nvidia-smi on the host lists them) or use a free GPU: " + rt.EnvHint("NVIDIA_VISIBLE_DEVICES=<free GPU>")
	default:
		r.Message = "CUDA " + what
		if ce.Message != "" {
			r.Message += ": " + ce.Message
		}
		r.Hint = "run nvidia-smi on the host and in the container, and report the output of nss-entrypoint --diagnose"
	}
	return r
}

// cudaSummary describes a working CUDA stage in a few words.
func cudaSummary(c *gpureport.CUDA) string {
	s := fmt.Sprintf("cuInit works; CUDA %s sees %d device(s)", gpureport.FormatCUDAVersion(c.DriverVersion), c.DeviceCount)
	if c.Contexts {
		s += ", a context on each"
	}
	return s
}

// migWithoutInstances names the GPUs with MIG enabled and no MIG device.
func migWithoutInstances(rep *gpureport.Report) string {
	var gpus []string
	for _, d := range rep.Devices {
		if d.MIGMode == "enabled" && d.MIGDevices == 0 {
			gpus = append(gpus, "GPU "+strconv.Itoa(d.Index))
		}
	}
	return strings.Join(gpus, ", ")
}

// computeModeOf names the GPUs NVML says are exclusive-process.
func computeModeOf(rep *gpureport.Report) string {
	var gpus []string
	for _, d := range rep.Devices {
		if d.Health != nil && d.Health.ComputeMode == "exclusive-process" {
			gpus = append(gpus, strconv.Itoa(d.Index))
		}
	}
	if len(gpus) == 0 {
		return ""
	}
	return " (GPU " + strings.Join(gpus, ", ") + ")"
}

func libDesc(l LibraryChoice) string {
	p := l.Real
	if p == "" {
		p = l.Path
	}
	if p == "" {
		return "libcuda.so.1"
	}
	return p
}

func kernelOf(loader *LoaderReport, rep *gpureport.Report) string {
	if loader != nil && loader.KernelModule != "" {
		return loader.KernelModule
	}
	if rep.DriverVersion != "" {
		return rep.DriverVersion
	}
	return "unknown version"
}
