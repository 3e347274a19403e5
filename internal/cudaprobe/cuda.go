// Package cudaprobe asks the CUDA driver API (libcuda.so.1) whether CUDA
// works: cuInit, the driver API version, the devices it numbers (after
// CUDA_VISIBLE_DEVICES) and, for --diagnose, a context on each. NVML
// answering is not CUDA working: the stub libcuda, forward-compatibility
// libraries, a missing /dev/nvidia-uvm or a fabric manager that is not
// running all pass NVML and fail here.
//
// libcuda is loaded with dlopen and every function is looked up before it
// is called (shim.c), so the probe's only link-time dependency stays glibc.
// Stage runs the calls in this process; RunStage runs them in a child
// process with a deadline, so that a crash or a hang inside libcuda costs
// the CUDA answer only, never the NVML report. It never prints, except the
// progress lines Stage's caller asks for.
package cudaprobe

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// missing is NSS_CU_MISSING: the library lacks the function.
const missing = C.NSS_CU_MISSING

// MaxDevices bounds the devices the stage describes. No machine has more
// CUDA devices than this (eight GPUs with seven MIG instances each is 56);
// a larger count is a broken library's answer, and describing it would
// grow the report without bound.
const MaxDevices = 256

// The cuDeviceGetAttribute attributes the probe reads.
const (
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
)

// stage carries the report being filled.
type stage struct {
	rep  *gpureport.CUDA
	seen map[string]bool
	// progress is told the name of each call before it is made.
	progress func(call string)
}

// Stage loads libcuda.so.1 and runs the CUDA stage in this process. With
// contexts it also makes a context on each device. progress, when not nil,
// is called with the name of each call before it is made, so that a parent
// that has to kill this process knows where it hung.
func Stage(contexts bool, progress func(call string)) gpureport.CUDA {
	if progress == nil {
		progress = func(string) {}
	}
	rep := gpureport.CUDA{DeviceCount: -1, Devices: []gpureport.CUDADevice{}, Contexts: contexts}
	s := &stage{rep: &rep, seen: map[string]bool{}, progress: progress}
	start := time.Now()
	defer func() { rep.StageMillis = millis(time.Since(start)) }()

	progress("dlopen")
	var errBuf [512]C.char
	if C.nss_cu_open(nil, &errBuf[0], C.size_t(len(errBuf))) != 0 {
		rep.LoadError = goString(errBuf[:])
		name := "LIBRARY_NOT_FOUND"
		if p, ok := unloadable(rep.LoadError); ok {
			// dlopen found a file and stopped at it: saying "not found"
			// would send the user looking for the wrong problem.
			name, rep.Library = "LIBRARY_UNLOADABLE", p
		}
		rep.Error = &gpureport.CUDAError{Function: "dlopen(libcuda.so.1)", Code: gpureport.CUDAStageFailed, Name: name, Message: rep.LoadError}
		return rep
	}
	var path [4096]C.char
	C.nss_cu_library(&path[0], C.size_t(len(path)))
	rep.Library = goString(path[:])

	progress("cuInit")
	var ns C.longlong
	r := C.nss_cu_init(&ns)
	rep.InitMillis = millis(time.Duration(ns))
	if s.failed("cuInit", r) {
		return rep
	}
	progress("cuDriverGetVersion")
	var version C.int
	if r := C.nss_cu_driver_version(&version); r == 0 {
		rep.DriverVersion = int(version)
	} else {
		s.failed("cuDriverGetVersion", r)
	}
	progress("cuDeviceGetCount")
	var count C.int
	if r := C.nss_cu_device_count(&count); s.failed("cuDeviceGetCount", r) {
		return rep
	}
	rep.DeviceCount = int(count)
	if count < 0 || count > MaxDevices {
		rep.Error = &gpureport.CUDAError{Function: "cuDeviceGetCount", Code: gpureport.CUDAStageFailed, Name: "GARBAGE",
			Message: fmt.Sprintf("cuDeviceGetCount succeeded with a count of %d, which no CUDA driver gives (0 to %d)", int(count), MaxDevices)}
		return rep
	}
	for i := 0; i < int(count); i++ {
		d, ok := s.device(i, contexts)
		rep.Devices = append(rep.Devices, d)
		if !ok {
			return rep
		}
	}
	if rep.DeviceCount == 0 && rep.Error == nil {
		rep.Error = &gpureport.CUDAError{Function: "cuDeviceGetCount", Code: gpureport.CUDANoDevice, Name: s.name(gpureport.CUDANoDevice), Message: "cuDeviceGetCount found no device"}
	}
	return rep
}

// device describes the device at ordinal i and, with contexts, makes a
// context on it. It returns false when a call failed in a way that ends the
// stage.
func (s *stage) device(i int, contexts bool) (gpureport.CUDADevice, bool) {
	d := gpureport.CUDADevice{Ordinal: i}
	call := func(fn string) string { return fmt.Sprintf("%s(%d)", fn, i) }
	s.progress(call("cuDeviceGet"))
	var dev C.int
	if r := C.nss_cu_device(C.int(i), &dev); s.failed(call("cuDeviceGet"), r) {
		return d, false
	}
	var buf [256]C.char
	s.progress(call("cuDeviceGetName"))
	if r := C.nss_cu_device_name(dev, &buf[0], C.int(len(buf))); r == 0 {
		d.Name = goString(buf[:])
	} else {
		s.failed(call("cuDeviceGetName"), r)
	}
	s.progress(call("cuDeviceGetAttribute"))
	var major, minor C.int
	r1 := C.nss_cu_attribute(attrComputeCapabilityMajor, dev, &major)
	r2 := C.nss_cu_attribute(attrComputeCapabilityMinor, dev, &minor)
	if r1 == 0 && r2 == 0 {
		d.ComputeCapability = fmt.Sprintf("%d.%d", int(major), int(minor))
	} else if r1 != 0 {
		s.failed(call("cuDeviceGetAttribute"), r1)
	} else {
		s.failed(call("cuDeviceGetAttribute"), r2)
	}
	s.progress(call("cuDeviceGetPCIBusId"))
	if r := C.nss_cu_pci_bus_id(dev, &buf[0], C.int(len(buf))); r == 0 {
		d.PCIBusID = goString(buf[:])
	} else {
		s.failed(call("cuDeviceGetPCIBusId"), r)
	}
	if !contexts {
		return d, true
	}
	s.progress(call("context"))
	var free, total C.ulonglong
	var ns C.longlong
	var fn *C.char
	r := C.nss_cu_context(dev, &free, &total, &ns, &fn)
	ctx := &gpureport.CUDAContext{MemoryFreeBytes: uint64(free), MemoryTotal: uint64(total), Millis: millis(time.Duration(ns))}
	d.Context = ctx
	if r == missing {
		s.unavailable(cString(fn))
		return d, true
	}
	if r != 0 {
		ctx.Error = s.cudaError(call(cString(fn)), int(r))
		if s.rep.Error == nil {
			s.rep.Error = ctx.Error
		}
	}
	return d, true
}

// failed records a failing result of fn as the stage's error (the first one
// wins) and reports whether the call failed. A missing function is recorded
// as unavailable and counts as failed only for the calls the stage cannot
// go on without.
func (s *stage) failed(fn string, r C.int) bool {
	switch {
	case r == 0:
		return false
	case r == missing:
		name := fn
		if i := strings.IndexByte(name, '('); i >= 0 {
			name = name[:i]
		}
		s.unavailable(name)
		switch name {
		case "cuInit", "cuDeviceGetCount", "cuDeviceGet":
			if s.rep.Error == nil {
				s.rep.Error = &gpureport.CUDAError{Function: fn, Code: gpureport.CUDAStageFailed, Name: "FUNCTION_NOT_FOUND", Message: "libcuda does not export " + name}
			}
		}
		return true
	}
	if s.rep.Error == nil {
		s.rep.Error = s.cudaError(fn, int(r))
	}
	return true
}

// cudaError names a CUresult: cuGetErrorName and cuGetErrorString when the
// library has them, else the names this program knows.
func (s *stage) cudaError(fn string, code int) *gpureport.CUDAError {
	e := &gpureport.CUDAError{Function: fn, Code: code, Name: s.name(code)}
	if C.nss_cu_has(cstr("cuGetErrorString")) != 0 {
		if m := C.nss_cu_error_string(C.int(code)); m != nil {
			e.Message = cString(m)
		}
	} else {
		s.unavailable("cuGetErrorString")
	}
	return e
}

func (s *stage) name(code int) string {
	if C.nss_cu_has(cstr("cuGetErrorName")) == 0 {
		s.unavailable("cuGetErrorName")
		return gpureport.CUDAResultName(code)
	}
	if n := C.nss_cu_error_name(C.int(code)); n != nil {
		return cString(n)
	}
	return gpureport.CUDAResultName(code)
}

func (s *stage) unavailable(name string) {
	if !s.seen[name] {
		s.seen[name] = true
		s.rep.Unavailable = append(s.rep.Unavailable, name)
	}
}

// NVMLLibrary returns the real path of the libnvidia-ml in this process's
// global scope (go-nvml loads it RTLD_GLOBAL), or "" when none is loaded.
func NVMLLibrary() string {
	var path [4096]C.char
	C.nss_nvml_library(&path[0], C.size_t(len(path)))
	return goString(path[:])
}

// goString reads a C string from buf, never past its end: libcuda may fill
// a name buffer without a terminating NUL.
func goString(buf []C.char) string {
	if len(buf) == 0 {
		return ""
	}
	return C.GoStringN(&buf[0], C.int(C.strnlen(&buf[0], C.size_t(len(buf)))))
}

// maxCString bounds the strings libcuda returns by pointer (error names
// and texts), which have no length.
const maxCString = 1024

// cString reads at most maxCString bytes of a C string that libcuda owns.
func cString(p *C.char) string {
	return C.GoStringN(p, C.int(C.strnlen(p, maxCString)))
}

// unloadable reports whether a dlerror message names a file that dlopen
// found and could not load ("/x/libcuda.so.1: file too short", "...:
// cannot read file data: Is a directory", "...: invalid ELF header"),
// rather than finding none ("libcuda.so.1: cannot open shared object
// file: No such file or directory"), and returns its path.
func unloadable(msg string) (string, bool) {
	p, _, ok := strings.Cut(msg, ": ")
	if !ok || !strings.HasPrefix(p, "/") || strings.Contains(msg, "cannot open shared object file: No such file") {
		return "", false
	}
	return p, true
}

// cstrs keeps the few C strings this package needs for the process's life.
var cstrs = map[string]*C.char{}

func cstr(s string) *C.char {
	if p, ok := cstrs[s]; ok {
		return p
	}
	p := C.CString(s)
	cstrs[s] = p
	return p
}

func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
