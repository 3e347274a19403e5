package check_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/check/checktest"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// withCUDA is a healthy NVML report of n GPUs whose CUDA stage failed in fn
// with code (code 0: it worked).
func withCUDA(n int, fn string, code int, name string) *gpureport.Report {
	r := checktest.Healthy(n)
	r.CUDA = &gpureport.CUDA{Library: "/usr/lib/x86_64-linux-gnu/libcuda.so.580.159.04", DriverVersion: 13000, DeviceCount: n, InitMillis: 80}
	if code != 0 || name != "" {
		r.CUDA.Error = &gpureport.CUDAError{Function: fn, Code: code, Name: name}
		r.CUDA.DeviceCount = -1
	}
	return r
}

func TestCUDAVerdicts(t *testing.T) {
	mig := withCUDA(1, "cuInit", 3, "CUDA_ERROR_NOT_INITIALIZED")
	mig.Devices[0].MIGMode = "enabled"
	exclusive := withCUDA(2, "cuDevicePrimaryCtxRetain(1)", 46, "CUDA_ERROR_DEVICE_UNAVAILABLE")
	exclusive.Devices[1].Health = &gpureport.Health{ComputeMode: "exclusive-process"}
	garbage := withCUDA(1, "cuDeviceGetCount", -1, "GARBAGE")
	garbage.CUDA.Error.Message = "cuDeviceGetCount succeeded with a count of -5, which no CUDA driver gives (0 to 256)"
	unloadable := withCUDA(1, "dlopen(libcuda.so.1)", -1, "LIBRARY_UNLOADABLE")
	unloadable.CUDA.Library, unloadable.CUDA.Error.Message = "/opt/weird/libcuda.so.1", "/opt/weird/libcuda.so.1: file too short"
	tests := []struct {
		name    string
		rep     *gpureport.Report
		env     []string
		files   map[string]string
		denied  bool
		status  check.Status
		msg     string
		hint    string
		k8sHint string
	}{
		{"works", withCUDA(2, "", 0, ""), nil, nil, false, check.OK, "2 GPUs: 2x NVIDIA H200 (140.4 GiB), driver 580.159.04, CUDA 13.0, cuInit ok", "", ""},
		{"stub", withCUDA(1, "cuInit", 34, "CUDA_ERROR_STUB_LIBRARY"), []string{"LD_LIBRARY_PATH=/usr/local/cuda/lib64/stubs:/opt/x"}, nil, false,
			check.Fail, "stub libcuda", "docker run -e LD_LIBRARY_PATH=/opt/x ...", "set env LD_LIBRARY_PATH=/opt/x on the container"},
		{"insufficient driver", withCUDA(1, "cuInit", 35, "CUDA_ERROR_INSUFFICIENT_DRIVER"), nil, nil, false, check.Fail, "older than this CUDA library needs", "update the host's NVIDIA driver", ""},
		{"exclusive process", exclusive, nil, nil, false, check.Fail, "exclusive-process compute mode (GPU 1)", "docker run -e NVIDIA_VISIBLE_DEVICES=<free GPU> ...", "set env NVIDIA_VISIBLE_DEVICES=<free GPU>"},
		{"no device, CUDA_VISIBLE_DEVICES", withCUDA(1, "cuInit", 100, "CUDA_ERROR_NO_DEVICE"), []string{"CUDA_VISIBLE_DEVICES=3"}, nil, false,
			check.Fail, `CUDA_VISIBLE_DEVICES="3" names no GPU CUDA can use, though NVML sees 1`, "docker run -e CUDA_VISIBLE_DEVICES=0 ...", "set env CUDA_VISIBLE_DEVICES=0"},
		{"invalid device", withCUDA(2, "cuDeviceGet(1)", 101, "CUDA_ERROR_INVALID_DEVICE"), []string{"CUDA_VISIBLE_DEVICES=0,7"}, nil, false,
			check.Fail, "names no GPU CUDA can use", "(0-1)", ""},
		{"no uvm", withCUDA(1, "cuInit", 999, "CUDA_ERROR_UNKNOWN"), nil, map[string]string{"/dev/nvidia-uvm": "-"}, false,
			check.Fail, "/dev/nvidia-uvm is missing", "modprobe nvidia-uvm", "set resources.limits"},
		{"no device, nodes hidden", withCUDA(1, "cuInit", 100, "CUDA_ERROR_NO_DEVICE"), nil, nil, false,
			check.Fail, "NVML sees 1 GPU(s) but CUDA sees none", "docker run --gpus all ...", "set resources.limits"},
		{"unknown, cgroup lost", withCUDA(1, "cuInit", 999, "CUDA_ERROR_UNKNOWN"), nil, nil, true,
			check.Fail, "device cgroup has lost access", "docker run --device nvidia.com/gpu=all ...", "delete the pod"},
		{"fabric manager", withCUDA(8, "cuInit", 802, "CUDA_ERROR_SYSTEM_NOT_READY"), nil, nil, false,
			check.Fail, "fabric manager is not running", "systemctl enable --now nvidia-fabricmanager", "on the node"},
		{"driver mismatch", withCUDA(1, "cuInit", 803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"), nil, nil, false,
			check.Fail, "differ: the host driver was upgraded without a reboot", "reboot the host", ""},
		{"compat on a consumer GPU", withCUDA(1, "cuInit", 804, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"), []string{"LD_LIBRARY_PATH=/usr/local/cuda/compat"}, nil, false,
			check.Fail, "forward-compatibility libraries", "unset LD_LIBRARY_PATH", ""},
		{"MIG without instances", mig, nil, nil, false, check.Fail, "MIG is enabled on GPU 0 but no MIG instance exists", "nvidia-smi mig -cgi", "nvidia.com/mig.config"},
		{"out of memory at context creation", withCUDA(1, "cuDevicePrimaryCtxRetain(0)", 2, "CUDA_ERROR_OUT_OF_MEMORY"), nil, nil, false,
			check.Fail, "could not make a CUDA context", "NVIDIA_VISIBLE_DEVICES=<free GPU>", ""},
		{"hang", withCUDA(1, "cuInit", -1, "TIMEOUT"), nil, nil, false, check.Warn, "did not answer in time", "nvidia-smi -pm 1", ""},
		{"crash", withCUDA(1, "cuInit", -1, "CRASHED"), nil, nil, false, check.Warn, "crashed in cuInit", "reinstall", ""},
		{"no libcuda", withCUDA(1, "dlopen(libcuda.so.1)", -1, "LIBRARY_NOT_FOUND"), nil, nil, false, check.Fail, "libcuda.so.1 is not in the container", "NVIDIA_DRIVER_CAPABILITIES=compute,utility", ""},
		{"garbage is no crash", garbage, nil, nil, false, check.Warn, "gave an answer that makes no sense in cuDeviceGetCount (cuDeviceGetCount succeeded with a count of -5", "keep driver libraries out of the image", ""},
		{"a broken libcuda is named, not called missing", unloadable, []string{"LD_LIBRARY_PATH=/opt/weird:/usr/local/nvidia/lib64"}, nil, false,
			check.Fail, "libcuda.so.1 cannot be loaded: dlopen stopped at /opt/weird/libcuda.so.1 (file too short)",
			"remove /opt/weird/libcuda.so.1 from the image, or take its folder off LD_LIBRARY_PATH: docker run -e LD_LIBRARY_PATH=/usr/local/nvidia/lib64 ...", ""},
		{"not a driver library", withCUDA(1, "cuInit", -1, "FUNCTION_NOT_FOUND"), nil, nil, false, check.Fail, "lacks cuInit", "remove that file", ""},
		{"other code", withCUDA(1, "cuInit", 304, "CUDA_ERROR_OPERATING_SYSTEM"), nil, nil, false, check.Fail, "cuInit failed with CUDA_ERROR_OPERATING_SYSTEM (304)", "--diagnose", ""},
	}
	for _, tc := range tests {
		for _, rt := range []string{"docker", "kubernetes"} {
			t.Run(tc.name+"/"+rt, func(t *testing.T) {
				env := tc.env
				hint := tc.hint
				if rt == "kubernetes" {
					env = append([]string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, env...)
					if hint = tc.k8sHint; hint == "" {
						hint = " "
					}
				}
				e := checktest.FakeEnv(t, env...)
				files := map[string]string{}
				for k, v := range checktest.CUDANodes {
					files[k] = v
				}
				for k := range tc.files {
					delete(files, k) // "-": this node is missing
				}
				checktest.Mk(t, e, files)
				e.OpenDevice = func(string) error {
					if tc.denied {
						return &os.PathError{Op: "open", Err: unix.EPERM}
					}
					return nil
				}
				e.GPU = func(context.Context) gpuhelper.Outcome { return gpuhelper.Outcome{Report: tc.rep} }
				r := checktest.Run(t, check.GPU, e)
				if tc.status == check.OK {
					hint = ""
				}
				checktest.Expect(t, r, tc.status, tc.msg, hint)
				if tc.status != check.OK && r.Data["cuda_code"] != tc.rep.CUDA.Error.Code {
					t.Errorf("data cuda_code %v", r.Data["cuda_code"])
				}
			})
		}
	}
}

func TestStartupCUDAIsOffUntilMeasured(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want bool
	}{
		{nil, false}, {[]string{"NSS_ENTRYPOINT_CUDA=on"}, true}, {[]string{"NSS_ENTRYPOINT_CUDA=1"}, true},
		{[]string{"NSS_ENTRYPOINT_CUDA=off"}, false}, {[]string{"NSS_ENTRYPOINT_CUDA=maybe"}, false},
	} {
		if got := check.StartupCUDA(checktest.FakeEnv(t, tc.env...)); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestDeviceAccess(t *testing.T) {
	perm := &os.PathError{Op: "open", Err: unix.EPERM}
	acces := &os.PathError{Op: "open", Err: unix.EACCES}
	tests := []struct {
		name    string
		nodes   []string
		open    map[string]error // by container path
		gpus    int
		cgroup  string
		denied  string
		missing string
	}{
		{"all open", []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidia1"}, nil, 2, "", "", ""},
		{"cgroup lost", []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidia10", "/dev/nvidia2"},
			map[string]error{"/dev/nvidiactl": perm, "/dev/nvidia0": perm, "/dev/nvidia2": perm, "/dev/nvidia10": perm, "/dev/nvidia-uvm": perm}, 3,
			"/dev/nvidiactl,/dev/nvidia-uvm,/dev/nvidia0,/dev/nvidia2,/dev/nvidia10", "/dev/nvidiactl,/dev/nvidia-uvm,/dev/nvidia0,/dev/nvidia2,/dev/nvidia10", ""},
		{"file permissions", []string{"/dev/nvidiactl", "/dev/nvidia0"}, map[string]error{"/dev/nvidia0": acces}, 1, "", "/dev/nvidia0", "/dev/nvidia-uvm"},
		{"no uvm, not nvidia-caps", []string{"/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia-caps/", "/dev/nvidia-modeset"}, nil, 1, "", "", "/dev/nvidia-uvm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t)
			files := map[string]string{}
			for _, n := range tc.nodes {
				files[n] = ""
			}
			checktest.Mk(t, e, files)
			e.OpenDevice = func(p string) error {
				rel := strings.TrimPrefix(p, e.Root)
				return tc.open[rel]
			}
			a := check.CheckDeviceAccess(e)
			if a.GPUNodes != tc.gpus {
				t.Errorf("%d GPU nodes, want %d", a.GPUNodes, tc.gpus)
			}
			if got := strings.Join(a.CgroupDenied, ","); got != tc.cgroup {
				t.Errorf("cgroup denied %q, want %q", got, tc.cgroup)
			}
			var denied, missing []string
			for _, n := range a.Nodes {
				if n.Denied {
					denied = append(denied, n.Path)
				}
				if !n.Exists {
					missing = append(missing, n.Path)
				}
			}
			if strings.Join(denied, ",") != tc.denied || strings.Join(missing, ",") != tc.missing {
				t.Errorf("denied %v missing %v, want %q %q", denied, missing, tc.denied, tc.missing)
			}
		})
	}
}

func TestNVMLUnknownErrorWithALostCgroup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		denied bool
		env    []string
		msg    string
		hint   string
	}{
		{"cgroup lost, docker", true, nil, "opening /dev/nvidiactl, /dev/nvidia-uvm, /dev/nvidia0 is not permitted although they exist", "docker run --device nvidia.com/gpu=all ..."},
		{"cgroup lost, podman", true, []string{"container=podman"}, "device cgroup has lost access", "podman run --device nvidia.com/gpu=all ..."},
		{"cgroup lost, kubernetes", true, []string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, "device cgroup has lost access", "cdi.enabled=true"},
		{"nodes open", false, nil, `NVML answered "Unknown Error"`, "restart the container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			checktest.Mk(t, e, checktest.CUDANodes)
			e.OpenDevice = func(string) error {
				if tc.denied {
					return &os.PathError{Op: "open", Err: unix.EPERM}
				}
				return nil
			}
			e.GPU = func(context.Context) gpuhelper.Outcome {
				return gpuhelper.Outcome{Report: checktest.Failed(999, "ERROR_UNKNOWN")}
			}
			checktest.Expect(t, checktest.Run(t, check.GPU, e), check.Fail, tc.msg, tc.hint)
		})
	}
}

// TestDeviceCgroupGrantsASubset: a cgroup that grants some of the node's
// GPUs (Slurm's ConstrainDevices: the node's /dev has them all) refuses the
// others with EPERM; that is no loss. A loss refuses the control nodes or
// every GPU.
func TestDeviceCgroupGrantsASubset(t *testing.T) {
	perm := &os.PathError{Op: "open", Err: unix.EPERM}
	nodes := []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia2", "/dev/nvidia3"}
	for _, tc := range []struct {
		name           string
		refused        []string
		granted        int
		lost, notGiven string
	}{
		{"ConstrainDevices: GPU 0 of 4", []string{"/dev/nvidia1", "/dev/nvidia2", "/dev/nvidia3"}, 1, "", "/dev/nvidia1,/dev/nvidia2,/dev/nvidia3"},
		{"ConstrainDevices: GPUs 1 and 3 of 4", []string{"/dev/nvidia0", "/dev/nvidia2"}, 2, "", "/dev/nvidia0,/dev/nvidia2"},
		{"every GPU refused: lost", []string{"/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia2", "/dev/nvidia3"}, 0, "/dev/nvidia0,/dev/nvidia1,/dev/nvidia2,/dev/nvidia3", ""},
		{"the control node refused: lost", []string{"/dev/nvidiactl", "/dev/nvidia1"}, 3, "/dev/nvidiactl,/dev/nvidia1", ""},
		{"uvm refused: lost", []string{"/dev/nvidia-uvm", "/dev/nvidia3"}, 3, "/dev/nvidia-uvm,/dev/nvidia3", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, "SLURM_JOB_ID=42")
			files := map[string]string{}
			for _, n := range nodes {
				files[n] = ""
			}
			checktest.Mk(t, e, files)
			e.OpenDevice = func(p string) error {
				if slices.Contains(tc.refused, strings.TrimPrefix(p, e.Root)) {
					return perm
				}
				return nil
			}
			a := check.CheckDeviceAccess(e)
			if a.GrantedGPUs != tc.granted || strings.Join(a.CgroupDenied, ",") != tc.lost || strings.Join(a.NotGranted, ",") != tc.notGiven {
				t.Errorf("granted %d, lost %v, not granted %v; want %d, %q, %q", a.GrantedGPUs, a.CgroupDenied, a.NotGranted, tc.granted, tc.lost, tc.notGiven)
			}
		})
	}
}

// TestCgroupLostHintPerRuntime: every runtime gets a fix it accepts: srun
// has no --device, Apptainer takes CDI only from 1.5.0 (--nv first), ctr's
// CDI flag differs between releases.
func TestCgroupLostHintPerRuntime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   []string
		files map[string]string
		want  []string
		never []string
	}{
		{"docker", nil, map[string]string{"/.dockerenv": ""}, []string{"restart the container", "docker run --device nvidia.com/gpu=all ..."}, nil},
		{"podman", []string{"container=podman"}, nil, []string{"podman run --device nvidia.com/gpu=all ..."}, nil},
		{"kubernetes", []string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, nil, []string{"delete the pod", "cdi.enabled=true"}, []string{"run "}},
		{"slurm", []string{"SLURM_JOB_ID=42"}, nil, []string{"srun --gpus=1 ... (or #SBATCH --gres=gpu:1)", "admins"}, []string{"--device", "apptainer", "restart the container"}},
		{"pyxis", []string{"SLURM_JOB_ID=42"}, map[string]string{"/etc/rc": "# enroot-provenance: x\n"}, []string{"srun --gpus=1 ..."}, []string{"--device", "apptainer"}},
		{"apptainer", []string{"APPTAINER_CONTAINER=/x.sif"}, map[string]string{"/.singularity.d/": ""},
			[]string{"apptainer run --nv ...", "Apptainer 1.5.0 and later", "apptainer run --device nvidia.com/gpu=all ..."}, nil},
		{"ctr", nil, map[string]string{"/proc/self/mountinfo": ctrMountinfo}, []string{"ctr run --gpus 0 ..."}, []string{"--device"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			checktest.Mk(t, e, tc.files)
			h := check.CgroupLostHint(check.DetectRuntime(e))
			for _, w := range tc.want {
				if !strings.Contains(h, w) {
					t.Errorf("hint %q lacks %q", h, w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(h, n) {
					t.Errorf("hint %q has %q", h, n)
				}
			}
		})
	}
}

// TestNVMLUnknownErrorWithASubsetGranted: GPUs the job was not given are
// not the lost cgroup.
func TestNVMLUnknownErrorWithASubsetGranted(t *testing.T) {
	e := checktest.FakeEnv(t, "SLURM_JOB_ID=42")
	checktest.Mk(t, e, checktest.CUDANodes)
	checktest.Mk(t, e, map[string]string{"/dev/nvidia1": ""})
	e.OpenDevice = func(p string) error {
		if strings.HasSuffix(p, "/dev/nvidia1") {
			return &os.PathError{Op: "open", Err: unix.EPERM}
		}
		return nil
	}
	e.GPU = func(context.Context) gpuhelper.Outcome {
		return gpuhelper.Outcome{Report: checktest.Failed(999, "ERROR_UNKNOWN")}
	}
	r := checktest.Run(t, check.GPU, e)
	checktest.Expect(t, r, check.Fail, `NVML answered "Unknown Error"`, " ")
	if strings.Contains(r.Message, "not permitted") || strings.Contains(r.Message, "/dev/nvidia1") {
		t.Errorf("a GPU the job was not given was taken for a lost cgroup: %s", r.Message)
	}
}

// TestWSL2: WSL2 and Docker Desktop give GPUs through /dev/dxg, with no
// /dev/nvidiactl, /dev/nvidia-uvm or /proc/driver/nvidia; NVML works there
// through /usr/lib/wsl/lib. The probe must run; without /dev/dxg the no-GPU
// fast path stays (FakeEnv fails the test if the probe runs).
func TestWSL2(t *testing.T) {
	noNVML := &gpureport.Report{SchemaVersion: 1, Error: &gpureport.NVMLError{Function: "nvmlInit", Code: gpureport.CodeLibraryNotFound, Name: "ERROR_LIBRARY_NOT_FOUND"}}
	wslCUDA := checktest.Healthy(1)
	wslCUDA.CUDA = &gpureport.CUDA{DeviceCount: -1, Error: &gpureport.CUDAError{Function: "cuInit", Code: 100, Name: "CUDA_ERROR_NO_DEVICE"}}
	for _, tc := range []struct {
		name      string
		files     map[string]string
		rep       *gpureport.Report // nil: the probe must not run
		status    check.Status
		msg, hint string
	}{
		{"dxg, NVML works", map[string]string{"/dev/dxg": ""}, checktest.Healthy(1), check.OK, "1 GPU: NVIDIA H200", ""},
		{"dxg, no WSL libraries", map[string]string{"/dev/dxg": ""}, noNVML, check.Fail, "WSL2 gives this container a GPU (/dev/dxg) but libnvidia-ml.so.1 is not here", "/usr/lib/wsl/lib"},
		{"dxg, CUDA fails", map[string]string{"/dev/dxg": ""}, wslCUDA, check.Fail, "on WSL2", "Windows"},
		{"nothing: the fast path", nil, nil, check.Fail, "no GPU is visible", "docker run --gpus all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, "NSS_ENTRYPOINT_CUDA=on")
			checktest.Mk(t, e, tc.files)
			if tc.rep != nil {
				e.GPU = func(context.Context) gpuhelper.Outcome { return gpuhelper.Outcome{Report: tc.rep} }
			}
			checktest.Expect(t, checktest.Run(t, check.GPU, e), tc.status, tc.msg, tc.hint)
		})
	}
}

// TestBrokenLibcudaNamedTwice: the CUDA stage's dlopen error and the loader
// forensics name the same file, the one dlopen stopped at.
func TestBrokenLibcudaNamedTwice(t *testing.T) {
	rep := withCUDA(1, "dlopen(libcuda.so.1)", -1, "LIBRARY_UNLOADABLE")
	rep.CUDA.Library, rep.CUDA.Error.Message = "/opt/weird/libcuda.so.1", "/opt/weird/libcuda.so.1: cannot read file data: Is a directory"
	e := checktest.FakeEnv(t, "LD_LIBRARY_PATH=/opt/weird:/usr/local/nvidia/lib64", "NSS_ENTRYPOINT_CUDA=on")
	checktest.Mk(t, e, checktest.CUDANodes)
	checktest.Mk(t, e, map[string]string{"/.dockerenv": "", "/opt/weird/libcuda.so.1/": "", "/usr/local/nvidia/lib64/libcuda.so.1": "ELF"})
	e.GPU = func(context.Context) gpuhelper.Outcome { return gpuhelper.Outcome{Report: rep} }
	checktest.Expect(t, checktest.Run(t, check.GPU, e), check.Fail,
		"dlopen stopped at /opt/weird/libcuda.so.1 (cannot read file data: Is a directory), which is a directory (LD_LIBRARY_PATH entry 1 (/opt/weird))",
		"docker run -e LD_LIBRARY_PATH=/usr/local/nvidia/lib64 ...")
}
