// Package nvmlprobe asks NVML what GPUs this process can see and fills a
// gpureport.Report. It is the only package that calls NVML; it never prints.
//
// go-nvml leaves every nvml* symbol undefined and binds it lazily, so calling a
// function the installed driver lacks kills the process. Every call other than
// Init, Shutdown and ErrorString is therefore guarded by a symbol lookup.
package nvmlprobe

import (
	"fmt"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// prober carries the library and collects the names of missing functions.
type prober struct {
	lib         nvml.Interface
	opts        Options
	unavailable []string
	seen        map[string]bool
}

// Options says what Collect asks for beyond the start-up fields.
type Options struct {
	// Health reads each GPU's hardware state (--diagnose).
	Health bool
	// Library, when not nil, is called while NVML is loaded and returns the
	// path of the library that was loaded.
	Library func() string
}

// Collect initialises NVML, describes every device, shuts NVML down and
// returns the report. A panic inside NVML's Go bindings is recovered and
// recorded in the report.
func Collect(lib nvml.Interface) gpureport.Report {
	return CollectWith(lib, Options{})
}

// CollectWith is Collect with options.
func CollectWith(lib nvml.Interface, opts Options) (rep gpureport.Report) {
	rep = gpureport.Report{SchemaVersion: gpureport.SchemaVersion, Devices: []gpureport.Device{}}
	p := &prober{lib: lib, opts: opts, seen: map[string]bool{}}
	defer func() {
		if r := recover(); r != nil {
			rep.Panic = fmt.Sprint(r)
		}
		rep.Unavailable = p.unavailable
	}()

	if ret := lib.Init(); ret != nvml.SUCCESS {
		rep.Error = p.nvmlError("nvmlInit", ret)
		return rep
	}
	rep.Loaded = true
	defer lib.Shutdown()
	if opts.Library != nil {
		rep.NVMLLibrary = opts.Library()
	}

	if p.has("nvmlSystemGetDriverVersion") {
		if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
			rep.DriverVersion = v
		}
	}
	if p.has("nvmlSystemGetCudaDriverVersion", "nvmlSystemGetCudaDriverVersion_v2") {
		if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
			rep.CUDADriverVersion = v
		}
	}
	if p.has("nvmlSystemGetNVMLVersion") {
		if v, ret := lib.SystemGetNVMLVersion(); ret == nvml.SUCCESS {
			rep.NVMLVersion = v
		}
	}

	if !p.has("nvmlDeviceGetCount", "nvmlDeviceGetCount_v2") {
		rep.DeviceCountError = &gpureport.NVMLError{Function: "nvmlDeviceGetCount", Code: int(nvml.ERROR_FUNCTION_NOT_FOUND), Name: "ERROR_FUNCTION_NOT_FOUND"}
		return rep
	}
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		rep.DeviceCountError = p.nvmlError("nvmlDeviceGetCount", ret)
		return rep
	}
	for i := 0; i < count; i++ {
		rep.Devices = append(rep.Devices, p.device(i))
	}
	return rep
}

// device describes the device at index i, field by field.
func (p *prober) device(i int) gpureport.Device {
	d := gpureport.Device{Index: i, ComputeProcesses: -1}
	fail := func(field string, ret nvml.Return) {
		if d.Errors == nil {
			d.Errors = map[string]gpureport.NVMLError{}
		}
		d.Errors[field] = *p.nvmlError("", ret)
	}
	if !p.has("nvmlDeviceGetHandleByIndex", "nvmlDeviceGetHandleByIndex_v2") {
		fail("handle", nvml.ERROR_FUNCTION_NOT_FOUND)
		return d
	}
	dev, ret := p.lib.DeviceGetHandleByIndex(i)
	if ret != nvml.SUCCESS {
		fail("handle", ret)
		return d
	}
	if p.has("nvmlDeviceGetName") {
		if d.Name, ret = dev.GetName(); ret != nvml.SUCCESS {
			fail("name", ret)
		}
	}
	if p.has("nvmlDeviceGetUUID") {
		if d.UUID, ret = dev.GetUUID(); ret != nvml.SUCCESS {
			fail("uuid", ret)
		}
	}
	if p.has("nvmlDeviceGetPciInfo", "nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetPciInfo_v3") {
		if pci, ret := dev.GetPciInfo(); ret == nvml.SUCCESS {
			d.PCIBusID = cString(pci.BusId[:])
			if d.PCIBusID == "" {
				d.PCIBusID = cString(pci.BusIdLegacy[:])
			}
		} else {
			fail("pci_bus_id", ret)
		}
	}
	if p.has("nvmlDeviceGetMemoryInfo") {
		if mem, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
			d.MemoryTotalBytes, d.MemoryUsedBytes = mem.Total, mem.Used
		} else {
			fail("memory", ret)
		}
	}
	if p.has("nvmlDeviceGetCudaComputeCapability") {
		if major, minor, ret := dev.GetCudaComputeCapability(); ret == nvml.SUCCESS {
			d.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
		} else {
			fail("compute_capability", ret)
		}
	}
	if p.has("nvmlDeviceGetMigMode") {
		current, _, ret := dev.GetMigMode()
		switch {
		case ret == nvml.SUCCESS:
			d.MIGMode = enabled(current == nvml.DEVICE_MIG_ENABLE)
		case ret != nvml.ERROR_NOT_SUPPORTED:
			fail("mig_mode", ret)
		}
		if d.MIGMode == "enabled" && p.has("nvmlDeviceGetMaxMigDeviceCount") && p.has("nvmlDeviceGetMigDeviceHandleByIndex") {
			d.MIGDevices = p.migDevices(dev)
		}
	}
	if p.has("nvmlDeviceGetPersistenceMode") {
		mode, ret := dev.GetPersistenceMode()
		switch {
		case ret == nvml.SUCCESS:
			d.PersistenceMode = enabled(mode == nvml.FEATURE_ENABLED)
		case ret != nvml.ERROR_NOT_SUPPORTED:
			fail("persistence_mode", ret)
		}
	}
	if p.has("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetComputeRunningProcesses_v2", "nvmlDeviceGetComputeRunningProcesses_v3") {
		if procs, ret := dev.GetComputeRunningProcesses(); ret == nvml.SUCCESS {
			d.ComputeProcesses = len(procs)
		} else if ret != nvml.ERROR_NOT_SUPPORTED {
			fail("compute_processes", ret)
		}
	}
	if p.opts.Health {
		d.Health = p.health(dev, fail)
	}
	return d
}

// migDevices counts the MIG devices that exist on a MIG-enabled GPU.
func (p *prober) migDevices(dev nvml.Device) int {
	max, ret := dev.GetMaxMigDeviceCount()
	if ret != nvml.SUCCESS {
		return 0
	}
	n := 0
	for i := 0; i < max; i++ {
		if _, ret := dev.GetMigDeviceHandleByIndex(i); ret == nvml.SUCCESS {
			n++
		}
	}
	return n
}

// has reports whether the library exports any of the named symbols, and
// records the first name as unavailable when it exports none of them.
func (p *prober) has(names ...string) bool {
	ext := p.lib.Extensions()
	for _, n := range names {
		if ext.LookupSymbol(n) == nil {
			return true
		}
	}
	if !p.seen[names[0]] {
		p.seen[names[0]] = true
		p.unavailable = append(p.unavailable, names[0])
	}
	return false
}

// nvmlError names a return code; the library's own message is used only when
// nvmlErrorString exists.
func (p *prober) nvmlError(function string, ret nvml.Return) *gpureport.NVMLError {
	e := &gpureport.NVMLError{Function: function, Code: int(ret), Name: returnName(ret)}
	if function != "" && p.lib.Extensions().LookupSymbol("nvmlErrorString") == nil {
		e.Message = p.lib.ErrorString(ret)
	}
	return e
}

// returnName turns a return code into its constant's name, "ERROR_UNKNOWN" style.
func returnName(ret nvml.Return) string {
	if name, ok := returnNames[ret]; ok {
		return name
	}
	return fmt.Sprintf("RETURN_%d", int(ret))
}

var returnNames = map[nvml.Return]string{
	nvml.SUCCESS:                       "SUCCESS",
	nvml.ERROR_UNINITIALIZED:           "ERROR_UNINITIALIZED",
	nvml.ERROR_INVALID_ARGUMENT:        "ERROR_INVALID_ARGUMENT",
	nvml.ERROR_NOT_SUPPORTED:           "ERROR_NOT_SUPPORTED",
	nvml.ERROR_NO_PERMISSION:           "ERROR_NO_PERMISSION",
	nvml.ERROR_ALREADY_INITIALIZED:     "ERROR_ALREADY_INITIALIZED",
	nvml.ERROR_NOT_FOUND:               "ERROR_NOT_FOUND",
	nvml.ERROR_INSUFFICIENT_SIZE:       "ERROR_INSUFFICIENT_SIZE",
	nvml.ERROR_INSUFFICIENT_POWER:      "ERROR_INSUFFICIENT_POWER",
	nvml.ERROR_DRIVER_NOT_LOADED:       "ERROR_DRIVER_NOT_LOADED",
	nvml.ERROR_TIMEOUT:                 "ERROR_TIMEOUT",
	nvml.ERROR_IRQ_ISSUE:               "ERROR_IRQ_ISSUE",
	nvml.ERROR_LIBRARY_NOT_FOUND:       "ERROR_LIBRARY_NOT_FOUND",
	nvml.ERROR_FUNCTION_NOT_FOUND:      "ERROR_FUNCTION_NOT_FOUND",
	nvml.ERROR_CORRUPTED_INFOROM:       "ERROR_CORRUPTED_INFOROM",
	nvml.ERROR_GPU_IS_LOST:             "ERROR_GPU_IS_LOST",
	nvml.ERROR_RESET_REQUIRED:          "ERROR_RESET_REQUIRED",
	nvml.ERROR_OPERATING_SYSTEM:        "ERROR_OPERATING_SYSTEM",
	nvml.ERROR_LIB_RM_VERSION_MISMATCH: "ERROR_LIB_RM_VERSION_MISMATCH",
	nvml.ERROR_IN_USE:                  "ERROR_IN_USE",
	nvml.ERROR_MEMORY:                  "ERROR_MEMORY",
	nvml.ERROR_NO_DATA:                 "ERROR_NO_DATA",
	nvml.ERROR_INSUFFICIENT_RESOURCES:  "ERROR_INSUFFICIENT_RESOURCES",
	nvml.ERROR_NOT_READY:               "ERROR_NOT_READY",
	nvml.ERROR_GPU_NOT_FOUND:           "ERROR_GPU_NOT_FOUND",
	nvml.ERROR_INVALID_STATE:           "ERROR_INVALID_STATE",
	nvml.ERROR_UNKNOWN:                 "ERROR_UNKNOWN",
}

func enabled(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

// cString returns the text before the first NUL of a C char array.
func cString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}
