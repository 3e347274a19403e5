package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// GPU checks that the container can use its GPUs: NVML sees at least one;
// when NVML says "Unknown Error", whether the device cgroup lost them; then
// the cheap CUDA-level checks (/dev/nvidia-uvm, which libcuda the loader
// picks) and, when the probe ran the CUDA stage (StartupCUDA), cuInit's
// verdict. Without /dev/nvidiactl, /proc/driver/nvidia and WSL2's /dev/dxg
// it does not start the helper: there is nothing for NVML to find.
var GPU = gpuCheck(true)

// GPUNVML is the GPU check as the report runs it: NVML and device access
// only, because the report gives the CUDA stage, the device nodes and the
// loader checks of their own.
var GPUNVML = gpuCheck(false)

// shortBudget is a check phase too short to blame NVML for a probe that
// did not answer: starting the probe and loading NVML alone take tens of
// milliseconds.
const shortBudget = 100 * time.Millisecond

func gpuCheck(cudaLevel bool) Check {
	return Check{ID: "gpu", Title: "GPU", Stuck: probeStuck, Run: func(ctx context.Context, e *Env) Result {
		rt := e.Runtime
		ctl, drv, wsl := e.NVIDIACtl(), e.Exists("/proc/driver/nvidia"), e.WSL()
		data := map[string]any{"dev_nvidiactl": ctl, "proc_driver_nvidia": drv}
		if wsl {
			data["dev_dxg"] = true
		}
		if vis := e.Get("NVIDIA_VISIBLE_DEVICES"); vis != "" {
			data["nvidia_visible_devices"] = vis
		}
		switch {
		case !ctl && !drv && !wsl:
			return Result{Status: Fail, Data: data,
				Message: "no GPU is visible in this container (no /dev/nvidiactl, no /proc/driver/nvidia)",
				Hint:    "give the container GPUs: " + rt().GPUHint()}
		case !ctl && !wsl:
			return Result{Status: Fail, Data: data,
				Message: "the host has an NVIDIA driver but this container was given no GPU device",
				Hint:    "give the container GPUs: " + rt().GPUHint()}
		}
		out := e.GPUOutcome(ctx)
		data["probe_ms"] = out.Elapsed.Milliseconds()
		if out.Failure == gpuhelper.TimedOut && budget(ctx) > 0 && budget(ctx) < shortBudget {
			return Result{Status: Warn, Data: data,
				Message: "the GPU probe did not answer within NSS_ENTRYPOINT_TIMEOUT=" + budget(ctx).String() + ", too short for it to start and ask NVML",
				Hint:    "raise NSS_ENTRYPOINT_TIMEOUT (the default is 5s), or leave it unset"}
		}
		if out.Failure != gpuhelper.None {
			return helperFailure(out, rt, data)
		}
		if out.Other != "" {
			// A library the probe loaded printed on stdout around the
			// report; the report itself is whole.
			data["probe_other_output"] = out.Other
		}
		if out.HeldOpen {
			// The report is good; a process the probe left behind kept
			// its output open and was killed.
			data["probe_held_open"] = true
		}
		r := gpuVerdict(out.Report, rt(), data)
		if wsl && !ctl {
			r = wslVerdict(e, r)
		}
		if r.Status == Fail && data["nvml_code"] == gpureport.CodeUnknown {
			r = cgroupVerdict(e, r)
		}
		if r.Status != OK || !cudaLevel {
			return r
		}
		return cudaLevelVerdict(e, out.Report, r)
	}}
}

// cgroupVerdict sharpens NVML's "Unknown Error" when opening device nodes
// that exist is not permitted: the device cgroup lost them.
func cgroupVerdict(e *Env, r Result) Result {
	acc := CheckDeviceAccess(e)
	if len(acc.CgroupDenied) == 0 {
		return r
	}
	r.Data["cgroup_denied"] = acc.CgroupDenied
	r.Message = "NVML answered \"Unknown Error\" and opening " + strings.Join(acc.CgroupDenied, ", ") +
		" is not permitted although they exist: the container's device cgroup has lost access to the GPUs (the NVIDIA Container Toolkit's known problem after systemctl daemon-reload on the host)"
	r.Hint = CgroupLostHint(e.Runtime())
	return r
}

// wslVerdict words NVML's failures for WSL2, where the driver lives in
// Windows and its Linux libraries in /usr/lib/wsl/lib.
func wslVerdict(e *Env, r Result) Result {
	if r.Status == OK {
		return r
	}
	switch r.Data["nvml_code"] {
	case gpureport.CodeLibraryNotFound:
		r.Message = "WSL2 gives this container a GPU (/dev/dxg) but libnvidia-ml.so.1 is not here: the WSL driver libraries (/usr/lib/wsl/lib) were not mounted or are not on the loader's path"
		r.Hint = "start with GPUs so that they are mounted (Docker Desktop with the WSL2 backend, or the NVIDIA Container Toolkit inside WSL2): " + e.Runtime().GPUHint() + "; keep /usr/lib/wsl/lib on LD_LIBRARY_PATH"
	case gpureport.CodeDriverNotLoaded, gpureport.CodeUnknown:
		r.Message = "WSL2 gives this container a GPU (/dev/dxg) but NVML cannot reach it (" + fmt.Sprint(r.Data["nvml_error"]) + ")"
		r.Hint = "update the NVIDIA driver on Windows (WSL2 uses the Windows driver; never install a Linux driver inside WSL2), then run wsl --shutdown and start again"
	default:
		if r.Data["devices"] == 0 {
			r.Message = "WSL2 gives this container /dev/dxg but NVML sees no GPU"
			r.Hint = "update the NVIDIA driver on Windows, run nvidia-smi inside WSL2, and start with GPUs: " + e.Runtime().GPUHint()
		}
	}
	return r
}

// cudaLevelVerdict adds, to a healthy NVML verdict, what the start path
// can afford at the CUDA level: /dev/nvidia-uvm, loader forensics, and the
// CUDA stage when the probe ran it.
func cudaLevelVerdict(e *Env, rep *gpureport.Report, ok Result) Result {
	data := ok.Data
	if !e.Exists("/dev/nvidia-uvm") && !e.WSL() && rep.CUDA == nil {
		return Result{Status: Fail, Data: data, Message: "NVML sees the GPUs but /dev/nvidia-uvm is missing: CUDA programs will fail to start",
			Hint: "load nvidia-uvm on the host (sudo modprobe nvidia-uvm, or run nvidia-smi once) and request GPUs through the runtime: " + e.Runtime().GPUHint()}
	}
	loader := Loader(e)
	if rep.CUDA != nil {
		if r := CUDAVerdict(e, rep, &loader, data); r.Status != OK {
			return r
		}
		ok.Message += ", cuInit ok"
	}
	var ids []string
	for _, f := range loader.Findings {
		ids = append(ids, f.ID)
	}
	if len(ids) > 0 {
		data["loader_findings"] = ids
		f := loader.Findings[0]
		for _, g := range loader.Findings[1:] {
			if g.Status > f.Status {
				f = g
			}
		}
		return Result{Status: f.Status, Data: data, Message: f.Message, Hint: f.Hint}
	}
	return ok
}

// helperFailure turns a helper that gave no report into a warning: the GPU
// state is unknown, not known to be bad.
func helperFailure(out gpuhelper.Outcome, rt func() Runtime, data map[string]any) Result {
	data["probe_failure"], data["probe_detail"] = string(out.Failure), out.Detail
	switch out.Failure {
	case gpuhelper.Missing:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: nss-gpu-probe is missing (" + out.Detail + ")",
			Hint:    "install nss-gpu-probe next to nss-entrypoint (rebuild the image), or set NSS_GPU_PROBE to its path"}
	case gpuhelper.IsDirectory:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: the GPU probe's path is a directory (" + out.Detail + ")",
			Hint:    "point NSS_GPU_PROBE at the nss-gpu-probe program itself, or unset it to use the one next to nss-entrypoint"}
	case gpuhelper.NotExecutable:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: " + out.Detail,
			Hint:    "make it executable (chmod 755 in the image), or mount its filesystem without noexec"}
	case gpuhelper.BadFormat:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: " + out.Detail,
			Hint:    "the image was built for another CPU architecture, or the file is damaged: rebuild the image for this platform (docker build --platform)"}
	case gpuhelper.NoLoader:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: " + out.Detail,
			Hint:    "nss-gpu-probe links glibc: run it in a glibc-based image (Debian, Ubuntu), as the Safe Synthesizer image is"}
	case gpuhelper.NoProcesses:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: processes are scarce, so the GPU probe was not started (" + out.Detail + "); safe-synthesizer will need processes too",
			Hint:    rt().ProcsHint()}
	case gpuhelper.NoThreads:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: processes are scarce: the GPU probe started but could not create a thread (" + out.Detail + "); safe-synthesizer will need threads too",
			Hint:    rt().ProcsHint()}
	case gpuhelper.ThreadMemory:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: the GPU probe started but could not map a new thread's stack (" + out.Detail + "); safe-synthesizer will need far more",
			Hint:    "drop ulimit -v or set it far higher (the Go runtime and the CUDA libraries reserve far more address space than they use) and keep ulimit -s at a few MiB (8192 KiB is the usual default); if neither is set, " + rt().MemoryHint()}
	case gpuhelper.RuntimeMemory:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: the GPU probe's Go runtime could not reserve memory as it started (" + out.Detail + "); safe-synthesizer will need far more",
			Hint:    "drop ulimit -v or set it far higher (the Go runtime and the CUDA libraries reserve far more address space than they use); if it is not set, " + rt().MemoryHint()}
	case gpuhelper.NoDescriptors:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: the open-file limit is reached (" + out.Detail + ")",
			Hint:    rt().NofileHint()}
	case gpuhelper.NoMemory:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: " + out.Detail,
			Hint:    rt().MemoryHint()}
	case gpuhelper.StartFailed:
		return Result{Status: Warn, Data: data,
			Message: "cannot check the GPUs: the GPU probe could not be started (" + out.Detail + ")",
			Hint:    "run nss-gpu-probe in the container to see the error, and report it with the output of nss-entrypoint --diagnose"}
	case gpuhelper.Flood:
		return Result{Status: Warn, Data: data,
			Message: "the GPU probe printed without end (" + out.Detail + "): it is not the nss-gpu-probe of this image",
			Hint:    "check NSS_GPU_PROBE, or rebuild the image so that nss-gpu-probe and nss-entrypoint come from the same build"}
	case gpuhelper.BudgetSpent:
		return Result{Status: Warn, Data: data,
			Message: "the GPU probe " + out.Detail + ": the start was probably stopped or paused meanwhile (docker pause, SIGSTOP, a suspended host), or NVML is hanging",
			Hint:    "if the start was not paused, run nvidia-smi on the host; enable persistence mode (sudo nvidia-smi -pm 1)"}
	case gpuhelper.TimedOut:
		return Result{Status: Warn, Data: data,
			Message: "the GPU probe did not answer in time: NVML is hanging (a busy or unhealthy driver, or many GPUs without persistence mode)",
			Hint:    "run nvidia-smi on the host; enable persistence mode (sudo nvidia-smi -pm 1); or raise NSS_ENTRYPOINT_TIMEOUT (e.g. 20s)"}
	case gpuhelper.Crashed:
		return Result{Status: Warn, Data: data,
			Message: "the GPU probe crashed inside the NVIDIA driver library (" + out.Detail + ")",
			Hint:    "run nvidia-smi on the host; if it also fails, reinstall or update the NVIDIA driver"}
	case gpuhelper.Garbage:
		return Result{Status: Warn, Data: data,
			Message: "the GPU probe printed an unreadable report (" + out.Detail + ")",
			Hint:    "nss-gpu-probe and nss-entrypoint are from different builds (rebuild the image), or NSS_GPU_PROBE names another program"}
	default:
		return Result{Status: Warn, Data: data,
			Message: "the GPU probe failed (" + out.Detail + ")",
			Hint:    "run nss-gpu-probe in the container to see its error, and nvidia-smi on the host"}
	}
}

// gpuVerdict judges a report that the helper delivered.
func gpuVerdict(rep *gpureport.Report, rt Runtime, data map[string]any) Result {
	if rep.Panic != "" {
		data["probe_panic"] = rep.Panic
	}
	if !rep.Loaded {
		return nvmlFailure(rep.Error, rt, data)
	}
	data["driver_version"], data["cuda_version"], data["nvml_version"] = rep.DriverVersion, rep.CUDAVersion(), rep.NVMLVersion
	data["devices"] = len(rep.Devices)
	if rep.DeviceCountError != nil {
		return nvmlFailure(rep.DeviceCountError, rt, data)
	}
	if len(rep.Devices) == 0 {
		return Result{Status: Fail, Data: data,
			Message: "the NVIDIA driver is loaded but no GPU is visible to this container",
			Hint:    "check NVIDIA_VISIBLE_DEVICES and give the container GPUs: " + rt.GPUHint()}
	}
	for _, d := range rep.Devices {
		if ne, ok := d.Errors["handle"]; ok {
			ne.Function = fmt.Sprintf("nvmlDeviceGetHandleByIndex(%d)", d.Index)
			return nvmlFailure(&ne, rt, data)
		}
	}
	return Result{Status: OK, Data: data, Message: GPUSummary(rep)}
}

// nvmlFailure gives the hint for an NVML error code.
func nvmlFailure(ne *gpureport.NVMLError, rt Runtime, data map[string]any) Result {
	if ne == nil {
		ne = &gpureport.NVMLError{Function: "nvmlInit", Code: -1, Name: "UNKNOWN"}
	}
	data["nvml_function"], data["nvml_code"], data["nvml_error"] = ne.Function, ne.Code, ne.Name
	r := Result{Status: Fail, Data: data}
	switch ne.Code {
	case gpureport.CodeLibraryNotFound:
		r.Message = "libnvidia-ml.so.1 is not in the container: the NVIDIA Container Toolkit did not inject the driver libraries"
		r.Hint = "install the NVIDIA Container Toolkit on the host and start with GPUs: " + rt.GPUHint() + "; keep NVIDIA_DRIVER_CAPABILITIES=compute,utility"
	case gpureport.CodeDriverNotLoaded:
		r.Message = "the NVIDIA kernel driver is not loaded on the host"
		r.Hint = "on the host, run nvidia-smi; load the driver (sudo modprobe nvidia) or reinstall it, then restart the container"
	case gpureport.CodeNoPermission:
		r.Message = "no permission to open the GPU device nodes (/dev/nvidia*)"
		r.Hint = "request GPUs through the runtime instead of mounting /dev/nvidia* by hand: " + rt.GPUHint()
	case gpureport.CodeUnknown:
		r.Message = "NVML answered \"Unknown Error\": the container has usually lost access to its GPUs after systemctl daemon-reload on the host"
		r.Hint = "restart the container; to stop it recurring, see the NVIDIA Container Toolkit notes on systemd cgroup management"
		if rt.Name != "docker" && rt.Name != "podman" && rt.Name != "nerdctl" && rt.Name != "unknown" {
			r.Hint = CgroupLostHint(rt)
		}
	case gpureport.CodeLibRMVersionMismatch:
		r.Message = "the NVIDIA driver library and kernel module versions differ: the host driver was upgraded without a reboot, or driver libraries are baked into the image"
		r.Hint = "reboot the host after a driver upgrade; never install libnvidia-* packages in the image"
	case gpureport.CodeGPUIsLost:
		r.Message = "a GPU has fallen off the bus (GPU is lost)"
		r.Hint = "on the host, check dmesg for Xid 79 and nvidia-smi; the GPU needs a reset or the host a reboot"
	default:
		r.Message = fmt.Sprintf("NVML failed in %s: %s (%d)", ne.Function, ne.Name, ne.Code)
		r.Hint = "run nvidia-smi on the host and in the container, and report the output of nss-entrypoint --diagnose"
	}
	return r
}

// GPUSummary describes the GPUs in one line: "1 GPU: NVIDIA H200 (140 GiB),
// driver 580.159.04, CUDA 13.0".
func GPUSummary(rep *gpureport.Report) string {
	var b strings.Builder
	n := len(rep.Devices)
	if n == 1 {
		b.WriteString("1 GPU: ")
	} else {
		fmt.Fprintf(&b, "%d GPUs: ", n)
	}
	type model struct {
		name string
		mem  uint64
	}
	var order []model
	counts := map[model]int{}
	for _, d := range rep.Devices {
		m := model{d.Name, d.MemoryTotalBytes}
		if m.name == "" {
			m.name = "unnamed GPU"
		}
		if counts[m] == 0 {
			order = append(order, m)
		}
		counts[m]++
	}
	for i, m := range order {
		if i > 0 {
			b.WriteString(", ")
		}
		if counts[m] > 1 {
			fmt.Fprintf(&b, "%dx ", counts[m])
		}
		b.WriteString(m.name)
		if m.mem > 0 {
			fmt.Fprintf(&b, " (%s)", FormatBytes(m.mem))
		}
	}
	if rep.DriverVersion != "" {
		fmt.Fprintf(&b, ", driver %s", rep.DriverVersion)
	}
	if v := rep.CUDAVersion(); v != "" {
		fmt.Fprintf(&b, ", CUDA %s", v)
	}
	return b.String()
}

// probeStuck is the GPU check still running at the deadline: the probe's
// own time-out ends it before then, so it was still being started (its
// execve waits on its file) or its output still held. Its file's
// filesystem, read from mountinfo, says which is likelier.
func probeStuck(e *Env, timeout time.Duration) (message, hint string) {
	if e.ProbePath == nil {
		return "", ""
	}
	p := e.ProbePath()
	within := ""
	if timeout > 0 {
		within = " within " + timeout.Round(time.Millisecond).String()
	}
	message = "the GPU probe " + p + " did not start or answer" + within
	if m, ok := MountFor(e.Mounts(), p); ok && Unsafe(m.FSType) {
		return message + ": it is on " + m.FSType + " at " + m.Point + ", which is not responding",
			"check that filesystem's daemon or server, or point NSS_GPU_PROBE at the image's own nss-gpu-probe"
	}
	return message, "run nss-gpu-probe in the container and nvidia-smi on the host; " + e.RaiseTimeout("10s") + " if it is only slow (an image whose layers are fetched on first use)"
}
