package diag

import (
	"context"

	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/gpureport"
)

// fakeEnv is an Env over a temporary root with no GPU and a 1 GiB /dev/shm.
func fakeEnv(t *testing.T, environ ...string) *Env {
	t.Helper()
	return &Env{
		Root:    t.TempDir(),
		Environ: environ,
		UID:     1000, GID: 1000,
		Statfs: func(path string) (FSInfo, error) {
			if _, err := os.Stat(path); err != nil {
				return FSInfo{}, err
			}
			return FSInfo{Total: 1 << 30, Free: 1 << 30}, nil
		},
		Access: func(string, uint32) error { return nil },
		GPU: func(context.Context) gpuhelper.Outcome {
			t.Error("the GPU helper ran but the test did not expect it")
			return gpuhelper.Outcome{Failure: gpuhelper.Missing}
		},
	}
}

// mk creates files and directories under the root: a name ending in "/" is a
// directory, anything else a file with the given content.
func mk(t *testing.T, e *Env, files map[string]string) {
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
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, c Check, e *Env) Result {
	t.Helper()
	r := Run(context.Background(), e, []Check{c})[0]
	if r.ID != c.ID {
		t.Fatalf("result id %q, want %q", r.ID, c.ID)
	}
	return r
}

// expect asserts a status and that the message and hint contain the given
// fragments.
func expect(t *testing.T, r Result, status Status, msg, hint string) {
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
	if status == OK && r.Hint != "" {
		t.Errorf("a passing check has a hint: %q", r.Hint)
	}
	if (status == Warn || status == Fail) && r.Hint == "" {
		t.Errorf("a %v has no hint", status)
	}
}

func TestWorkspace(t *testing.T) {
	denied := func(string, uint32) error { return unix.EACCES }
	tests := []struct {
		name   string
		env    []string
		files  map[string]string
		access func(string, uint32) error
		status Status
		msg    string
		hint   string
	}{
		{"missing", nil, nil, nil, Warn, "/workspace does not exist", `-v "$(pwd)/data:/workspace/data"`},
		{"a file", nil, map[string]string{"/workspace": "x"}, nil, Warn, "is not a directory", "absolute host path"},
		{"empty", nil, map[string]string{"/workspace/": ""}, nil, Warn, "/workspace is empty", `docker run -v "$(pwd)/data:/workspace/data" ...`},
		{"unreadable", nil, map[string]string{"/workspace/data/x": "1"}, denied, Warn, "not readable by uid 1000", `--user "$(id -u):$(id -g)"`},
		{"has data", nil, map[string]string{"/workspace/data/x": "1"}, nil, OK, "has content", ""},
		{"override", []string{"NSS_WORKSPACE=/data"}, map[string]string{"/data/": ""}, nil, Warn, "/data is empty", "/data/data"},
		{"podman phrasing", nil, map[string]string{"/run/.containerenv": "", "/workspace/": ""}, nil, Warn, "empty", `podman run -v "$(pwd)/data:/workspace/data:Z" ...`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := fakeEnv(t, tc.env...)
			mk(t, e, tc.files)
			if tc.access != nil {
				e.Access = tc.access
			}
			expect(t, run(t, Workspace, e), tc.status, tc.msg, tc.hint)
		})
	}
}

func TestWorkspaceReadsOneEntry(t *testing.T) {
	e := fakeEnv(t)
	files := map[string]string{}
	for i := 0; i < 5000; i++ {
		files["/workspace/f"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String()] = ""
	}
	mk(t, e, files)
	// A directory with thousands of entries is judged from its first one;
	// the check must neither fail nor list them all (Readdirnames(1)).
	expect(t, run(t, Workspace, e), OK, "has content", "")
}

func TestHFCache(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		files  map[string]string
		access func(string, uint32) error
		status Status
		msg    string
		hint   string
	}{
		{"unset", nil, nil, nil, Warn, "HF_HOME is not set", `-e HF_HOME=/workspace/.cache/huggingface`},
		{"empty", []string{"HF_HOME="}, nil, nil, Warn, "HF_HOME is not set", "HF_HOME="},
		{"missing", []string{"HF_HOME=/hf"}, nil, nil, Warn, "HF_HOME=/hf does not exist", `:/hf"`},
		{"a file", []string{"HF_HOME=/hf"}, map[string]string{"/hf": "x"}, nil, Warn, "is not a directory", "HF_HOME"},
		{"read-only", []string{"HF_HOME=/hf"}, map[string]string{"/hf/": ""}, func(string, uint32) error { return unix.EROFS }, Warn, "not writable by uid 1000", "--user"},
		{"ok", []string{"HF_HOME=/hf"}, map[string]string{"/hf/": ""}, nil, OK, "writable directory", ""},
		{"kubernetes phrasing", []string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, nil, nil, Warn, "not set", "mount a volume"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := fakeEnv(t, tc.env...)
			mk(t, e, tc.files)
			if tc.access != nil {
				e.Access = tc.access
			}
			expect(t, run(t, HFCache, e), tc.status, tc.msg, tc.hint)
		})
	}
}

const secret = "hf_SECRETtokenVALUE0123456789abcdef"

func TestHFToken(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		files  map[string]string
		status Status
		msg    string
		source string
	}{
		{"none", []string{"HOME=/home/u"}, nil, Warn, "no Hugging Face token", ""},
		{"no HOME", nil, nil, Warn, "no Hugging Face token", ""},
		{"HF_TOKEN", []string{"HF_TOKEN=" + secret}, nil, OK, "token found in HF_TOKEN", "HF_TOKEN"},
		{"HF_TOKEN empty falls through", []string{"HF_TOKEN=", "HUGGING_FACE_HUB_TOKEN=" + secret}, nil, OK, "HUGGING_FACE_HUB_TOKEN", "HUGGING_FACE_HUB_TOKEN"},
		{"HF_TOKEN_PATH", []string{"HF_TOKEN_PATH=/run/secrets/hf"}, map[string]string{"/run/secrets/hf": secret + "\n"}, OK, "/run/secrets/hf", "file"},
		{"HF_TOKEN_PATH wins over HF_HOME", []string{"HF_TOKEN_PATH=/nope", "HF_HOME=/hf"}, map[string]string{"/hf/token": secret}, Warn, "no Hugging Face token", ""},
		{"HF_HOME token", []string{"HF_HOME=/hf"}, map[string]string{"/hf/token": secret}, OK, "/hf/token", "file"},
		{"XDG cache", []string{"XDG_CACHE_HOME=/xdg", "HOME=/home/u"}, map[string]string{"/xdg/huggingface/token": secret}, OK, "/xdg/huggingface/token", "file"},
		{"HOME token", []string{"HOME=/home/u"}, map[string]string{"/home/u/.cache/huggingface/token": secret}, OK, "/home/u/.cache/huggingface/token", "file"},
		{"empty file", []string{"HOME=/home/u"}, map[string]string{"/home/u/.cache/huggingface/token": "\n  \n"}, Warn, "no Hugging Face token", ""},
		{"white space inside", []string{"HF_TOKEN=hf_abc def"}, nil, Warn, "white space inside", "HF_TOKEN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := fakeEnv(t, tc.env...)
			mk(t, e, tc.files)
			r := run(t, HFToken, e)
			hint := ""
			if tc.status != OK {
				hint = "HF_"
			}
			expect(t, r, tc.status, tc.msg, hint)
			if got, _ := r.Data["source"].(string); got != tc.source {
				t.Errorf("source %q, want %q", got, tc.source)
			}
			if strings.Contains(r.Message+r.Hint+fmtData(r.Data), "SECRET") {
				t.Errorf("the token leaked into the result: %+v", r)
			}
		})
	}
}

func fmtData(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(stringify(v), "\n", " ")))
		b.WriteString(";")
	}
	return b.String()
}

func stringify(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		return strings.Join(x, ",")
	}
	return ""
}

func TestShm(t *testing.T) {
	tests := []struct {
		name   string
		size   uint64
		err    error
		env    []string
		files  map[string]string
		status Status
		msg    string
		hint   string
	}{
		{"docker default", 64 << 20, nil, nil, map[string]string{"/.dockerenv": ""}, Warn, "/dev/shm is 64 MiB", "docker run --shm-size=1g ... (or --ipc=host)"},
		{"just below", MinShm - 1, nil, nil, nil, Warn, "Bus error", "--shm-size=1g"},
		{"exactly enough", MinShm, nil, nil, nil, OK, "/dev/shm is 256 MiB", ""},
		{"large", 128 << 30, nil, nil, nil, OK, "128 GiB", ""},
		{"missing", 0, os.ErrNotExist, nil, nil, Warn, "/dev/shm does not exist", "--shm-size=1g"},
		{"statfs error", 0, unix.EIO, nil, nil, Warn, "cannot be inspected", "--shm-size"},
		{"kubernetes", 64 << 20, nil, []string{"KUBERNETES_SERVICE_HOST=x"}, nil, Warn, "64 MiB", "emptyDir volume with medium: Memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := fakeEnv(t, tc.env...)
			mk(t, e, tc.files)
			e.Statfs = func(path string) (FSInfo, error) {
				if path != e.Path("/dev/shm") {
					t.Errorf("statfs of %q", path)
				}
				return FSInfo{Total: tc.size, Free: tc.size}, tc.err
			}
			expect(t, run(t, Shm, e), tc.status, tc.msg, tc.hint)
		})
	}
}

// gpuNodes makes the device node and driver directory that let the GPU check
// start the helper.
var gpuNodes = map[string]string{"/dev/nvidiactl": "", "/proc/driver/nvidia/": ""}

func TestGPUWithoutDevicesNeverStartsTheHelper(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		msg   string
	}{
		{"nothing", nil, "no GPU is visible in this container"},
		{"driver but no nodes", map[string]string{"/proc/driver/nvidia/gpus/": ""}, "the host has an NVIDIA driver but this container was given no GPU device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := fakeEnv(t)
			mk(t, e, tc.files)
			var calls atomic.Int32
			e.GPU = func(context.Context) gpuhelper.Outcome { calls.Add(1); return gpuhelper.Outcome{} }
			expect(t, run(t, GPU, e), Fail, tc.msg, "--gpus all")
			if calls.Load() != 0 {
				t.Errorf("the helper ran %d times", calls.Load())
			}
		})
	}
}

func healthy(n int) *gpureport.Report {
	r := &gpureport.Report{SchemaVersion: 1, Loaded: true, DriverVersion: "580.159.04", CUDADriverVersion: 13000, NVMLVersion: "13.580.159.04"}
	for i := 0; i < n; i++ {
		r.Devices = append(r.Devices, gpureport.Device{Index: i, Name: "NVIDIA H200", MemoryTotalBytes: 143771 << 20, ComputeCapability: "9.0"})
	}
	return r
}

func failed(code int, name string) *gpureport.Report {
	return &gpureport.Report{SchemaVersion: 1, Error: &gpureport.NVMLError{Function: "nvmlInit", Code: code, Name: name}}
}

func TestGPUOutcomes(t *testing.T) {
	countLost := healthy(0)
	countLost.DeviceCountError = &gpureport.NVMLError{Function: "nvmlDeviceGetCount", Code: 15, Name: "ERROR_GPU_IS_LOST"}
	handleLost := healthy(2)
	handleLost.Devices[1].Errors = map[string]string{"handle": "ERROR_GPU_IS_LOST"}
	mixed := healthy(2)
	mixed.Devices[1].Name, mixed.Devices[1].MemoryTotalBytes = "NVIDIA A100-SXM4-80GB", 80<<30

	tests := []struct {
		name    string
		outcome gpuhelper.Outcome
		status  Status
		msg     string
		hint    string
	}{
		{"one GPU", gpuhelper.Outcome{Report: healthy(1)}, OK, "1 GPU: NVIDIA H200 (140.4 GiB), driver 580.159.04, CUDA 13.0", ""},
		{"eight GPUs", gpuhelper.Outcome{Report: healthy(8)}, OK, "8 GPUs: 8x NVIDIA H200 (140.4 GiB), driver", ""},
		{"mixed GPUs", gpuhelper.Outcome{Report: mixed}, OK, "2 GPUs: NVIDIA H200 (140.4 GiB), NVIDIA A100-SXM4-80GB (80 GiB)", ""},
		{"zero devices", gpuhelper.Outcome{Report: healthy(0)}, Fail, "no GPU is visible to this container", "NVIDIA_VISIBLE_DEVICES"},
		{"library not found", gpuhelper.Outcome{Report: failed(12, "ERROR_LIBRARY_NOT_FOUND")}, Fail, "libnvidia-ml.so.1 is not in the container", "NVIDIA Container Toolkit"},
		{"driver not loaded", gpuhelper.Outcome{Report: failed(9, "ERROR_DRIVER_NOT_LOADED")}, Fail, "kernel driver is not loaded", "modprobe nvidia"},
		{"no permission", gpuhelper.Outcome{Report: failed(4, "ERROR_NO_PERMISSION")}, Fail, "no permission", "--gpus all"},
		{"unknown", gpuhelper.Outcome{Report: failed(999, "ERROR_UNKNOWN")}, Fail, "daemon-reload", "restart the container"},
		{"version mismatch", gpuhelper.Outcome{Report: failed(18, "ERROR_LIB_RM_VERSION_MISMATCH")}, Fail, "versions differ", "reboot the host"},
		{"gpu lost at init", gpuhelper.Outcome{Report: failed(15, "ERROR_GPU_IS_LOST")}, Fail, "fallen off the bus", "Xid 79"},
		{"gpu lost at count", gpuhelper.Outcome{Report: countLost}, Fail, "fallen off the bus", "Xid 79"},
		{"gpu lost at handle", gpuhelper.Outcome{Report: handleLost}, Fail, "fallen off the bus", "Xid 79"},
		{"other code", gpuhelper.Outcome{Report: failed(17, "ERROR_OPERATING_SYSTEM")}, Fail, "ERROR_OPERATING_SYSTEM (17)", "nvidia-smi"},
		{"helper missing", gpuhelper.Outcome{Failure: gpuhelper.Missing, Detail: "/x/nss-gpu-probe does not exist"}, Warn, "nss-gpu-probe is missing", "NSS_GPU_PROBE"},
		{"timed out", gpuhelper.Outcome{Failure: gpuhelper.TimedOut}, Warn, "did not answer in time", "NSS_ENTRYPOINT_TIMEOUT"},
		{"crashed", gpuhelper.Outcome{Failure: gpuhelper.Crashed, Detail: "killed by signal SIGSEGV"}, Warn, "crashed", "nvidia-smi"},
		{"garbage", gpuhelper.Outcome{Failure: gpuhelper.Garbage, Detail: "decode"}, Warn, "unreadable report", "rebuild the image"},
		{"exited", gpuhelper.Outcome{Failure: gpuhelper.Exited, Detail: "exit status 127"}, Warn, "exit status 127", "nss-gpu-probe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := fakeEnv(t)
			mk(t, e, gpuNodes)
			var calls atomic.Int32
			e.GPU = func(context.Context) gpuhelper.Outcome { calls.Add(1); return tc.outcome }
			expect(t, run(t, GPU, e), tc.status, tc.msg, tc.hint)
			if calls.Load() != 1 {
				t.Errorf("helper ran %d times, want 1", calls.Load())
			}
		})
	}
}

func TestRunOrderPanicAndTimeout(t *testing.T) {
	e := fakeEnv(t)
	slow := Check{ID: "slow", Title: "slow check", Run: func(ctx context.Context, e *Env) Result {
		time.Sleep(10 * time.Second)
		return Result{Status: OK}
	}}
	boom := Check{ID: "boom", Title: "exploding check", Run: func(ctx context.Context, e *Env) Result { panic("kaboom") }}
	quick := Check{ID: "quick", Title: "quick", Run: func(ctx context.Context, e *Env) Result {
		return Result{Status: OK, Message: "fine"}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := Run(ctx, e, []Check{slow, boom, quick})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v with a 200ms deadline", took)
	}
	if ids := []string{res[0].ID, res[1].ID, res[2].ID}; strings.Join(ids, ",") != "slow,boom,quick" {
		t.Errorf("order %v", ids)
	}
	expect(t, res[0], Warn, "slow check did not finish in time", "NSS_ENTRYPOINT_TIMEOUT")
	expect(t, res[1], Warn, "kaboom", "report")
	expect(t, res[2], OK, "fine", "")
}

func TestGPUOutcomeIsShared(t *testing.T) {
	e := fakeEnv(t)
	mk(t, e, gpuNodes)
	var calls atomic.Int32
	e.GPU = func(context.Context) gpuhelper.Outcome {
		calls.Add(1)
		time.Sleep(20 * time.Millisecond)
		return gpuhelper.Outcome{Report: healthy(1)}
	}
	Run(context.Background(), e, []Check{GPU, GPU, GPU})
	if calls.Load() != 1 {
		t.Errorf("the helper ran %d times for three GPU checks", calls.Load())
	}
}

func TestDetectRuntime(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		files map[string]string
		want  string
		gpu   string
	}{
		{"docker", nil, map[string]string{"/.dockerenv": ""}, "docker", "docker run --gpus all ..."},
		{"podman", nil, map[string]string{"/run/.containerenv": ""}, "podman", "podman run --device nvidia.com/gpu=all ..."},
		{"podman env", []string{"container=podman"}, nil, "podman", "nvidia.com/gpu=all"},
		{"kubernetes", []string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, map[string]string{"/.dockerenv": ""}, "kubernetes", "nvidia.com/gpu: 1"},
		{"kubernetes secrets", nil, map[string]string{"/var/run/secrets/kubernetes.io/": ""}, "kubernetes", "resources.limits"},
		{"slurm", []string{"SLURM_JOB_ID=42"}, nil, "slurm", "srun --gpus=1"},
		{"apptainer", []string{"APPTAINER_CONTAINER=/x.sif"}, nil, "apptainer", "apptainer run --nv ..."},
		{"singularity", []string{"SINGULARITY_CONTAINER=/x.sif"}, nil, "apptainer", "--nv"},
		{"unknown", nil, nil, "unknown", "docker run --gpus all ..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := fakeEnv(t, tc.env...)
			mk(t, e, tc.files)
			rt := DetectRuntime(e)
			if rt.Name != tc.want {
				t.Errorf("runtime %q, want %q (%s)", rt.Name, tc.want, rt.Evidence)
			}
			if !strings.Contains(rt.GPUHint(), tc.gpu) {
				t.Errorf("GPU hint %q lacks %q", rt.GPUHint(), tc.gpu)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 64 << 20: "64 MiB", 1536 << 20: "1.5 GiB", 128 << 30: "128 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestWorkspaceNamedVolume(t *testing.T) {
	info := "22 1 0:50 / / rw - overlay overlay rw\n30 22 8:1 /var/lib/docker/volumes/data/_data /workspace/data rw - ext4 /dev/sda1 rw\n"
	e := fakeEnv(t)
	mk(t, e, map[string]string{"/proc/self/mountinfo": info, "/workspace/data/": ""})
	expect(t, run(t, Workspace, e), Warn, `/workspace/data is an empty Docker named volume "data", not a host folder`, `docker run -v "$(pwd)/data:/workspace/data" ...`)
	// A named volume that holds data was meant.
	mk(t, e, map[string]string{"/workspace/data/train.csv": "a\n"})
	expect(t, run(t, Workspace, e), OK, "has content", "")
	// A bind mount is fine even when empty below a non-empty workspace.
	e = fakeEnv(t)
	mk(t, e, map[string]string{"/proc/self/mountinfo": "30 22 8:1 /home/u/data /workspace/data rw - ext4 /dev/sda1 rw\n", "/workspace/data/": ""})
	expect(t, run(t, Workspace, e), OK, "has content", "")
}

func TestWorkspaceIgnoresTheWriteProbe(t *testing.T) {
	e := fakeEnv(t)
	mk(t, e, map[string]string{"/workspace/" + writeProbePrefix + "123": ""})
	expect(t, run(t, Workspace, e), Warn, "/workspace is empty", "absolute host path")
}

func TestReadSmall(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 4095, 4096, 4097, 100000} {
		p := dir + "/f"
		want := strings.Repeat("x", size)
		os.WriteFile(p, []byte(want), 0o644)
		for _, limit := range []int{1, 4096, 1 << 20} {
			got, err := readSmall(p, limit)
			if err != nil {
				t.Fatal(err)
			}
			if exp := want[:min(size, limit)]; string(got) != exp {
				t.Errorf("size %d limit %d: read %d bytes, want %d", size, limit, len(got), len(exp))
			}
		}
	}
	if _, err := readSmall(dir+"/missing", 10); err == nil {
		t.Error("no error for a missing file")
	}
}

func TestFormatBytesRounding(t *testing.T) {
	for n, want := range map[uint64]string{
		1 << 30: "1 GiB", 1<<30 + 1<<29: "1.5 GiB", 143771 << 20: "140.4 GiB", 137438953472: "128 GiB",
		1<<30 - 1: "1 GiB", 1<<30 + 1<<27: "1.1 GiB", 1<<30 + 3<<27: "1.4 GiB", ^uint64(0): "16 EiB", 1<<60 + 1<<59: "1.5 EiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRunInline(t *testing.T) {
	e := fakeEnv(t)
	var order []string
	mark := func(id string, st Status) Check {
		return Check{ID: id, Title: id, Run: func(ctx context.Context, e *Env) Result {
			order = append(order, id)
			return Result{Status: st, Message: id + " ran"}
		}}
	}
	boom := Check{ID: "boom", Title: "exploding check", Run: func(ctx context.Context, e *Env) Result { panic("kaboom") }}
	res := RunInline(context.Background(), e, []Check{mark("a", OK), boom, mark("b", Warn)}, func([]Result) {
		t.Error("overdue called without a deadline")
	})
	if strings.Join(order, ",") != "a,b" || len(res) != 3 {
		t.Fatalf("order %v, results %v", order, res)
	}
	expect(t, res[0], OK, "a ran", "")
	expect(t, res[1], Warn, "kaboom", "report")
	if res[2].Status != Warn || res[2].ID != "b" {
		t.Errorf("third result %+v", res[2])
	}
}

func TestRunInlineHandsOverWhenACheckHangs(t *testing.T) {
	e := fakeEnv(t)
	quick := Check{ID: "quick", Title: "quick", Run: func(ctx context.Context, e *Env) Result { return Result{Status: OK, Message: "fine"} }}
	hang := Check{ID: "hang", Title: "hanging check", Doing: "stat on a dead mount",
		Run: func(ctx context.Context, e *Env) Result { time.Sleep(time.Hour); return Result{} }}
	later := Check{ID: "later", Title: "later check", Run: func(ctx context.Context, e *Env) Result {
		t.Error("a check after the hung one ran")
		return Result{}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got := make(chan []Result, 1)
	returned := make(chan struct{})
	start := time.Now()
	go func() {
		RunInline(ctx, e, []Check{quick, hang, later}, func(partial []Result) { got <- partial })
		close(returned)
	}()
	select {
	case partial := <-got:
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("handed over after %v with a 200ms deadline", took)
		}
		expect(t, partial[0], OK, "fine", "")
		expect(t, partial[1], Warn, "hanging check did not finish in time (hanging check: stat on a dead mount)", "NSS_ENTRYPOINT_TIMEOUT")
		expect(t, partial[2], Warn, "later check did not finish in time", "NSS_ENTRYPOINT_TIMEOUT")
	case <-time.After(5 * time.Second):
		t.Fatal("overdue was never called")
	}
	select {
	case <-returned:
		t.Error("RunInline returned after handing over")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRunInlinePrefersACheckOwnTimeOut(t *testing.T) {
	e := fakeEnv(t)
	polite := Check{ID: "polite", Title: "polite", Run: func(ctx context.Context, e *Env) Result {
		<-ctx.Done()
		return Result{Status: Warn, Message: "gave up at the deadline", Hint: "x"}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := RunInline(ctx, e, []Check{polite}, func([]Result) { t.Error("overdue called for a check that honours ctx") })
	expect(t, res[0], Warn, "gave up at the deadline", "x")
	time.Sleep(2 * overdueGrace) // the watchdog, if it fired, would have called overdue by now
}

func TestStartGPU(t *testing.T) {
	e := fakeEnv(t)
	var calls atomic.Int32
	e.GPU = func(context.Context) gpuhelper.Outcome { calls.Add(1); return gpuhelper.Outcome{Report: healthy(1)} }
	e.StartGPU(context.Background())
	time.Sleep(50 * time.Millisecond)
	if calls.Load() != 0 {
		t.Fatal("the probe started without a device node")
	}
	mk(t, e, gpuNodes)
	e.StartGPU(context.Background())
	r := run(t, GPU, e)
	expect(t, r, OK, "1 GPU: NVIDIA H200", "")
	if calls.Load() != 1 {
		t.Errorf("the probe ran %d times, want once (started early, shared with the check)", calls.Load())
	}
}
