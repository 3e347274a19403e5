package checks_test

import (
	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/check/checktest"
	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/checks"

	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// secret is a token-shaped value that must never appear in a result.
const secret = "hf_SECRETtokenVALUE0123456789abcdef"

func withGPU(t *testing.T, e *check.Env, rep *gpureport.Report, extra map[string]string) {
	t.Helper()
	checktest.Mk(t, e, checktest.GPUNodes)
	checktest.Mk(t, e, extra)
	e.GPU = func(context.Context) gpuhelper.Outcome { return gpuhelper.Outcome{Report: rep} }
}

func TestIdentity(t *testing.T) {
	passwd := map[string]string{"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nappuser:x:1000:1000::/home/appuser:/bin/sh\n", "/home/appuser/": ""}
	tests := []struct {
		name   string
		uid    int
		env    []string
		access func(string, uint32) error
		status check.Status
		msg    string
	}{
		{"appuser", 1000, []string{"HOME=/home/appuser"}, nil, check.OK, "uid 1000 (appuser), HOME=/home/appuser is writable"},
		{"unknown uid, HOME=/", 4242, []string{"HOME=/"}, func(p string, m uint32) error { return unix.EACCES }, check.Warn, "uid 4242 cannot write its HOME=/; the uid has no passwd entry"},
		{"no HOME", 1000, nil, nil, check.Warn, "has no HOME set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			e.UID = tc.uid
			checktest.Mk(t, e, passwd)
			if tc.access != nil {
				e.Access = tc.access
			}
			r := checktest.Run(t, checks.Identity, e)
			hint := ""
			if tc.status != check.OK {
				hint = "HF_HOME"
			}
			checktest.Expect(t, r, tc.status, tc.msg, hint)
		})
	}
}

const mountinfo = `22 1 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u
30 22 8:1 /var/lib/docker/volumes/data/_data /workspace/data rw,relatime - ext4 /dev/sda1 rw
31 22 8:1 /home/ann/hf\040cache /hf rw,relatime - ext4 /dev/sda1 rw
32 22 0:60 / /dev/shm rw - tmpfs shm rw,size=65536k
33 22 8:1 /var/lib/docker/volumes/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/_data /anon rw - ext4 /dev/sda1 rw
34 22 8:1 /srv/results /workspace/out rw - ext4 /dev/sda1 rw
malformed line
`

func TestParseMountinfo(t *testing.T) {
	ms := check.ParseMountinfo([]byte(mountinfo))
	if len(ms) != 6 {
		t.Fatalf("%d mounts: %+v", len(ms), ms)
	}
	if ms[2].Root != "/home/ann/hf cache" || ms[2].Point != "/hf" || ms[2].FSType != "ext4" {
		t.Errorf("escaped mount %+v", ms[2])
	}
	tests := []struct{ path, point, kind, vol string }{
		{"/workspace/data/train.csv", "/workspace/data", "named-volume", "data"},
		{"/workspace", "/", "container-layer", ""},
		{"/hf/hub", "/hf", "bind", ""},
		{"/dev/shm", "/dev/shm", "tmpfs", ""},
		{"/anon/x", "/anon", "anonymous-volume", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"/workspace/outside", "/", "container-layer", ""},
		{"/workspace/out/a", "/workspace/out", "bind", ""},
	}
	for _, tc := range tests {
		m, ok := check.MountFor(ms, tc.path)
		kind, vol := check.MountKind(m)
		if !ok || m.Point != tc.point || kind != tc.kind || vol != tc.vol {
			t.Errorf("%s: mount %q kind %q vol %q, want %q %q %q", tc.path, m.Point, kind, vol, tc.point, tc.kind, tc.vol)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(mountinfo))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range check.ParseMountinfo(b) {
			check.MountKind(m)
			check.MountFor([]check.Mount{m}, "/workspace")
		}
	})
}

// manyVolumes is mountinfo with n Docker named volumes under /workspace.
func manyVolumes(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%d 22 8:1 /var/lib/docker/volumes/v%d/_data /workspace/v%d rw - ext4 /dev/sda1 rw\n", 100+i, i, i)
	}
	return b.String()
}

func TestMounts(t *testing.T) {
	tests := []struct {
		name   string
		info   string
		files  map[string]string
		env    []string
		status check.Status
		msg    string
		hint   string
	}{
		{"named volume on the workspace", mountinfo, map[string]string{"/workspace/data/x": "1"}, nil, check.Warn,
			`the Docker named volume "data", not a host folder`, `docker run -v "$(pwd)/data:/workspace/data" ...`},
		{"everything bind-mounted", "22 1 0:50 / / rw - overlay overlay rw\n40 22 8:1 /srv/ws /workspace rw - ext4 /dev/sda1 rw\n41 22 8:1 /srv/hf /hf rw - ext4 /dev/sda1 rw\n",
			map[string]string{"/workspace/x": "1", "/hf/": ""}, []string{"HF_HOME=/hf"}, check.OK, "workspace: bind, HF_HOME: bind, artifacts: bind", ""},
		{"HF_HOME with a tilde, expanded as the hf-cache check does", "22 1 0:50 / / rw - overlay overlay rw\n40 22 8:1 /srv/ws /workspace rw - ext4 /dev/sda1 rw\n41 22 8:1 /srv/hf /home/u/hf rw - ext4 /dev/sda1 rw\n",
			map[string]string{"/workspace/x": "1", "/home/u/hf/": ""}, []string{"HF_HOME=~/hf", "HOME=/home/u"}, check.OK, "workspace: bind, HF_HOME: bind, artifacts: bind", ""},
		// HF_HOME="" is a cache in the working directory itself (here
		// /wd), as huggingface_hub reads it, not an unset HF_HOME.
		{"HF_HOME empty is the working directory", "22 1 0:50 / / rw - overlay overlay rw\n40 22 8:1 /srv/ws /workspace rw - ext4 /dev/sda1 rw\n",
			map[string]string{"/workspace/x": "1", "/wd/": ""}, []string{"HF_HOME="}, check.Warn, "HF_HOME (/wd) is on the container's own filesystem", `-v "$(pwd)/wd:/wd"`},
		{"a workspace through link/.. is where the link leads", "22 1 0:50 / / rw - overlay overlay rw\n40 22 8:1 /srv/data /data rw - ext4 /dev/sda1 rw\n",
			map[string]string{"/data/sub/": "", "/data/x": "1", "/workspace/link": "->../data/sub"}, []string{"NSS_WORKSPACE=/workspace/link/.."}, check.OK, "workspace: bind", ""},
		{"workspace on the container layer", "22 1 0:50 / / rw - overlay overlay rw\n", map[string]string{"/workspace/x": "1"}, nil, check.Warn,
			"lost when the container exits", `-v "$(pwd)/workspace:/workspace"`},
		{"garbage mountinfo", "not a mountinfo line\n\x00\xff\n", map[string]string{"/workspace/x": "1"}, nil, check.Skip,
			"no mount that can be read", ""},
		{"thousands of named volumes", "22 1 0:50 / / rw - overlay overlay rw\n" + manyVolumes(5000), map[string]string{"/workspace/x": "1"}, nil, check.Warn,
			"5000 mounts below the workspace (5000 of them named volumes); the first 20 are listed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			e.Dir = "/wd"
			checktest.Mk(t, e, map[string]string{"/proc/self/mountinfo": tc.info})
			checktest.Mk(t, e, tc.files)
			r := checktest.Run(t, checks.Mounts, e)
			checktest.Expect(t, r, tc.status, tc.msg, tc.hint)
			if r.Message == "" {
				t.Error("empty message")
			}
			if below, _ := r.Data["below_workspace"].([]map[string]any); len(below) > 20 || strings.Count(r.Message, "named volume \"") > 20 {
				t.Errorf("%d mounts listed, %d named", len(below), strings.Count(r.Message, "named volume \""))
			}
		})
	}
	t.Run("a real write probe", func(t *testing.T) {
		e := checktest.FakeEnv(t)
		checktest.Mk(t, e, map[string]string{"/proc/self/mountinfo": "22 1 0:50 / / rw - overlay overlay rw\n40 22 8:1 /srv/ws /workspace rw - ext4 /dev/sda1 rw\n", "/workspace/x": "1"})
		os.Chmod(e.Path("/workspace"), 0o555)
		defer os.Chmod(e.Path("/workspace"), 0o755)
		r := checktest.Run(t, checks.Mounts, e)
		if os.Geteuid() == 0 {
			// root writes anyway; the probe must still have cleaned up.
			entries, _ := os.ReadDir(e.Path("/workspace"))
			if len(entries) != 1 {
				t.Errorf("the write probe left files: %v", entries)
			}
			return
		}
		checktest.Expect(t, r, check.Warn, "not writable", "--user")
	})
}

// cgroup fixtures: /proc/self/cgroup and the cgroup lines of mountinfo.
const (
	v2Mount  = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
	v1Docker = "35 30 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n" +
		"36 30 0:31 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
	v1Host = "35 30 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n" +
		"36 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
	slurmV2 = "/system.slice/slurmstepd.scope/job_42/step_0/user/task_0"
)

func TestResources(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		status check.Status
		msg    string
	}{
		{"v2 with a cgroup namespace, limited", map[string]string{
			"/proc/self/cgroup": "0::/\n", "/proc/self/mountinfo": v2Mount,
			"/sys/fs/cgroup/memory.max": "4294967296\n", "/sys/fs/cgroup/cpu.max": "200000 100000\n"}, check.Warn, "memory limit 4 GiB; CPU quota 2.0"},
		{"v2 unlimited", map[string]string{
			"/proc/self/cgroup": "0::/\n", "/proc/self/mountinfo": v2Mount,
			"/sys/fs/cgroup/memory.max": "max\n", "/sys/fs/cgroup/cpu.max": "max 100000\n"}, check.OK, "no memory limit; no CPU quota"},
		{"v2 without a namespace (Slurm): the job's limit above the step", map[string]string{
			"/proc/self/cgroup": "0::" + slurmV2 + "\n", "/proc/self/mountinfo": v2Mount,
			// The host's root cgroup: what reading the mount root would see.
			"/sys/fs/cgroup/cpu.stat":                                            "",
			"/sys/fs/cgroup" + slurmV2 + "/memory.max":                           "max\n",
			"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42/memory.max":     "34359738368\n",
			"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42/cpu.max":        "800000 100000\n",
			"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42/step_0/cpu.max": "400000 100000\n",
		}, check.OK, "memory limit 32 GiB; CPU quota 4.0"},
		{"v1 in Docker without a namespace: the mount is the cgroup", map[string]string{
			"/proc/self/cgroup": "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/system.slice/docker.service\n", "/proc/self/mountinfo": v1Docker,
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "68719476736\n", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "400000", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000"}, check.OK, "memory limit 64 GiB; CPU quota 4.0"},
		{"v1 on the host (Slurm): the job's limit", map[string]string{
			"/proc/self/cgroup": "12:memory:/slurm/uid_1000/job_5/step_0\n4:cpu,cpuacct:/slurm/uid_1000/job_5/step_0\n", "/proc/self/mountinfo": v1Host,
			"/sys/fs/cgroup/memory/memory.limit_in_bytes":                             "9223372036854771712\n",
			"/sys/fs/cgroup/memory/slurm/uid_1000/job_5/memory.limit_in_bytes":        "2147483648\n",
			"/sys/fs/cgroup/memory/slurm/uid_1000/job_5/step_0/memory.limit_in_bytes": "9223372036854771712\n",
		}, check.Warn, "memory limit 2 GiB; no CPU quota"},
		{"v1 unlimited", map[string]string{
			"/proc/self/cgroup": "12:memory:/\n4:cpu,cpuacct:/\n", "/proc/self/mountinfo": v1Host,
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000"}, check.OK, "no memory limit; no CPU quota"},
		{"no cgroup information", map[string]string{}, check.OK, "no memory limit; no CPU quota"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t)
			checktest.Mk(t, e, tc.files)
			checktest.Mk(t, e, map[string]string{"/dev/shm/": ""})
			e.Host = func() (check.HostInfo, error) { return check.HostInfo{MemoryTotal: 256 << 30, CPUs: 32}, nil }
			r := checktest.Run(t, checks.Resources, e)
			hint := ""
			if tc.status == check.Warn {
				hint = "--memory="
			}
			checktest.Expect(t, r, tc.status, tc.msg, hint)
			if !strings.Contains(r.Message, "host 256 GiB, 32 CPUs") {
				t.Errorf("message %q lacks the host facts", r.Message)
			}
		})
	}
}

func TestHFOfflineAndGated(t *testing.T) {
	e := checktest.FakeEnv(t, "HF_HUB_OFFLINE=1", "HF_HOME=/hf")
	checktest.Mk(t, e, map[string]string{"/hf/hub/": ""})
	checktest.Expect(t, checktest.Run(t, checks.HFOffline, e), check.Fail, "HF_HUB_OFFLINE set, but the hub cache /hf/hub holds no models", "unset HF_HUB_OFFLINE")
	checktest.Mk(t, e, map[string]string{"/hf/hub/models--org--m/": ""})
	checktest.Expect(t, checktest.Run(t, checks.HFOffline, e), check.OK, "holds 1 models", "")
	e = checktest.FakeEnv(t, "TRANSFORMERS_OFFLINE=yes", "HOME=/home/u")
	checktest.Expect(t, checktest.Run(t, checks.HFOffline, e), check.Fail, "TRANSFORMERS_OFFLINE set", "TRANSFORMERS_OFFLINE")
	checktest.Expect(t, checktest.Run(t, checks.HFOffline, checktest.FakeEnv(t, "HF_HUB_OFFLINE=0")), check.OK, "online", "")

	cfg := "training:\n  lr: 1e-4\nmodel: \"meta-llama/Llama-3.2-1B-Instruct\"  # gated\n"
	e = checktest.FakeEnv(t, "NSS_CONFIG=/cfg.yaml")
	checktest.Mk(t, e, map[string]string{"/cfg.yaml": cfg})
	checktest.Expect(t, checktest.Run(t, checks.HFGated, e), check.Warn, "gated model meta-llama/Llama-3.2-1B-Instruct but no Hugging Face token", "HF_TOKEN")
	e = checktest.FakeEnv(t, "NSS_CONFIG=/cfg.yaml", "HF_TOKEN="+secret)
	checktest.Mk(t, e, map[string]string{"/cfg.yaml": cfg})
	checktest.Expect(t, checktest.Run(t, checks.HFGated, e), check.OK, "with a token available", "")
	e = checktest.FakeEnv(t, "NSS_CONFIG=/cfg.yaml")
	checktest.Mk(t, e, map[string]string{"/cfg.yaml": "model: HuggingFaceTB/SmolLM2-135M\n"})
	checktest.Expect(t, checktest.Run(t, checks.HFGated, e), check.OK, "no gated model", "")
}

// TestHFOfflineHubCache: the hub cache is derived as huggingface_hub
// derives it: a variable set but empty is taken as it is (not skipped as
// if unset), a relative cache is read from the working directory (here
// /wd), and HF_HUB_CACHE is expanded (~, $VAR).
func TestHFOfflineHubCache(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		files  map[string]string
		status check.Status
		msg    string
	}{
		{"HF_HUB_CACHE empty is the working directory", []string{"HF_HUB_CACHE=", "HF_HOME=/hf"}, map[string]string{"/hf/hub/models--a--b/": "", "/wd/": ""},
			check.Fail, `the hub cache "" (the working directory /wd) holds no models`},
		{"HUGGINGFACE_HUB_CACHE empty is the working directory", []string{"HUGGINGFACE_HUB_CACHE=", "HF_HOME=/hf"}, map[string]string{"/hf/hub/models--a--b/": "", "/wd/": ""},
			check.Fail, `the hub cache "" (the working directory /wd) holds no models`},
		{"HF_HOME empty: hub in the working directory", []string{"HF_HOME=", "HOME=/home/u"}, map[string]string{"/wd/hub/models--a--b/": ""},
			check.OK, "the hub cache hub (relative: /wd/hub) holds 1 models"},
		{"XDG_CACHE_HOME empty: huggingface/hub in the working directory", []string{"XDG_CACHE_HOME=", "HOME=/home/u"}, map[string]string{"/wd/huggingface/hub/models--a--b/": ""},
			check.OK, "the hub cache huggingface/hub (relative: /wd/huggingface/hub) holds 1 models"},
		{"HF_HUB_CACHE with a tilde", []string{"HF_HUB_CACHE=~/c", "HOME=/home/u"}, map[string]string{"/home/u/c/models--a--b/": ""},
			check.OK, "the hub cache /home/u/c holds 1 models"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, append([]string{"HF_HUB_OFFLINE=1"}, tc.env...)...)
			e.Dir = "/wd"
			checktest.Mk(t, e, tc.files)
			hint := ""
			if tc.status != check.OK {
				hint = "unset HF_HUB_OFFLINE"
			}
			checktest.Expect(t, checktest.Run(t, checks.HFOffline, e), tc.status, tc.msg, hint)
		})
	}
}

// aliasBomb is a 262 KB config whose 35,500 aliases of one 120 KB scalar
// expand to 4 GB.
func aliasBomb() string {
	return "a: &a " + strings.Repeat("x", 120000) + "\nb: [" + strings.Repeat("*a, ", 35499) + "*a]\n"
}

func TestConfigModels(t *testing.T) {
	tests := []struct {
		name, config string
		want         []string
		err          bool
	}{
		{"yaml", "training:\n  lr: 1e-4\nmodel: \"meta-llama/Llama-3.2-1B-Instruct\"  # gated\n", []string{"meta-llama/Llama-3.2-1B-Instruct"}, false},
		{"json on one line", `{"model_name_or_path": "google/gemma-2-2b", "x": "a/b"}`, []string{"google/gemma-2-2b"}, false},
		{"nested and in lists", "stages:\n  - base_model: mistralai/Mistral-7B-v0.1\n  - model: {name: x}\n", []string{"mistralai/Mistral-7B-v0.1"}, false},
		{"a path is not a hub id", "model: /models/llama\nmodel_name: org/name/extra\n", nil, false},
		{"a key in a value is not a key", "note: \"model: google/gemma-2-2b\"\n", nil, false},
		{"not yaml", "model: [unclosed\n", nil, true},
		{"empty", "", nil, false},
		{"aliases used within reason", "base: &b {model: meta-llama/Llama-3.2-1B}\nstages: [*b, *b]\n", []string{"meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B"}, false},
		{"an alias bomb of one long scalar", aliasBomb(), nil, true},
		{"billion laughs", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checks.ConfigModels([]byte(tc.config))
			if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
				t.Errorf("ConfigModels = %q, %v; want %q (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestGPUDetails(t *testing.T) {
	old := checktest.Healthy(1)
	old.Devices[0].ComputeCapability, old.Devices[0].Name = "7.5", "Tesla T4"
	cuda12 := checktest.Healthy(1)
	cuda12.CUDADriverVersion, cuda12.DriverVersion = 12040, "550.54.15"
	busy := checktest.Healthy(2)
	busy.Devices[1].ComputeProcesses, busy.Devices[1].MemoryUsedBytes = 2, 20<<30
	tests := []struct {
		name    string
		check   check.Check
		rep     *gpureport.Report
		env     []string
		variant string
		uvm     bool
		status  check.Status
		msg     string
		hint    string // a fragment of the fix; none for a pass
	}{
		{"cu130 on 580", checks.GPUDriver, checktest.Healthy(1), nil, "cu130", true, check.OK, "driver 580.159.04 (CUDA 13.0) runs cu130", ""},
		{"cu130 on 550", checks.GPUDriver, cuda12, nil, "cu130", true, check.Fail, "this cu130 image needs CUDA 13.0 (driver >= 580)", "update the host's NVIDIA driver to >= 580"},
		{"cu129 on 550", checks.GPUDriver, cuda12, nil, "cu129", true, check.OK, "runs cu129", ""},
		{"unknown variant", checks.GPUDriver, checktest.Healthy(1), nil, "", true, check.Skip, "unknown", ""},
		{"bf16 capable", checks.GPUCompute, checktest.Healthy(1), nil, "", true, check.OK, "compute capability 9.0 (bf16 available)", ""},
		{"T4", checks.GPUCompute, old, nil, "", true, check.Fail, "GPU 0 (Tesla T4, 7.5): compute capability below 8.0", "run on an Ampere or newer GPU"},
		{"two GPUs noted", checks.GPUCompute, checktest.Healthy(2), nil, "", true, check.OK, "note: 2 GPUs are visible", ""},
		{"busy", checks.GPUMemory, busy, nil, "", true, check.Warn, "GPU 1: 2 processes, 20 GiB used", "stop the other jobs"},
		{"idle", checks.GPUMemory, checktest.Healthy(1), nil, "", true, check.OK, "no other process", ""},
		{"cvd unset", checks.CUDAVisible, checktest.Healthy(1), nil, "", true, check.OK, "not set", ""},
		{"cvd ok", checks.CUDAVisible, checktest.Healthy(2), []string{"CUDA_VISIBLE_DEVICES=1,0"}, "", true, check.OK, "names visible GPUs", ""},
		{"cvd out of range", checks.CUDAVisible, checktest.Healthy(1), []string{"CUDA_VISIBLE_DEVICES=1"}, "", true, check.Fail, "names 1, but this container sees 1 GPU(s)", "use indices as the container numbers its GPUs"},
		{"cvd empty", checks.CUDAVisible, checktest.Healthy(1), []string{"CUDA_VISIBLE_DEVICES="}, "", true, check.Fail, "hides every GPU", "unset CUDA_VISIBLE_DEVICES, or list the GPUs"},
		{"cvd uuid", checks.CUDAVisible, func() *gpureport.Report { r := checktest.Healthy(1); r.Devices[0].UUID = "GPU-abc"; return r }(), []string{"CUDA_VISIBLE_DEVICES=GPU-abc"}, "", true, check.OK, "names visible GPUs", ""},
		{"uvm present", checks.GPUUVM, checktest.Healthy(1), nil, "", true, check.OK, "present", ""},
		{"uvm missing", checks.GPUUVM, checktest.Healthy(1), nil, "", false, check.Fail, "/dev/nvidia-uvm is missing", "sudo modprobe nvidia-uvm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			e.CUDAVariant = tc.variant
			extra := map[string]string{}
			if tc.uvm {
				extra["/dev/nvidia-uvm"] = ""
			}
			withGPU(t, e, tc.rep, extra)
			checktest.Expect(t, checktest.Run(t, tc.check, e), tc.status, tc.msg, tc.hint)
		})
	}
	// Without a GPU every detail check skips.
	for _, c := range []check.Check{checks.GPUDriver, checks.GPUCompute, checks.GPUMemory, checks.GPUUVM} {
		if r := checktest.Run(t, c, checktest.FakeEnv(t)); r.Status != check.Skip {
			t.Errorf("%s without a GPU: %v %q", c.ID, r.Status, r.Message)
		}
	}
}

func TestConfig(t *testing.T) {
	e := checktest.FakeEnv(t, "NSS_CONFIG=/missing.yaml", "NSS_LOG_LEVEL=verbose", "WANDB_MODE=offline")
	checktest.Mk(t, e, map[string]string{"/workspace/.env": "# comment\nexport HF_TOKEN=" + secret + "\nWANDB_API_KEY=abc\n\nBROKEN LINE\n"})
	r := checktest.Run(t, checks.Config, e)
	checktest.Expect(t, r, check.Warn, "NSS_CONFIG=/missing.yaml cannot be read", "NSS_LOG_LEVEL to one of DEBUG")
	if !strings.Contains(r.Message, `NSS_LOG_LEVEL="verbose" is not one of`) {
		t.Errorf("message %q", r.Message)
	}
	if keys := r.Data["dotenv_keys"]; fmt.Sprint(keys) != "[HF_TOKEN WANDB_API_KEY]" {
		t.Errorf("dotenv keys %v", keys)
	}
	if strings.Contains(fmt.Sprint(r), "SECRET") || strings.Contains(fmt.Sprint(r), "abc") {
		t.Errorf(".env values leaked: %+v", r)
	}
	e = checktest.FakeEnv(t, "NSS_CONFIG=/c.yaml", "NSS_LOG_LEVEL=info", "VLLM_ATTENTION_BACKEND=FLASHINFER")
	checktest.Mk(t, e, map[string]string{"/c.yaml": "x: 1\n"})
	checktest.Expect(t, checktest.Run(t, checks.Config, e), check.OK, "NSS_CONFIG readable", "")
}

func TestEnvFileKeys(t *testing.T) {
	key := "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4UeQ2hZpR=\nAB_CD=\n-----END RSA PRIVATE KEY-----"
	tests := []struct {
		name, file string
		want       string
	}{
		{"plain", "A=1\nB_2=two\n", "[A B_2]"},
		{"export, comments, blanks", "# C=3\nexport D=4\n\n  E=5\nBROKEN LINE\n", "[D]"},
		{"not a name", "1X=1\nX-Y=2\n=3\nX Y=4\nOK=5\n", "[OK]"},
		{"a multi-line private key in double quotes", "PRIVATE_KEY=\"" + key + "\"\nAFTER=1\n", "[AFTER PRIVATE_KEY]"},
		{"in single quotes", "K='" + key + "'\nAFTER=1\n", "[AFTER K]"},
		{"an escaped quote does not close", "K=\"a\\\"\nLINE=1\n\"\nAFTER=1\n", "[AFTER K]"},
		{"closed on its own line", "K=\"one line\"\nNEXT=1\n", "[K NEXT]"},
		{"never closed", "K=\"open\nX=1\n", "[K]"},
		{"CRLF", "A=1\r\nB=2\r\n", "[A B]"},
		{"twice", "A=1\nA=2\n", "[A]"},
		{"an unquoted private key", "PRIVATE_KEY=-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA=\nWx7Kq2Zp9Lr=\nAB_CD=\n-----END OPENSSH PRIVATE KEY-----\nAFTER=1\n", "[AFTER PRIVATE_KEY]"},
		{"a base64 line ending in =", "K=x\nWx7Kq2Zp9Lr=\nEMPTY=\nlower=\n", "[EMPTY K lower]"},
		{"a continued line", "K=a\\\nNOT_A_KEY=b\nAFTER=1\n", "[AFTER K]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprint(checks.EnvFileKeys([]byte(tc.file))); got != tc.want {
				t.Errorf("EnvFileKeys(%q) = %s, want %s", tc.file, got, tc.want)
			}
		})
	}
}

func FuzzEnvFileKeys(f *testing.F) {
	f.Add("A=1\nK=\"x\ny\"\nB=2\n")
	f.Fuzz(func(t *testing.T, file string) {
		for _, k := range checks.EnvFileKeys([]byte(file)) {
			if k == "" || strings.ContainsAny(k, "= \t\n\"'") {
				t.Errorf("key %q from %q", k, file)
			}
		}
	})
}

// TestFIFOsDoNotBlock puts a FIFO with no writer where each report-only
// check reads a file or a directory: every check must finish on its own,
// not by its deadline.
func TestFIFOsDoNotBlock(t *testing.T) {
	tests := []struct {
		name string
		c    check.Check
		env  []string
		fifo string
	}{
		{".env", checks.Config, nil, "/workspace/.env"},
		{"hub cache", checks.HFOffline, []string{"HF_HUB_OFFLINE=1", "HF_HUB_CACHE=/cache"}, "/cache"},
		{"venv lib", checks.Versions, nil, "/opt/venv/lib"},
		{"passwd", checks.Identity, []string{"HOME=/"}, "/etc/passwd"},
		{"NSS_CONFIG", checks.HFGated, []string{"NSS_CONFIG=/cfg.yaml"}, "/cfg.yaml"},
		{"cgroup", checks.Resources, nil, "/proc/self/cgroup"},
		{"mountinfo", checks.Mounts, nil, "/proc/self/mountinfo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			checktest.Mk(t, e, map[string]string{path.Dir(tc.fifo) + "/": ""})
			if err := unix.Mkfifo(e.Path(tc.fifo), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			r := checktest.Run(t, tc.c, e)
			if strings.Contains(r.Message, "timed out") || time.Since(start) > time.Second {
				t.Errorf("blocked on the FIFO: %v %q after %v", r.Status, r.Message, time.Since(start))
			}
		})
	}
}

func TestVersions(t *testing.T) {
	e := checktest.FakeEnv(t)
	sp := "/opt/venv/lib/python3.13/site-packages/"
	checktest.Mk(t, e, map[string]string{
		sp + "torch-2.8.0+cu129.dist-info/METADATA":           "Metadata-Version: 2.1\nName: torch\nVersion: 2.8.0+cu129\n\nbody Version: 9\n",
		sp + "vllm-0.11.0.dist-info/METADATA":                 "Name: vllm\nVersion: 0.11.0\n",
		sp + "huggingface_hub-0.35.3.dist-info/METADATA":      "Name: huggingface-hub\nVersion: 0.35.3\n",
		sp + "nemo_safe_synthesizer-0.1.0.dist-info/METADATA": "Name: nemo-safe-synthesizer\nVersion: 0.1.0\n",
	})
	r := checktest.Run(t, checks.Versions, e)
	checktest.Expect(t, r, check.OK, "safe-synthesizer 0.1.0, torch 2.8.0+cu129, vllm 0.11.0, huggingface-hub 0.35.3, not installed: transformers", "")
	checktest.Expect(t, checktest.Run(t, checks.Versions, checktest.FakeEnv(t)), check.Warn, "safe-synthesizer is not installed in /opt/venv", "NSS_VENV")
}

func TestSlowNoticeAndCheckTimeout(t *testing.T) {
	e := checktest.FakeEnv(t)
	hang := check.Check{ID: "hang", Title: "hanging check", Timeout: 300 * time.Millisecond, Doing: "waiting forever",
		Run: func(ctx context.Context, e *check.Env) check.Result {
			time.Sleep(5 * time.Second)
			return check.Result{}
		}}
	quick := check.Check{ID: "quick", Title: "quick", Run: func(ctx context.Context, e *check.Env) check.Result { return check.Result{Status: check.OK} }}
	var notices []string
	start := time.Now()
	res := check.RunNotify(context.Background(), e, []check.Check{hang, quick}, 100*time.Millisecond, func(doing []string) {
		notices = append(notices, doing...)
	})
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	checktest.Expect(t, res[0], check.Warn, "hanging check timed out after 300ms (hanging check: waiting forever)", "")
	if res[1].Status != check.OK {
		t.Errorf("quick: %+v", res[1])
	}
	if len(notices) != 1 || notices[0] != "hanging check: waiting forever" {
		t.Errorf("notices %q", notices)
	}
}
