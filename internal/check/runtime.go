package check

import (
	"fmt"
	"strings"
)

// Runtime is the container runtime the entrypoint runs under. Hints are
// phrased in its flags, so a user can paste the fix.
type Runtime struct {
	// Name is a stable id: docker, podman, kubernetes, slurm, apptainer or unknown.
	Name string `json:"name"`
	// Evidence says what the detection saw.
	Evidence string `json:"evidence"`

	run       string // the start command, such as "docker run"; "" for Kubernetes
	gpuFlag   string
	shmFlag   string
	mountFlag string // %[1]s host path, %[2]s container path
	envFlag   string // %s NAME or NAME=value
	userFlag  string
}

// runtimeNamed returns the flags of a runtime by name. It is a switch, not
// a map: package-level maps are built before main on every start.
func runtimeNamed(name string) Runtime {
	switch name {
	case "podman":
		return Runtime{Name: "podman", run: "podman run", gpuFlag: "--device nvidia.com/gpu=all",
			shmFlag: "--shm-size=1g", mountFlag: `-v "%[1]s:%[2]s:Z"`, envFlag: "-e %s",
			userFlag: "--userns=keep-id"}
	case "kubernetes":
		return Runtime{Name: "kubernetes"}
	case "slurm":
		return Runtime{Name: "slurm", run: "srun", gpuFlag: "--gpus=1 (or #SBATCH --gres=gpu:1)",
			mountFlag: `--container-mounts="%[1]s:%[2]s"`, envFlag: "--export=ALL,%s"}
	case "apptainer":
		return Runtime{Name: "apptainer", run: "apptainer run", gpuFlag: "--nv",
			mountFlag: `--bind "%[1]s:%[2]s"`, envFlag: "--env %s"}
	}
	return Runtime{Name: "docker", run: "docker run", gpuFlag: "--gpus all",
		shmFlag: "--shm-size=1g", mountFlag: `-v "%[1]s:%[2]s"`, envFlag: "-e %s",
		userFlag: `--user "$(id -u):$(id -g)"`}
}

// DetectRuntime guesses the container runtime from the environment and the
// marker files each runtime leaves. An unknown runtime gets Docker's flags.
func DetectRuntime(e *Env) Runtime {
	pick := func(name, evidence string) Runtime {
		rt := runtimeNamed(name)
		rt.Evidence = evidence
		return rt
	}
	// Variables first (free), then marker files, the most common first.
	switch {
	case e.Get("KUBERNETES_SERVICE_HOST") != "":
		return pick("kubernetes", "KUBERNETES_SERVICE_HOST is set")
	case e.Get("SLURM_JOB_ID") != "":
		ev := "SLURM_JOB_ID is set"
		if e.Get("ENROOT_ROOTFS") != "" || e.Get("PYXIS_VERSION") != "" || e.Exists("/etc/enroot") {
			ev += " (enroot/pyxis container)"
		}
		return pick("slurm", ev)
	case e.Get("APPTAINER_CONTAINER") != "" || e.Get("SINGULARITY_CONTAINER") != "":
		return pick("apptainer", "APPTAINER_CONTAINER or SINGULARITY_CONTAINER is set")
	case e.Get("container") == "podman":
		return pick("podman", "container=podman is set")
	case e.Exists("/.dockerenv"):
		return pick("docker", "/.dockerenv exists")
	case e.Exists("/run/.containerenv"):
		return pick("podman", "/run/.containerenv exists")
	case e.Exists("/var/run/secrets/kubernetes.io"):
		return pick("kubernetes", "/var/run/secrets/kubernetes.io exists")
	}
	rt := runtimeNamed("docker")
	rt.Name, rt.Evidence = "unknown", "no runtime marker found; hints use Docker's flags"
	return rt
}

// Runtime returns the detected runtime, computed once.
func (e *Env) Runtime() Runtime {
	e.rtOnce.Do(func() { e.rt = DetectRuntime(e) })
	return e.rt
}

// Command joins flags into a start command: "docker run --gpus all ...".
func (rt Runtime) Command(flags ...string) string {
	return rt.run + " " + strings.Join(flags, " ") + " ..."
}

// GPUHint says how to give the container GPUs.
func (rt Runtime) GPUHint() string {
	if rt.Name == "kubernetes" {
		return "set resources.limits: {nvidia.com/gpu: 1} on the container"
	}
	return rt.Command(rt.gpuFlag)
}

// CDIHint says how to request all GPUs through the Container Device
// Interface.
func (rt Runtime) CDIHint() string {
	switch rt.Name {
	case "kubernetes":
		return "enable CDI in the NVIDIA device plugin (cdi.enabled=true)"
	case "slurm", "apptainer":
		return "the runtime's CDI support (apptainer --device nvidia.com/gpu=all)"
	}
	return rt.Command("--device nvidia.com/gpu=all")
}

// ShmHint says how to give the container a larger /dev/shm.
func (rt Runtime) ShmHint() string {
	switch rt.Name {
	case "kubernetes":
		return "mount an emptyDir volume with medium: Memory (sizeLimit: 1Gi) at /dev/shm"
	case "slurm", "apptainer":
		return "this runtime uses the host's /dev/shm: ask the admins of the host for a larger one (at least 1 GiB)"
	}
	return rt.Command(rt.shmFlag) + " (or --ipc=host)"
}

// MountHint says how to mount host folder host at ctr, setting env (NAME=value
// entries) too.
func (rt Runtime) MountHint(host, ctr string, env ...string) string {
	if rt.Name == "kubernetes" {
		s := fmt.Sprintf("mount a volume (persistentVolumeClaim or hostPath) at %s", ctr)
		if len(env) > 0 {
			s += " and set env " + strings.Join(env, ", ")
		}
		return s
	}
	flags := []string{fmt.Sprintf(rt.mountFlag, host, ctr)}
	for _, kv := range env {
		flags = append(flags, fmt.Sprintf(rt.envFlag, kv))
	}
	return rt.Command(flags...)
}

// EnvHint says how to pass a variable (NAME, taken from the host, or
// NAME=value) into the container.
func (rt Runtime) EnvHint(kv string) string {
	if rt.Name == "kubernetes" {
		return fmt.Sprintf("set env %s on the container (from a Secret with valueFrom.secretKeyRef)", kv)
	}
	return rt.Command(fmt.Sprintf(rt.envFlag, kv))
}

// UserHint says how to run as the owner of a mounted folder.
func (rt Runtime) UserHint() string {
	switch rt.Name {
	case "kubernetes":
		return "set securityContext.runAsUser and fsGroup to the owner of the volume"
	case "slurm", "apptainer":
		return "the container runs as your own user: make the folder yours (chown) or writable to you"
	}
	return rt.Command(rt.userFlag)
}
