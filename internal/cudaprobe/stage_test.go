package cudaprobe_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

var bins *testbuild.Set

func TestMain(m *testing.M) { testbuild.Main(m, &bins) }

// stage runs the real nss-gpu-probe with args over the fake libnvidia-ml
// and the fake libcuda (NSS_FAKE_CUDA=cuda), both found by dlopen through
// LD_LIBRARY_PATH ldPath, and returns its CUDA stage.
func stage(t *testing.T, ldPath, cuda string, args ...string) *gpureport.CUDA {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.Probe, args...)
	cmd.Env = []string{"LD_LIBRARY_PATH=" + ldPath, "NSS_FAKE_CUDA=" + cuda, "PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	rep, err := gpureport.Parse(out)
	if err != nil || rep.CUDA == nil {
		t.Fatalf("report %s: %v", out, err)
	}
	return rep.CUDA
}

// TestStageAgainstABrokenLibcuda: whatever libcuda answers, the stage says
// what happened honestly, in bounded memory.
func TestStageAgainstABrokenLibcuda(t *testing.T) {
	tests := []struct {
		name  string
		cuda  string
		args  []string
		check func(t *testing.T, c *gpureport.CUDA)
	}{
		{"a negative device count is garbage", "ndev=-5", []string{"--cuda"}, func(t *testing.T, c *gpureport.CUDA) {
			if c.Error == nil || c.Error.Name != "GARBAGE" || c.Error.Function != "cuDeviceGetCount" || !strings.Contains(c.Error.Message, "-5") || len(c.Devices) != 0 {
				t.Errorf("cuda %+v error %+v", c, c.Error)
			}
		}},
		{"a huge device count is garbage, not a walk to the deadline", "ndev=2147483647", []string{"--diagnose", "--budget=5s"}, func(t *testing.T, c *gpureport.CUDA) {
			if c.Error == nil || c.Error.Name != "GARBAGE" || !strings.Contains(c.Error.Message, "2147483647") || len(c.Devices) != 0 {
				t.Errorf("cuda error %+v, %d devices", c.Error, len(c.Devices))
			}
		}},
		{"the most devices a machine can have still count", "ndev=256", []string{"--cuda"}, func(t *testing.T, c *gpureport.CUDA) {
			if c.Error != nil || c.DeviceCount != 256 || len(c.Devices) != 256 {
				t.Errorf("cuda error %+v, count %d, %d devices", c.Error, c.DeviceCount, len(c.Devices))
			}
		}},
		{"a name with no NUL is read within its buffer", "noterm", []string{"--cuda"}, func(t *testing.T, c *gpureport.CUDA) {
			if c.Error != nil || len(c.Devices) != 1 {
				t.Fatalf("cuda %+v", c)
			}
			d := c.Devices[0]
			if d.Name != strings.Repeat("A", 255) || d.PCIBusID != strings.Repeat("B", 255) {
				t.Errorf("name %d bytes %q..., PCI id %d bytes", len(d.Name), d.Name[:min(len(d.Name), 8)], len(d.PCIBusID))
			}
		}},
		{"a library that talks on stdout does not spoil the answer", "stdout", []string{"--cuda"}, func(t *testing.T, c *gpureport.CUDA) {
			if c.Error != nil || c.DeviceCount != 1 {
				t.Errorf("cuda %+v error %+v", c, c.Error)
			}
		}},
		{"a process libcuda forked keeps the pipe: the answer stands", "fork=1500", []string{"--cuda"}, func(t *testing.T, c *gpureport.CUDA) {
			if c.Error != nil || c.DeviceCount != 1 || len(c.Devices) != 1 {
				t.Errorf("cuda %+v error %+v", c, c.Error)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, stage(t, bins.NVMLDir, tc.cuda, tc.args...))
		})
	}
}

// TestStageNamesTheFileDlopenStoppedAt: a libcuda.so.1 that exists but is
// no library is reported as that file, with dlopen's reason, not as a
// library that was never injected.
func TestStageNamesTheFileDlopenStoppedAt(t *testing.T) {
	for _, tc := range []struct {
		name, content string // content "/" makes a directory
		want, why     string
	}{
		{"a directory", "/", "LIBRARY_UNLOADABLE", "Is a directory"},
		{"a text file", strings.Repeat("not a library\n", 10), "LIBRARY_UNLOADABLE", "invalid ELF header"},
		{"a truncated file", "hello\n", "LIBRARY_UNLOADABLE", "file too short"},
		{"nothing there", "", "LIBRARY_NOT_FOUND", "cannot open shared object file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "libcuda.so.1")
			switch tc.content {
			case "":
			case "/":
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// The broken file comes first; the fake driver's good libcuda after
			// it is never reached, as with the real loader.
			c := stage(t, dir+":"+bins.NVMLDir, "", "--cuda")
			if tc.want == "LIBRARY_NOT_FOUND" {
				// Nothing in dir: the loader goes on to the fake driver's.
				if c.Error != nil {
					t.Errorf("cuda error %+v", c.Error)
				}
				c = stage(t, dir+":"+bins.NVMLOldDir, "", "--cuda")
			}
			if c.Error == nil || c.Error.Name != tc.want || !strings.Contains(c.Error.Message, tc.why) {
				t.Fatalf("cuda error %+v, want %s with %q", c.Error, tc.want, tc.why)
			}
			if tc.want == "LIBRARY_UNLOADABLE" && c.Library != p {
				t.Errorf("library %q, want %q", c.Library, p)
			}
		})
	}
}
