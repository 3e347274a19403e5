package gpureport

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"healthy", `{"schema_version":1,"loaded":true,"devices":[{"index":0,"name":"NVIDIA H200","compute_processes":0}]}`, ""},
		{"error", `{"schema_version":1,"loaded":false,"error":{"function":"nvmlInit","code":9,"name":"ERROR_DRIVER_NOT_LOADED"},"devices":[]}`, ""},
		{"not json", `this is not json`, "decode gpu report"},
		{"empty", ``, "decode gpu report"},
		{"future schema", `{"schema_version":2,"loaded":true,"devices":[]}`, "schema version 2"},
		{"no schema", `{"loaded":true,"devices":[]}`, "schema version 0"},
		{"unexplained failure", `{"schema_version":1,"loaded":false,"devices":[]}`, "gives no error"},
		{"bad index", `{"schema_version":1,"loaded":true,"devices":[{"index":3}]}`, "device 0 has index 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.in))
			if tc.err == "" {
				if err != nil || r == nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	in := Report{SchemaVersion: SchemaVersion, Loaded: true, DriverVersion: "580.159.04", CUDADriverVersion: 13000,
		Devices: []Device{{Index: 0, Name: "NVIDIA H200", MemoryTotalBytes: 143771 << 20, ComputeCapability: "9.0", ComputeProcesses: -1}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Devices, in.Devices) || out.CUDAVersion() != "13.0" {
		t.Errorf("round trip: %+v", out)
	}
}

func TestFormatCUDAVersion(t *testing.T) {
	for v, want := range map[int]string{0: "", -1: "", 12040: "12.4", 12090: "12.9", 13000: "13.0", 11080: "11.8"} {
		if got := FormatCUDAVersion(v); got != want {
			t.Errorf("FormatCUDAVersion(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestNVMLErrorText(t *testing.T) {
	e := &NVMLError{Function: "nvmlInit", Code: 9, Name: "ERROR_DRIVER_NOT_LOADED", Message: "Driver Not Loaded"}
	if got := e.Error(); got != "nvmlInit: Driver Not Loaded (ERROR_DRIVER_NOT_LOADED, 9)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestParseCUDAStage(t *testing.T) {
	ok := `{"schema_version":1,"loaded":true,"devices":[],"cuda":{"library":"/l/libcuda.so.580.1.2","device_count":1,"devices":[{"ordinal":0,"name":"H200"}],"init_ms":80.5,"stage_ms":120,"contexts":false}}`
	r, err := Parse([]byte(ok))
	if err != nil || r.CUDA == nil || r.CUDA.Devices[0].Name != "H200" || r.CUDA.InitMillis != 80.5 {
		t.Fatalf("%v %+v", err, r)
	}
	bad := `{"schema_version":1,"loaded":true,"devices":[],"cuda":{"device_count":1,"devices":[{"ordinal":3}]}}`
	if _, err := Parse([]byte(bad)); err == nil {
		t.Error("a CUDA device out of order was accepted")
	}
	for code, name := range map[int]string{34: "CUDA_ERROR_STUB_LIBRARY", 802: "CUDA_ERROR_SYSTEM_NOT_READY", 4242: "CUresult 4242"} {
		if got := CUDAResultName(code); got != name {
			t.Errorf("CUDAResultName(%d) = %q, want %q", code, got, name)
		}
	}
}
