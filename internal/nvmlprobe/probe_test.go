package nvmlprobe

import (
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

func TestCollectDGXH100(t *testing.T) {
	srv := dgxh100.New()
	for _, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for i, c := range "0000:1B:00.0" {
				p.BusIdLegacy[i] = int8(c)
			}
			return p, nvml.SUCCESS
		}
	}
	rep := Collect(srv)
	if !rep.Loaded || rep.Error != nil || rep.Panic != "" {
		t.Fatalf("report %+v", rep)
	}
	if rep.DriverVersion != "550.54.15" || rep.CUDADriverVersion != 12040 || rep.NVMLVersion != "12.550.54.15" || rep.CUDAVersion() != "12.4" {
		t.Errorf("versions %q %d %q", rep.DriverVersion, rep.CUDADriverVersion, rep.NVMLVersion)
	}
	if len(rep.Devices) != 8 {
		t.Fatalf("%d devices", len(rep.Devices))
	}
	for i, d := range rep.Devices {
		if d.Index != i || !strings.Contains(d.Name, "H100") || d.UUID == "" || d.ComputeCapability != "9.0" ||
			d.MemoryTotalBytes == 0 || d.MIGMode != "disabled" || d.PersistenceMode != "enabled" || d.ComputeProcesses != 0 || d.PCIBusID == "" {
			t.Errorf("device %d: %+v", i, d)
		}
	}
	if len(rep.Unavailable) != 0 {
		t.Errorf("unavailable %v", rep.Unavailable)
	}
}

func TestCollectGuardsMissingSymbols(t *testing.T) {
	srv := dgxh100.NewWithGPUs(dgxh100.NewDevice(0).Config) // reuse one H100 config
	missing := map[string]bool{
		"nvmlDeviceGetPersistenceMode": true, "nvmlDeviceGetComputeRunningProcesses": true,
		"nvmlDeviceGetComputeRunningProcesses_v2": true, "nvmlDeviceGetComputeRunningProcesses_v3": true,
		"nvmlSystemGetCudaDriverVersion": true, "nvmlSystemGetCudaDriverVersion_v2": true,
	}
	srv.LookupSymbolFunc = func(name string) error {
		if missing[name] {
			return errors.New("undefined symbol")
		}
		return nil
	}
	// The mock devices have no persistence or process functions: calling
	// them would panic, just as calling a missing C symbol would kill us.
	rep := Collect(srv)
	if rep.Panic != "" {
		t.Fatalf("a guarded call was made: %s", rep.Panic)
	}
	if rep.CUDADriverVersion != 0 || rep.Devices[0].PersistenceMode != "" || rep.Devices[0].ComputeProcesses != -1 {
		t.Errorf("report %+v", rep)
	}
	want := "nvmlSystemGetCudaDriverVersion nvmlDeviceGetPersistenceMode nvmlDeviceGetComputeRunningProcesses"
	if got := strings.Join(rep.Unavailable, " "); got != want {
		t.Errorf("unavailable %q, want %q", got, want)
	}
}

func TestCollectInitErrorAndPanic(t *testing.T) {
	srv := dgxh100.New()
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
	srv.ErrorStringFunc = func(r nvml.Return) string { return "Driver Not Loaded" }
	rep := Collect(srv)
	if rep.Loaded || rep.Error == nil || rep.Error.Code != 9 || rep.Error.Name != "ERROR_DRIVER_NOT_LOADED" || rep.Error.Message != "Driver Not Loaded" {
		t.Errorf("report %+v error %+v", rep, rep.Error)
	}

	srv = dgxh100.New()
	srv.DeviceGetCountFunc = func() (int, nvml.Return) { panic("bindings broke") }
	rep = Collect(srv)
	if rep.Panic != "bindings broke" {
		t.Errorf("panic %q", rep.Panic)
	}

	srv = dgxh100.New()
	srv.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
	srv.ErrorStringFunc = func(nvml.Return) string { return "GPU is lost" }
	rep = Collect(srv)
	if rep.DeviceCountError == nil || rep.DeviceCountError.Code != 15 {
		t.Errorf("count error %+v in %+v", rep.DeviceCountError, rep)
	}
}

func TestCollectShutsDown(t *testing.T) {
	srv := dgxh100.New()
	for _, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_DISABLED, nvml.SUCCESS }
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
	}
	shut := 0
	srv.ShutdownFunc = func() nvml.Return { shut++; return nvml.SUCCESS }
	rep := Collect(srv)
	if shut != 1 {
		t.Errorf("Shutdown called %d times", shut)
	}
	if rep.Devices[0].PersistenceMode != "disabled" || rep.Devices[0].ComputeProcesses != -1 || len(rep.Devices[0].Errors) != 0 {
		t.Errorf("device %+v", rep.Devices[0])
	}
}

func TestCollectDeviceErrorsCarryTheCode(t *testing.T) {
	srv := dgxh100.NewWithGPUs(dgxh100.NewDevice(0).Config)
	dev := srv.Devices[0].(*server.Device)
	dev.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
	dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
	dev.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_NO_PERMISSION }
	rep := Collect(srv)
	got, ok := rep.Devices[0].Errors["memory"]
	if !ok || got.Code != int(nvml.ERROR_NO_PERMISSION) || got.Name != "ERROR_NO_PERMISSION" {
		t.Errorf("memory error %+v (ok %v) in %+v", got, ok, rep.Devices[0].Errors)
	}
}
