// Package checktest builds check.Envs over temporary trees for the tests of
// the start-up checks and of the report's checks. Only tests import it.
package checktest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// GPUNodes makes the device node and driver directory that let the GPU check
// start the helper.
var GPUNodes = map[string]string{"/dev/nvidiactl": "", "/proc/driver/nvidia/": ""}

// CUDANodes adds what CUDA needs besides: /dev/nvidia-uvm and /dev/nvidia0.
var CUDANodes = map[string]string{"/dev/nvidiactl": "", "/dev/nvidia-uvm": "", "/dev/nvidia0": "", "/proc/driver/nvidia/": ""}

// tmpfsMagic is statfs's f_type of a tmpfs.
const tmpfsMagic = 0x01021994

// FakeEnv is an Env over a temporary root with no GPU and a 1 GiB tmpfs
// /dev/shm.
// Running the GPU helper is a test error unless the test sets Env.GPU.
func FakeEnv(t *testing.T, environ ...string) *check.Env {
	t.Helper()
	return &check.Env{
		Root:    t.TempDir(),
		Environ: environ,
		UID:     1000, GID: 1000,
		Statfs: func(path string) (check.FSInfo, error) {
			if _, err := os.Stat(path); err != nil {
				return check.FSInfo{}, err
			}
			return check.FSInfo{Type: tmpfsMagic, Total: 1 << 30, Free: 1 << 30}, nil
		},
		Access: func(string, uint32) error { return nil },
		GPU: func(context.Context) gpuhelper.Outcome {
			t.Error("the GPU helper ran but the test did not expect it")
			return gpuhelper.Outcome{Failure: gpuhelper.Missing}
		},
	}
}

// Mk creates files and directories under the root: a name ending in "/" is a
// directory, content "->/x" a symbolic link to /x under the root ("->x" a
// relative one), anything else a file with the given content.
func Mk(t *testing.T, e *check.Env, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := e.Path(name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			// "->/x": a symbolic link to /x under the root; "->x", to x
			// relative to the link's folder.
			if strings.HasPrefix(target, "/") {
				target = e.Path(target)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Run runs one check through check.Run and returns its result.
func Run(t *testing.T, c check.Check, e *check.Env) check.Result {
	t.Helper()
	r := check.Run(context.Background(), e, []check.Check{c})[0]
	if r.ID != c.ID {
		t.Fatalf("result id %q, want %q", r.ID, c.ID)
	}
	return r
}

// Expect asserts a status and that the message and hint contain the given
// fragments; a pass has no hint, a warning or failure has one.
func Expect(t *testing.T, r check.Result, status check.Status, msg, hint string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %v, want %v (message %q)", r.Status, status, r.Message)
	}
	if !strings.Contains(r.Message, msg) {
		t.Errorf("message %q does not contain %q", r.Message, msg)
	}
	if !strings.Contains(r.Hint, hint) {
		t.Errorf("hint %q does not contain %q", r.Hint, hint)
	}
	if status == check.OK && r.Hint != "" {
		t.Errorf("a passing check has a hint: %q", r.Hint)
	}
	if (status == check.Warn || status == check.Fail) && r.Hint == "" {
		t.Errorf("a %v has no hint", status)
	}
}

// Healthy is a probe report of n healthy H200s.
func Healthy(n int) *gpureport.Report {
	r := &gpureport.Report{SchemaVersion: 1, Loaded: true, DriverVersion: "580.159.04", CUDADriverVersion: 13000, NVMLVersion: "13.580.159.04"}
	for i := 0; i < n; i++ {
		r.Devices = append(r.Devices, gpureport.Device{Index: i, Name: "NVIDIA H200", MemoryTotalBytes: 143771 << 20, ComputeCapability: "9.0"})
	}
	return r
}

// Failed is a probe report of an NVML call that failed with code.
func Failed(code int, name string) *gpureport.Report {
	return &gpureport.Report{SchemaVersion: 1, Error: &gpureport.NVMLError{Function: "nvmlInit", Code: code, Name: name}}
}
