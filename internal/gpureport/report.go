// Package gpureport defines the versioned JSON document that nss-gpu-probe
// prints and nss-entrypoint reads. It is pure Go: it never links NVML, so the
// static entrypoint can import it.
package gpureport

import (
	"encoding/json"
	"errors"
	"fmt"
)

// SchemaVersion is the version of the document. A reader rejects a document
// whose major version it does not know.
const SchemaVersion = 1

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
}

// NVMLError is an NVML return code with its name and the library's message.
type NVMLError struct {
	// Function is the NVML call that failed, such as "nvmlInit".
	Function string `json:"function"`
	Code     int    `json:"code"`
	Name     string `json:"name"`
	Message  string `json:"message,omitempty"`
}

func (e *NVMLError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s: %s (%s, %d)", e.Function, e.Message, e.Name, e.Code)
	}
	return fmt.Sprintf("%s: %s (%d)", e.Function, e.Name, e.Code)
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
	// Errors maps a field name to the NVML error that kept it empty.
	Errors map[string]string `json:"errors,omitempty"`
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
func Parse(data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode gpu report: %w", err)
	}
	if r.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("gpu report schema version %d, want %d", r.SchemaVersion, SchemaVersion)
	}
	if !r.Loaded && r.Error == nil && r.Panic == "" {
		return nil, errors.New("gpu report says NVML did not load but gives no error")
	}
	for i, d := range r.Devices {
		if d.Index != i {
			return nil, fmt.Errorf("gpu report device %d has index %d", i, d.Index)
		}
	}
	return &r, nil
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
