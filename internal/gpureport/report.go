// Package gpureport defines the versioned JSON document that nss-gpu-probe
// prints and nss-entrypoint reads. It is pure Go: it never links NVML, so the
// static entrypoint can import it.
package gpureport

import (
	"errors"
	"fmt"
)

// SchemaVersion is the version of the document. A reader rejects a document
// whose major version it does not know.
const SchemaVersion = 1

// BudgetSpent starts the line nss-gpu-probe writes on stderr when it ends
// itself past its --budget (and a grace) without a report, exit status 3:
// its caller has stopped waiting for it, or was stopped with it (a
// container paused or sent SIGSTOP during the start).
const BudgetSpent = "nss-gpu-probe: no report within its budget"

// Report is what NVML saw, or why it could not see anything.
type Report struct {
	SchemaVersion int `json:"schema_version"`
	// Loaded is true when nvmlInit succeeded.
	Loaded bool `json:"loaded"`
	// Error describes why NVML could not be used; nil when Loaded is true.
	Error *NVMLError `json:"error,omitempty"`
	// DriverVersion is the kernel driver version, such as "580.159.04".
	DriverVersion string `json:"driver_version,omitempty"`
	// CUDADriverVersion is 1000*major + 10*minor, such as 13000; 0 when unknown.
	CUDADriverVersion int `json:"cuda_driver_version,omitempty"`
	// NVMLVersion is the NVML library version, such as "13.580.159.04".
	NVMLVersion string `json:"nvml_version,omitempty"`
	// DeviceCountError is set when the devices could not be counted.
	DeviceCountError *NVMLError `json:"device_count_error,omitempty"`
	Devices          []Device   `json:"devices"`
	// Unavailable lists the NVML functions the library lacks; the matching
	// fields are left empty.
	Unavailable []string `json:"unavailable,omitempty"`
	// Panic holds a recovered panic from the probe, if any.
	Panic string `json:"panic,omitempty"`
	// NVMLLibrary is the real path of the libnvidia-ml that was loaded
	// (dladdr on one of its symbols, symbolic links resolved); "" when NVML
	// did not load.
	NVMLLibrary string `json:"nvml_library,omitempty"`
	// NVMLMillis is how long the NVML stage took, in milliseconds.
	NVMLMillis float64 `json:"nvml_ms,omitempty"`
	// CUDA is the CUDA driver API stage; nil when it was not asked for
	// (nss-gpu-probe --cuda or --diagnose asks for it).
	CUDA *CUDA `json:"cuda,omitempty"`
}

// CUDA is what the CUDA driver API (libcuda.so.1) said, stage by stage:
// dlopen, cuInit, cuDriverGetVersion, cuDeviceGetCount, each device, and in
// --diagnose a context on each device.
type CUDA struct {
	// Library is the real path of the libcuda that was loaded; "" when
	// dlopen failed.
	Library string `json:"library,omitempty"`
	// LoadError is dlerror's message when libcuda.so.1 could not be loaded.
	LoadError string `json:"load_error,omitempty"`
	// Error is the first CUDA call that failed, or the stage that crashed or
	// did not finish before the deadline; nil when every stage worked.
	Error *CUDAError `json:"error,omitempty"`
	// DriverVersion is cuDriverGetVersion's 1000*major + 10*minor; 0 when unknown.
	DriverVersion int `json:"driver_version,omitempty"`
	// DeviceCount is cuDeviceGetCount's answer, which honours
	// CUDA_VISIBLE_DEVICES; -1 when unknown.
	DeviceCount int          `json:"device_count"`
	Devices     []CUDADevice `json:"devices"`
	// InitMillis is how long cuInit took, in milliseconds.
	InitMillis float64 `json:"init_ms"`
	// StageMillis is how long the whole CUDA stage took, the process that
	// ran it included.
	StageMillis float64 `json:"stage_ms"`
	// Contexts is true when a context was made on each device (--diagnose).
	Contexts bool `json:"contexts"`
	// Unavailable lists the CUDA functions the library lacks.
	Unavailable []string `json:"unavailable,omitempty"`
}

// CUDAError is a CUresult with its name, or a stage that crashed or hung
// (Code -1, Name CRASHED or TIMEOUT, Message saying how).
type CUDAError struct {
	// Function is the call that failed, such as "cuInit" or "cuDevicePrimaryCtxRetain(0)".
	Function string `json:"function"`
	Code     int    `json:"code"`
	// Name is the CUresult's name, such as "CUDA_ERROR_NO_DEVICE".
	Name    string `json:"name"`
	Message string `json:"message,omitempty"`
}

func (e *CUDAError) Error() string { return callError(e.Function, e.Name, e.Message, e.Code) }

// CUDADevice is one device as the CUDA driver API numbers it (after
// CUDA_VISIBLE_DEVICES).
type CUDADevice struct {
	Ordinal           int    `json:"ordinal"`
	Name              string `json:"name,omitempty"`
	ComputeCapability string `json:"compute_capability,omitempty"`
	PCIBusID          string `json:"pci_bus_id,omitempty"`
	// Context is the context test (--diagnose only).
	Context *CUDAContext `json:"context,omitempty"`
}

// CUDAContext is the result of making a context on a device, reading its
// free and total memory and destroying it: proof that work can be scheduled.
type CUDAContext struct {
	Error           *CUDAError `json:"error,omitempty"`
	MemoryFreeBytes uint64     `json:"memory_free_bytes,omitempty"`
	MemoryTotal     uint64     `json:"memory_total_bytes,omitempty"`
	Millis          float64    `json:"ms"`
}

// Health is what NVML says about a GPU's hardware state (--diagnose only).
// A pointer field is nil when the driver could not say.
type Health struct {
	// RetiredPagesPending: pages retired after ECC errors wait for a reset.
	RetiredPagesPending *bool `json:"retired_pages_pending,omitempty"`
	// RowRemapPending: rows were remapped and wait for a reset (A100 and later).
	RowRemapPending *bool `json:"row_remap_pending,omitempty"`
	// RowRemapFailed: a row could not be remapped; the GPU needs service.
	RowRemapFailed *bool `json:"row_remap_failed,omitempty"`
	// VolatileUncorrectableECC counts uncorrectable ECC errors since the
	// driver loaded.
	VolatileUncorrectableECC *uint64 `json:"volatile_uncorrectable_ecc,omitempty"`
	// ClockEventReasons is NVML's bit mask of why clocks are held down;
	// ClockEvents names the bits set.
	ClockEventReasons *uint64  `json:"clock_event_reasons,omitempty"`
	ClockEvents       []string `json:"clock_events,omitempty"`
	// PCIe link: current and maximum generation and width.
	PCIeGen      int `json:"pcie_gen,omitempty"`
	PCIeMaxGen   int `json:"pcie_max_gen,omitempty"`
	PCIeWidth    int `json:"pcie_width,omitempty"`
	PCIeMaxWidth int `json:"pcie_max_width,omitempty"`
	// FabricState is the NVSwitch fabric registration: "not-supported",
	// "not-started", "in-progress" or "completed"; FabricStatus is NVML's
	// return code name for a completed registration that failed.
	FabricState  string `json:"fabric_state,omitempty"`
	FabricStatus string `json:"fabric_status,omitempty"`
	// ComputeMode is "default", "exclusive-thread", "prohibited" or
	// "exclusive-process".
	ComputeMode string `json:"compute_mode,omitempty"`
}

// NVMLError is an NVML return code with its name and the library's message.
type NVMLError struct {
	// Function is the NVML call that failed, such as "nvmlInit"; empty in a
	// device's Errors, where the field name says what was asked.
	Function string `json:"function,omitempty"`
	Code     int    `json:"code"`
	Name     string `json:"name"`
	Message  string `json:"message,omitempty"`
}

func (e *NVMLError) Error() string { return callError(e.Function, e.Name, e.Message, e.Code) }

// callError formats a failed library call the same way for NVML and CUDA:
// "function: message (NAME, code)", or "function: NAME (code)" without a
// message.
func callError(function, name, message string, code int) string {
	if message != "" {
		return fmt.Sprintf("%s: %s (%s, %d)", function, message, name, code)
	}
	return fmt.Sprintf("%s: %s (%d)", function, name, code)
}

// Device is one GPU as NVML describes it. A field NVML could not give is left
// at its zero value and its name is listed in Errors or in the report's
// Unavailable list.
type Device struct {
	Index int    `json:"index"`
	Name  string `json:"name,omitempty"`
	UUID  string `json:"uuid,omitempty"`
	// PCIBusID is the domain:bus:device.function address.
	PCIBusID          string `json:"pci_bus_id,omitempty"`
	MemoryTotalBytes  uint64 `json:"memory_total_bytes,omitempty"`
	MemoryUsedBytes   uint64 `json:"memory_used_bytes,omitempty"`
	ComputeCapability string `json:"compute_capability,omitempty"`
	// MIGMode is "enabled", "disabled" or empty when unknown or unsupported.
	MIGMode string `json:"mig_mode,omitempty"`
	// MIGDevices counts the MIG devices on this GPU when MIG is enabled.
	MIGDevices int `json:"mig_devices,omitempty"`
	// PersistenceMode is "enabled", "disabled" or empty when unknown.
	PersistenceMode string `json:"persistence_mode,omitempty"`
	// ComputeProcesses counts the compute processes NVML sees on the GPU; -1
	// when unknown.
	ComputeProcesses int `json:"compute_processes"`
	// Errors maps a field name to the NVML error (code and name) that kept
	// it empty.
	Errors map[string]NVMLError `json:"errors,omitempty"`
	// Health is the hardware state (nss-gpu-probe --diagnose only).
	Health *Health `json:"health,omitempty"`
}

// CUDAVersion formats CUDADriverVersion as "major.minor", or "" when unknown.
func (r *Report) CUDAVersion() string {
	return FormatCUDAVersion(r.CUDADriverVersion)
}

// FormatCUDAVersion turns NVML's 1000*major+10*minor encoding into "13.0".
func FormatCUDAVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
}

// Parse decodes a report and checks that it is one this reader understands.
// It decodes as encoding/json.Unmarshal would (see decode.go), without
// linking encoding/json into nss-entrypoint.
func Parse(data []byte) (*Report, error) {
	var r Report
	if err := decodeReport(data, &r); err != nil {
		return nil, fmt.Errorf("decode gpu report: %w", err)
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// check tells whether a decoded report is one this reader understands.
func (r *Report) check() error {
	if r.SchemaVersion != SchemaVersion {
		return fmt.Errorf("gpu report schema version %d, want %d", r.SchemaVersion, SchemaVersion)
	}
	if !r.Loaded && r.Error == nil && r.Panic == "" {
		return errors.New("gpu report says NVML did not load but gives no error")
	}
	for i, d := range r.Devices {
		if d.Index != i {
			return fmt.Errorf("gpu report device %d has index %d", i, d.Index)
		}
	}
	if r.CUDA != nil {
		for i, d := range r.CUDA.Devices {
			if d.Ordinal != i {
				return fmt.Errorf("gpu report CUDA device %d has ordinal %d", i, d.Ordinal)
			}
		}
	}
	return nil
}

// NVML return codes that have hints of their own.
const (
	CodeNoPermission         = 4
	CodeDriverNotLoaded      = 9
	CodeLibraryNotFound      = 12
	CodeGPUIsLost            = 15
	CodeLibRMVersionMismatch = 18
	CodeUnknown              = 999
)

// CUresult codes that have causes and fixes of their own.
const (
	CUDASuccess                    = 0
	CUDAOutOfMemory                = 2
	CUDANotInitialized             = 3
	CUDAStubLibrary                = 34
	CUDAInsufficientDriver         = 35
	CUDADeviceUnavailable          = 46
	CUDANoDevice                   = 100
	CUDAInvalidDevice              = 101
	CUDASystemNotReady             = 802
	CUDASystemDriverMismatch       = 803
	CUDACompatNotSupportedOnDevice = 804
	CUDAUnknown                    = 999
	// CUDAStageFailed is the code of a stage that crashed or hung: no
	// CUresult came back.
	CUDAStageFailed = -1
)

// CUDAResultName names a CUresult the way cuda.h does, for the codes this
// program knows; the library's cuGetErrorName is preferred when it exists.
func CUDAResultName(code int) string {
	switch code {
	case 0:
		return "CUDA_SUCCESS"
	case 1:
		return "CUDA_ERROR_INVALID_VALUE"
	case 2:
		return "CUDA_ERROR_OUT_OF_MEMORY"
	case 3:
		return "CUDA_ERROR_NOT_INITIALIZED"
	case 4:
		return "CUDA_ERROR_DEINITIALIZED"
	case 34:
		return "CUDA_ERROR_STUB_LIBRARY"
	case 35:
		return "CUDA_ERROR_INSUFFICIENT_DRIVER"
	case 36:
		return "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER"
	case 46:
		return "CUDA_ERROR_DEVICE_UNAVAILABLE"
	case 100:
		return "CUDA_ERROR_NO_DEVICE"
	case 101:
		return "CUDA_ERROR_INVALID_DEVICE"
	case 102:
		return "CUDA_ERROR_DEVICE_NOT_LICENSED"
	case 201:
		return "CUDA_ERROR_INVALID_CONTEXT"
	case 304:
		return "CUDA_ERROR_OPERATING_SYSTEM"
	case 802:
		return "CUDA_ERROR_SYSTEM_NOT_READY"
	case 803:
		return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"
	case 804:
		return "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"
	case 999:
		return "CUDA_ERROR_UNKNOWN"
	}
	return fmt.Sprintf("CUresult %d", code)
}
