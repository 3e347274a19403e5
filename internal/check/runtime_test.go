package check_test

import (
	"strings"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/check/checktest"
)

// Fixture files, each built from what the runtime is documented or was
// seen to leave (docs/running.md lists them per runtime).
const (
	hostRootMountinfo = "21 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	ctrMountinfo      = "95 71 0:39 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/3/fs,upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs,workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/work\n" +
		"96 95 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
	dockerMountinfo = "600 500 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work\n"
	// enroot under pyxis: the root is a directory of ENROOT_DATA_PATH named
	// pyxis_<job>.<step>; /.lock is bind-mounted read-only.
	pyxisRootMountinfo = "300 200 254:1 /enroot-data/user-0/pyxis_42.0 / rw,relatime - ext4 /dev/vda rw\n"
	pyxisLockMountinfo = "300 200 254:1 / / rw,relatime - ext4 /dev/vda rw\n" +
		"301 300 254:1 /tmp/enroot/lock /.lock ro,nosuid,nodev,relatime - ext4 /dev/vda rw\n"
	fullUIDMap     = "         0          0 4294967295\n"
	rootlessUIDMap = "         0       1001          1\n         1     100000      65536\n"
	enrootUIDMap   = "         0          0          1\n"
	remapUIDMap    = "         0     100000      65536\n"
	// Charliecloud's ch-run (and unshare -r) map one id, as enroot does.
	chUIDMap = "      1000       1000          1\n"
	// /proc/<pid>/stat: pid (comm) state ppid ...
	tiniChild    = "7 (nss-entrypoint) R 1 7 7 0 -1 4194560 0 0 0 0\n"
	tini         = "1 (tini) S 0 1 1 0 -1 4194560 0 0 0 0\n"
	stepChild    = "4243 (nss-entrypoint) R 4242 4243 4243 0 -1 4194560 0 0 0 0\n"
	slurmstepd   = "4242 (slurmstepd) S 1 4242 4242 0 -1 4194560 0 0 0 0\n"
	k8sHosts     = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
	nerdctlHosts = "# <nerdctl>\n127.0.0.1\tlocalhost localhost.localdomain\n# </nerdctl>\n"
)

func TestDetectRuntime(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		files    map[string]string
		want     string
		evidence string
		rootless bool
	}{
		{"docker", nil, map[string]string{"/.dockerenv": ""}, "docker", "/.dockerenv exists", false},
		{"srun docker run", []string{"SLURM_JOB_ID=7"}, map[string]string{"/.dockerenv": "", "/proc/self/stat": tiniChild, "/proc/1/stat": tini}, "docker", "inside Slurm job 7", false},
		{"srun on a node that is a Docker container", []string{"SLURM_JOB_ID=7"}, map[string]string{"/.dockerenv": "", "/proc/self/stat": stepChild, "/proc/4242/stat": slurmstepd},
			"slurm", "slurmstepd started this process: a Slurm job with no container (/.dockerenv exists, but belongs to the node)", false},
		{"srun on a node that is a Podman container", []string{"SLURM_JOB_ID=7", "container=podman"}, map[string]string{"/proc/self/stat": stepChild, "/proc/4242/stat": slurmstepd},
			"slurm", "(container=podman is set belongs to the node)", false},
		{"pyxis on a node that is a Docker container", []string{"SLURM_JOB_ID=7"}, map[string]string{"/.dockerenv": "", "/proc/self/stat": stepChild, "/proc/4242/stat": slurmstepd, "/etc/rc": "# enroot-provenance: x\n"},
			"pyxis", "enroot-provenance", false},

		{"podman rootful", []string{"container=podman"}, map[string]string{"/proc/self/uid_map": fullUIDMap}, "podman", "rootful: uid 0 is the host's root", false},
		{"podman rootless", nil, map[string]string{"/run/.containerenv": "", "/proc/self/uid_map": rootlessUIDMap}, "podman", "rootless: uid 0 is host uid 1001", true},
		{"podman --privileged says so", nil, map[string]string{"/run/.containerenv": "engine=\"podman-4.3.1\"\nrootless=1\n", "/proc/self/uid_map": fullUIDMap}, "podman", "rootless=1", true},
		{"podman without a uid map", []string{"container=podman"}, nil, "podman", "rootful: no /proc/self/uid_map", false},

		{"nerdctl", nil, map[string]string{"/etc/hosts": nerdctlHosts, "/proc/self/mountinfo": ctrMountinfo}, "nerdctl", "# <nerdctl>", false},
		{"ctr", nil, map[string]string{"/proc/self/mountinfo": ctrMountinfo}, "containerd", "io.containerd.snapshotter.v1.overlayfs", false},
		{"docker's overlay is not containerd", nil, map[string]string{"/proc/self/mountinfo": dockerMountinfo}, "unknown", "no runtime marker", false},

		{"kubernetes host variable", []string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, map[string]string{"/.dockerenv": ""}, "kubernetes", "KUBERNETES_SERVICE_HOST is set", false},
		{"kubernetes port variable", []string{"KUBERNETES_SERVICE_PORT=443"}, nil, "kubernetes", "KUBERNETES_SERVICE_PORT is set", false},
		{"kubernetes service account", nil, map[string]string{"/var/run/secrets/kubernetes.io/serviceaccount/token": "x"}, "kubernetes", "serviceaccount exists", false},
		{"kubernetes hosts file", nil, map[string]string{"/etc/hosts": k8sHosts, "/proc/self/mountinfo": ctrMountinfo}, "kubernetes", "# Kubernetes-managed hosts file.", false},
		{"kubernetes termination log", nil, map[string]string{"/dev/termination-log": "", "/proc/self/mountinfo": ctrMountinfo}, "kubernetes", "/dev/termination-log exists", false},
		{"a hosts file that merely mentions kubernetes", nil, map[string]string{"/etc/hosts": "127.0.0.1 localhost\n# Kubernetes-managed hosts file.\n"}, "unknown", "no runtime marker", false},

		{"slurm, no container", []string{"SLURM_JOB_ID=42"}, map[string]string{"/proc/self/uid_map": fullUIDMap, "/proc/self/mountinfo": hostRootMountinfo}, "slurm", "no container marker", false},
		{"pyxis: root under pyxis_<job>.<step>", []string{"SLURM_JOB_ID=42"}, map[string]string{"/proc/self/mountinfo": pyxisRootMountinfo}, "pyxis", "/enroot-data/user-0/pyxis_42.0", false},
		{"pyxis: /.lock read-only", []string{"SLURM_JOB_ID=42"}, map[string]string{"/proc/self/mountinfo": pyxisLockMountinfo}, "pyxis", "/.lock is mounted read-only", false},
		{"pyxis: enroot's /etc/rc", []string{"SLURM_JOB_ID=42"}, map[string]string{"/etc/rc": "# enroot-provenance: nvcr.io#nvidia/pytorch:25.01-py3\nexec \"$@\"\n"}, "pyxis", "enroot-provenance", false},
		{"pyxis: a uid map of one id backs up enroot's /etc/rc", []string{"SLURM_JOB_ID=42"}, map[string]string{"/proc/self/uid_map": enrootUIDMap, "/etc/rc": "# enroot-provenance: x\n"}, "pyxis", "maps one uid (0 0 1)", false},
		{"a uid map of one id alone is no enroot marker (enroot's)", []string{"SLURM_JOB_ID=42"}, map[string]string{"/proc/self/uid_map": enrootUIDMap}, "slurm", "no container marker", false},
		{"a uid map of one id alone is no enroot marker (Charliecloud)", []string{"SLURM_JOB_ID=42"}, map[string]string{"/proc/self/uid_map": chUIDMap}, "slurm", "no container marker", false},
		{"a plain /etc/rc is no enroot marker", []string{"SLURM_JOB_ID=42"}, map[string]string{"/etc/rc": "#!/bin/sh\n"}, "slurm", "no container", false},
		{"a writable /.lock is no enroot marker", []string{"SLURM_JOB_ID=42"}, map[string]string{"/proc/self/mountinfo": strings.ReplaceAll(pyxisLockMountinfo, " ro,", " rw,")}, "slurm", "no container", false},
		{"the old made-up pyxis variables mean nothing", []string{"SLURM_JOB_ID=42", "ENROOT_ROOTFS=/x", "PYXIS_VERSION=0.20"}, map[string]string{"/etc/enroot/": ""}, "slurm", "no container", false},
		{"enroot start without Slurm leaves no usable marker", nil, map[string]string{"/etc/rc": "# enroot-provenance: x\n"}, "unknown", "no runtime marker", false},

		{"apptainer", []string{"APPTAINER_CONTAINER=/x.sif"}, nil, "apptainer", "APPTAINER_CONTAINER is set", false},
		{"srun apptainer run: Apptainer, not Slurm", []string{"SLURM_JOB_ID=42", "APPTAINER_CONTAINER=/x.sif"}, map[string]string{"/proc/self/uid_map": enrootUIDMap, "/.singularity.d/": ""}, "apptainer", "APPTAINER_CONTAINER is set and /.singularity.d exists, inside Slurm job 42", false},
		{"srun from an Apptainer shell on the login node: the variables leak into a plain job", []string{"SLURM_JOB_ID=42", "APPTAINER_CONTAINER=/login.sif", "APPTAINER_NAME=login.sif"},
			map[string]string{"/proc/self/stat": stepChild, "/proc/4242/stat": slurmstepd, "/proc/self/mountinfo": hostRootMountinfo}, "slurm", "APPTAINER_CONTAINER is set but /.singularity.d does not exist", false},
		{"singularity", []string{"SINGULARITY_NAME=x.sif"}, nil, "apptainer", "SINGULARITY_NAME is set", false},
		{"apptainer with a clean environment", []string{"SLURM_JOB_ID=42"}, map[string]string{"/.singularity.d/env/": ""}, "apptainer", "/.singularity.d exists", false},

		{"slurm on kubernetes: slurmstepd outranks the pod's variables", []string{"SLURM_JOB_ID=42", "KUBERNETES_SERVICE_HOST=10.0.0.1", "KUBERNETES_SERVICE_PORT=443"},
			map[string]string{"/proc/self/stat": stepChild, "/proc/4242/stat": slurmstepd}, "slurm", "KUBERNETES_SERVICE_HOST is set, but belongs to the node", false},
		{"slurm on kubernetes: a step id outranks them too", []string{"SLURM_JOB_ID=42", "SLURM_STEP_ID=0", "KUBERNETES_SERVICE_HOST=10.0.0.1"}, nil, "slurm", "KUBERNETES_SERVICE_HOST is set, but", false},
		{"pyxis on kubernetes", []string{"SLURM_JOB_ID=42", "KUBERNETES_SERVICE_HOST=10.0.0.1"},
			map[string]string{"/etc/rc": "# enroot-provenance: x\n", "/proc/self/stat": stepChild, "/proc/4242/stat": slurmstepd}, "pyxis", "enroot-provenance", false},
		{"a pod with SLURM_JOB_ID but no step is a pod", []string{"SLURM_JOB_ID=42", "KUBERNETES_SERVICE_HOST=10.0.0.1"}, nil, "kubernetes", "KUBERNETES_SERVICE_HOST is set", false},

		{"docker rootful", nil, map[string]string{"/.dockerenv": "", "/proc/self/uid_map": fullUIDMap}, "docker", "/.dockerenv exists", false},
		{"docker rootless", nil, map[string]string{"/.dockerenv": "", "/proc/self/uid_map": rootlessUIDMap}, "docker", "rootless: uid 0 is host uid 1001 (your own user)", true},
		{"docker with userns-remap", nil, map[string]string{"/.dockerenv": "", "/proc/self/uid_map": remapUIDMap}, "docker", "remapped: uid 0 is host uid 100000", false},
		{"nerdctl rootless", nil, map[string]string{"/etc/hosts": nerdctlHosts, "/proc/self/uid_map": rootlessUIDMap}, "nerdctl", "rootless: uid 0 is host uid 1001", true},

		{"unknown", nil, nil, "unknown", "hints use Docker's flags", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			checktest.Mk(t, e, tc.files)
			rt := check.DetectRuntime(e)
			if rt.Name != tc.want || !strings.Contains(rt.Evidence, tc.evidence) || rt.Rootless != tc.rootless {
				t.Errorf("%s (%s), rootless %v; want %s with %q, rootless %v", rt.Name, rt.Evidence, rt.Rootless, tc.want, tc.evidence, tc.rootless)
			}
		})
	}
}

// TestHintsPerRuntime pins every hint in each runtime's own words; the e2e
// suite runs each fix in the real runtime.
func TestHintsPerRuntime(t *testing.T) {
	type hints struct{ gpu, shm, mount, env, user string }
	tests := []struct {
		name  string
		env   []string
		files map[string]string
		want  hints
	}{
		{"docker", nil, map[string]string{"/.dockerenv": ""}, hints{
			"docker run --gpus all ...",
			"docker run --shm-size=1g ... (or --ipc=host)",
			`docker run -v "$HOME/.cache/huggingface:/workspace/.cache/huggingface" -e HF_HOME=/workspace/.cache/huggingface ...`,
			"docker run -e HF_TOKEN ...",
			`docker run --user "$(id -u):$(id -g)" ...`}},
		{"podman rootful", []string{"container=podman"}, map[string]string{"/proc/self/uid_map": fullUIDMap}, hints{
			"podman run --device nvidia.com/gpu=all ...",
			"podman run --shm-size=1g ... (or --ipc=host)",
			`podman run -v "$HOME/.cache/huggingface:/workspace/.cache/huggingface:Z" -e HF_HOME=/workspace/.cache/huggingface ...`,
			"podman run -e HF_TOKEN ...",
			`podman run --user "$(id -u):$(id -g)" ...`}},
		{"podman rootless", []string{"container=podman"}, map[string]string{"/proc/self/uid_map": rootlessUIDMap}, hints{
			"podman run --device nvidia.com/gpu=all ...",
			"podman run --shm-size=1g ... (or --ipc=host)",
			`podman run -v "$HOME/.cache/huggingface:/workspace/.cache/huggingface:Z" -e HF_HOME=/workspace/.cache/huggingface ...`,
			"podman run -e HF_TOKEN ...",
			"podman run --userns=keep-id:uid=1000,gid=1000 ..."}},
		{"nerdctl", nil, map[string]string{"/etc/hosts": nerdctlHosts}, hints{
			"nerdctl run --gpus all ...",
			"nerdctl run --shm-size=1g ... (or --ipc=host)",
			`nerdctl run -v "$HOME/.cache/huggingface:/workspace/.cache/huggingface" -e HF_HOME=/workspace/.cache/huggingface ...`,
			"nerdctl run -e HF_TOKEN ...",
			`nerdctl run --user "$(id -u):$(id -g)" ...`}},
		{"ctr", nil, map[string]string{"/proc/self/mountinfo": ctrMountinfo}, hints{
			"ctr run --gpus 0 ...",
			"ctr run --mount type=tmpfs,src=tmpfs,dst=/dev/shm,options=size=1g ...",
			`ctr run --mount type=bind,src="$HOME/.cache/huggingface",dst=/workspace/.cache/huggingface,options=rbind --env HF_HOME=/workspace/.cache/huggingface ...`,
			`ctr run --env HF_TOKEN="$HF_TOKEN" ...`,
			"ctr run has no user flag: make the folder readable and writable to uid 1000 (chown 1000:1000)"}},
		{"kubernetes", []string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, nil, hints{
			"set resources.limits: {nvidia.com/gpu: 1} on the container",
			"mount an emptyDir volume with medium: Memory (sizeLimit: 1Gi) at /dev/shm",
			"mount a volume (persistentVolumeClaim or hostPath) at /workspace/.cache/huggingface and set env HF_HOME=/workspace/.cache/huggingface",
			"set env HF_TOKEN on the container (from a Secret with valueFrom.secretKeyRef)",
			"set securityContext.runAsUser and fsGroup to the owner of the volume"}},
		{"slurm, no container", []string{"SLURM_JOB_ID=42"}, nil, hints{
			"srun --gpus=1 ... (or #SBATCH --gres=gpu:1)",
			"this runtime uses the host's /dev/shm: ask the admins of the host for a larger one (at least 1 GiB)",
			`srun --export=ALL,HF_HOME="$HOME/.cache/huggingface" ...`,
			"srun --export=ALL,HF_TOKEN ...",
			"the job runs as you: make the folder yours (chown) or readable and writable to you"}},
		{"pyxis", []string{"SLURM_JOB_ID=42"}, map[string]string{"/etc/rc": "# enroot-provenance: x\n"}, hints{
			"srun --gpus=1 ... (or #SBATCH --gres=gpu:1)",
			"this runtime uses the host's /dev/shm: ask the admins of the host for a larger one (at least 1 GiB)",
			`srun --container-mounts="$HOME/.cache/huggingface:/workspace/.cache/huggingface" --export=ALL,HF_HOME=/workspace/.cache/huggingface ...`,
			"srun --export=ALL,HF_TOKEN ...",
			"the container runs as your own user: make the folder yours (chown) or readable and writable to you"}},
		{"docker rootless", nil, map[string]string{"/.dockerenv": "", "/proc/self/uid_map": rootlessUIDMap}, hints{
			"docker run --gpus all ...",
			"docker run --shm-size=1g ... (or --ipc=host)",
			`docker run -v "$HOME/.cache/huggingface:/workspace/.cache/huggingface" -e HF_HOME=/workspace/.cache/huggingface ...`,
			"docker run -e HF_TOKEN ...",
			"docker run --user 0:0 ... (rootless docker: container root is your own host user, so root in the container can read and write your files)"}},
		{"docker with userns-remap", nil, map[string]string{"/.dockerenv": "", "/proc/self/uid_map": remapUIDMap}, hints{
			"docker run --gpus all ...",
			"docker run --shm-size=1g ... (or --ipc=host)",
			`docker run -v "$HOME/.cache/huggingface:/workspace/.cache/huggingface" -e HF_HOME=/workspace/.cache/huggingface ...`,
			"docker run -e HF_TOKEN ...",
			"the engine remaps users (userns-remap): uid 1000 here is host uid 101000: make the folder readable and writable to it on the host (sudo chown 101000)"}},
		{"nerdctl rootless", nil, map[string]string{"/etc/hosts": nerdctlHosts, "/proc/self/uid_map": rootlessUIDMap}, hints{
			"nerdctl run --gpus all ...",
			"nerdctl run --shm-size=1g ... (or --ipc=host)",
			`nerdctl run -v "$HOME/.cache/huggingface:/workspace/.cache/huggingface" -e HF_HOME=/workspace/.cache/huggingface ...`,
			"nerdctl run -e HF_TOKEN ...",
			"nerdctl run --user 0:0 ... (rootless nerdctl: container root is your own host user, so root in the container can read and write your files)"}},
		{"slurm on kubernetes", []string{"SLURM_JOB_ID=42", "SLURM_STEP_ID=0", "KUBERNETES_SERVICE_HOST=10.0.0.1"}, nil, hints{
			"srun --gpus=1 ... (or #SBATCH --gres=gpu:1)",
			"this runtime uses the host's /dev/shm: ask the admins of the host for a larger one (at least 1 GiB)",
			`srun --export=ALL,HF_HOME="$HOME/.cache/huggingface" ...`,
			"srun --export=ALL,HF_TOKEN ...",
			"the job runs as you: make the folder yours (chown) or readable and writable to you"}},
		{"apptainer", []string{"APPTAINER_CONTAINER=/x.sif", "SLURM_JOB_ID=42"}, map[string]string{"/.singularity.d/": ""}, hints{
			"apptainer run --nv ...",
			"this runtime uses the host's /dev/shm: ask the admins of the host for a larger one (at least 1 GiB)",
			`apptainer run --bind "$HOME/.cache/huggingface:/workspace/.cache/huggingface" --env HF_HOME=/workspace/.cache/huggingface ...`,
			`apptainer run --env HF_TOKEN="$HF_TOKEN" ...`,
			"the container runs as your own user: make the folder yours (chown) or readable and writable to you"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			checktest.Mk(t, e, tc.files)
			rt := check.DetectRuntime(e)
			got := hints{rt.GPUHint(), rt.ShmHint(),
				rt.MountHint(`$HOME/.cache/huggingface`, "/workspace/.cache/huggingface", "HF_HOME=/workspace/.cache/huggingface"),
				rt.EnvHint("HF_TOKEN"), rt.UserHint(1000, 1000)}
			if got != tc.want {
				t.Errorf("%s:\n got  %q\n want %q", rt.Name, got, tc.want)
			}
		})
	}
}

// TestSlurmWorkspaceFix: with no container the workspace fix points
// NSS_WORKSPACE at the data instead of mounting it (finding 3: srun has
// no --container-mounts without pyxis).
func TestSlurmWorkspaceFix(t *testing.T) {
	e := checktest.FakeEnv(t, "SLURM_JOB_ID=42")
	r := checktest.Run(t, check.Workspace, e)
	checktest.Expect(t, r, check.Warn, "/workspace does not exist", `no container: point NSS_WORKSPACE at your data: srun --export=ALL,NSS_WORKSPACE="$(pwd)/data" ...`)
	if strings.Contains(r.Hint, "--container-") {
		t.Errorf("plain Slurm told about pyxis: %s", r.Hint)
	}
}

func TestPyxisBootstrap(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"sh", "-c", "kill -STOP $$"}, true},
		{[]string{"/bin/sh", "-c", " kill -STOP $$ "}, true},
		{[]string{"sh", "-c", "echo kill -STOP"}, false},
		{[]string{"run", "--config", "x.yaml"}, false},
		{[]string{"sh", "-c"}, false},
		{[]string{"sh", "-c", "kill -STOP $$", "extra"}, false},
	} {
		if got := check.PyxisBootstrap(tc.args); got != tc.want {
			t.Errorf("PyxisBootstrap(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
