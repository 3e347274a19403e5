package check

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Runtime is the container runtime the entrypoint runs under. Hints are
// phrased in its flags, so a user can paste the fix.
type Runtime struct {
	// Name is a stable id: docker, podman, nerdctl, containerd (started
	// with ctr), kubernetes, slurm (a job with no container), pyxis (a
	// Slurm job in an enroot container), apptainer or unknown.
	Name string `json:"name"`
	// Evidence says what the detection saw.
	Evidence string `json:"evidence"`
	// Rootless is true for rootless Podman, Docker and nerdctl: the user
	// flag differs.
	Rootless bool `json:"rootless,omitempty"`

	run       string // the start command, such as "docker run"; "" for Kubernetes
	gpuFlag   string
	shmFlag   string // "" when the runtime shares the host's /dev/shm
	mountFlag string // %[1]s host path, %[2]s container path
	envFlag   string // %s NAME or NAME=value
	envValue  bool   // envFlag needs NAME=value: NAME alone becomes NAME="$NAME"
	userFlag  string // %[1]d uid, %[2]d gid; "" when there is none
	remapped  int    // userns-remap: the host uid of container uid 0; 0 when not remapped
}

// runtimeNamed returns the flags of a runtime by name. It is a switch, not
// a map: package-level maps are built before main on every start.
func runtimeNamed(name string) Runtime {
	switch name {
	case "podman":
		return Runtime{Name: "podman", run: "podman run", gpuFlag: "--device nvidia.com/gpu=all",
			shmFlag: "--shm-size=1g", mountFlag: `-v "%[1]s:%[2]s:Z"`, envFlag: "-e %s",
			userFlag: `--user "$(id -u):$(id -g)"`}
	case "podman-rootless":
		rt := runtimeNamed("podman")
		// Rootless Podman maps the user to root in the container; keep-id
		// maps them to the container's own uid instead, so the image's
		// user can read the user's files. Rootful Podman refuses keep-id.
		rt.Rootless, rt.userFlag = true, "--userns=keep-id:uid=%[1]d,gid=%[2]d"
		return rt
	case "nerdctl":
		return Runtime{Name: "nerdctl", run: "nerdctl run", gpuFlag: "--gpus all",
			shmFlag: "--shm-size=1g", mountFlag: `-v "%[1]s:%[2]s"`, envFlag: "-e %s",
			userFlag: `--user "$(id -u):$(id -g)"`}
	case "containerd":
		// ctr: options are ':'-separated; --env takes NAME=value only; there
		// is no user flag and no --ipc.
		return Runtime{Name: "containerd", run: "ctr run", gpuFlag: "--gpus 0",
			shmFlag:   "--mount type=tmpfs,src=tmpfs,dst=/dev/shm,options=size=1g",
			mountFlag: `--mount type=bind,src="%[1]s",dst=%[2]s,options=rbind`, envFlag: "--env %s", envValue: true}
	case "kubernetes":
		return Runtime{Name: "kubernetes"}
	case "slurm":
		// No container: the job sees the node's files and environment.
		return Runtime{Name: "slurm", run: "srun", gpuFlag: "--gpus=1", envFlag: "--export=ALL,%s"}
	case "pyxis":
		return Runtime{Name: "pyxis", run: "srun", gpuFlag: "--gpus=1",
			mountFlag: `--container-mounts="%[1]s:%[2]s"`, envFlag: "--export=ALL,%s"}
	case "apptainer":
		return Runtime{Name: "apptainer", run: "apptainer run", gpuFlag: "--nv",
			mountFlag: `--bind "%[1]s:%[2]s"`, envFlag: "--env %s", envValue: true}
	}
	return Runtime{Name: "docker", run: "docker run", gpuFlag: "--gpus all",
		shmFlag: "--shm-size=1g", mountFlag: `-v "%[1]s:%[2]s"`, envFlag: "-e %s",
		userFlag: `--user "$(id -u):$(id -g)"`}
}

// DetectRuntime guesses the container runtime from the environment and the
// marker files each runtime leaves. Variables come first (free), then
// files, the most specific first; docs/running.md lists what each runtime
// leaves. An unknown runtime gets Docker's flags.
func DetectRuntime(e *Env) Runtime {
	pick := func(name, evidence string) Runtime {
		rt := runtimeNamed(name)
		rt.Evidence = evidence
		return rt
	}
	job := e.Get("SLURM_JOB_ID")
	inJob, leaked := "", ""
	if job != "" {
		inJob = ", inside Slurm job " + job
	}
	// Apptainer before Slurm: `srun apptainer run` has both, and the
	// container's flags are what the user can change. Its variables alone
	// are no proof inside a Slurm job: srun exports them from an Apptainer
	// shell on the login node into a job that has no container. Every
	// Apptainer container has /.singularity.d, --cleanenv or not.
	appDir := e.Exists("/.singularity.d")
	for _, v := range []string{"APPTAINER_CONTAINER", "APPTAINER_NAME", "SINGULARITY_CONTAINER", "SINGULARITY_NAME"} {
		if e.Get(v) == "" {
			continue
		}
		switch {
		case appDir:
			return pick("apptainer", v+" is set and /.singularity.d exists"+inJob)
		case job == "":
			return pick("apptainer", v+" is set"+inJob)
		}
		leaked = v + " is set but /.singularity.d does not exist: the variable was exported from outside the job"
		break
	}
	if appDir {
		return pick("apptainer", "/.singularity.d exists"+inJob)
	}
	// A Slurm step outranks the Kubernetes variables: on Slurm-on-Kubernetes
	// (Slinky, SUNK, soperator) srun exports the slurmd pod's
	// KUBERNETES_SERVICE_* into every job.
	mountinfo := e.mountinfoBytes
	slurmJob := func(nodeMarker string) Runtime {
		if marks := enrootMarkers(e, mountinfo()); len(marks) > 0 {
			return pick("pyxis", "SLURM_JOB_ID="+job+" is set and this is an enroot container ("+strings.Join(marks, "; ")+")")
		}
		ev := "SLURM_JOB_ID=" + job + " is set and no container marker was found: a Slurm job with no container"
		if nodeMarker != "" {
			ev = "SLURM_JOB_ID=" + job + " is set and slurmstepd started this process: a Slurm job with no container (" + nodeMarker + " belongs to the node)"
		}
		if leaked != "" {
			ev += "; " + leaked
		}
		return pick("slurm", ev)
	}
	stepAncestor := job != "" && slurmStepAncestor(e)
	if job != "" && (stepAncestor || e.Get("SLURM_STEP_ID") != "") {
		for _, v := range []string{"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"} {
			if e.Get(v) != "" {
				return slurmJob(v + " is set, but")
			}
		}
	}
	// The kubelet sets these in every container, enableServiceLinks or not.
	for _, v := range []string{"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"} {
		if e.Get(v) != "" {
			return pick("kubernetes", v+" is set")
		}
	}
	// Docker's and Podman's marks, unless slurmstepd started this process:
	// then they belong to a node that is itself a container, and a Slurm
	// job's own container (srun docker run) would have hidden slurmstepd in
	// its own PID namespace.
	if ev, ok := podmanMarker(e); ok {
		if stepAncestor {
			return slurmJob(ev)
		}
		rootless, why := podmanRootless(e)
		if rootless {
			return pick("podman-rootless", ev+"; rootless: "+why+inJob)
		}
		return pick("podman", ev+"; rootful: "+why+inJob)
	}
	if e.Exists("/.dockerenv") {
		if stepAncestor {
			return slurmJob("/.dockerenv exists, but")
		}
		return userns(e, pick("docker", "/.dockerenv exists"+inJob))
	}
	if job != "" {
		return slurmJob("")
	}
	if e.Exists("/var/run/secrets/kubernetes.io/serviceaccount") {
		return pick("kubernetes", "/var/run/secrets/kubernetes.io/serviceaccount exists")
	}
	hosts, _ := ReadSmall(e.Path("/etc/hosts"), 64)
	if bytes.HasPrefix(hosts, []byte("# Kubernetes-managed hosts file.")) {
		return pick("kubernetes", "/etc/hosts is the kubelet's (# Kubernetes-managed hosts file.)")
	}
	if e.Exists("/dev/termination-log") {
		return pick("kubernetes", "/dev/termination-log exists")
	}
	if bytes.HasPrefix(hosts, []byte("# <nerdctl>")) {
		return userns(e, pick("nerdctl", "/etc/hosts is nerdctl's (# <nerdctl>)"))
	}
	if snap := containerdSnapshot(mountinfo()); snap != "" {
		return pick("containerd", "the root filesystem is a containerd snapshot ("+snap+" in /proc/self/mountinfo) and /etc/hosts is not nerdctl's: "+
			"started with ctr, or another containerd client; hints use ctr's flags")
	}
	rt := runtimeNamed("docker")
	rt.Name, rt.Evidence = "unknown", "no runtime marker found; hints use Docker's flags (nerdctl takes the same)"
	return rt
}

// userns reads the uid map of a Docker or nerdctl container. Rootless
// Docker and nerdctl map container root to the user's own host uid (a range
// of one, "0 1000 1", then the subordinate ids): the user's files are
// root's in the container, so --user "$(id -u):$(id -g)" would run as a
// subordinate uid that cannot read them, and --user 0:0 is the fix. A
// rootful engine with userns-remap maps root to a subordinate range
// ("0 100000 65536"): no user flag helps, the folder's owner must change.
func userns(e *Env, rt Runtime) Runtime {
	host, count, ok := uidMapRoot(e)
	switch {
	case !ok || host == 0:
		return rt
	case count == 1:
		rt.Rootless = true
		rt.userFlag = "--user 0:0"
		rt.Evidence += "; rootless: uid 0 is host uid " + strconv.FormatUint(host, 10) + " (your own user) in /proc/self/uid_map"
	default:
		rt.remapped = int(host)
		rt.Evidence += "; user namespace remapped: uid 0 is host uid " + strconv.FormatUint(host, 10) + " in /proc/self/uid_map"
	}
	return rt
}

// uidMapRoot returns the host uid that container uid 0 maps to and the
// length of that range, from /proc/self/uid_map; ok is false without a map
// or a line for uid 0.
func uidMapRoot(e *Env) (host, count uint64, ok bool) {
	b, err := ReadSmall(e.Path("/proc/self/uid_map"), 4096)
	if err != nil {
		return 0, 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "0" {
			continue
		}
		h, err1 := strconv.ParseUint(f[1], 10, 32)
		c, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, false
		}
		return h, c, true
	}
	return 0, 0, false
}

// slurmStepAncestor reports whether slurmstepd is among the first few
// ancestors of this process, as it is for srun's tasks and for the
// containers that share the node's PID namespace (enroot, Apptainer).
func slurmStepAncestor(e *Env) bool {
	pid := "self"
	for range 6 {
		b, err := ReadSmall(e.Path("/proc/"+pid+"/stat"), 1024)
		if err != nil {
			return false
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			return false
		}
		if pid != "self" && string(b[open+1:end]) == "slurmstepd" {
			return true
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 2 || f[1] == "0" {
			return false
		}
		pid = f[1]
	}
	return false
}

// podmanMarker reports Podman's marks: the container=podman variable and
// /run/.containerenv.
func podmanMarker(e *Env) (string, bool) {
	switch {
	case e.Get("container") == "podman":
		return "container=podman is set", true
	case e.Exists("/run/.containerenv"):
		return "/run/.containerenv exists", true
	}
	return "", false
}

// podmanRootless tells rootless Podman from rootful: /run/.containerenv says
// so when Podman fills it (--privileged); otherwise the uid map does, since
// rootless Podman maps container root to the user's own, non-zero uid.
func podmanRootless(e *Env) (bool, string) {
	if b, err := ReadSmall(e.Path("/run/.containerenv"), 4096); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			switch strings.TrimSpace(l) {
			case "rootless=1":
				return true, "/run/.containerenv says rootless=1"
			case "rootless=0":
				return false, "/run/.containerenv says rootless=0"
			}
		}
	}
	b, err := ReadSmall(e.Path("/proc/self/uid_map"), 4096)
	if err != nil {
		return false, "no /proc/self/uid_map"
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "0" {
			if f[1] == "0" {
				return false, "uid 0 is the host's root in /proc/self/uid_map"
			}
			return true, "uid 0 is host uid " + f[1] + " in /proc/self/uid_map"
		}
	}
	return false, "/proc/self/uid_map does not map uid 0"
}

// enrootMarkers lists what enroot leaves in a container it starts (pyxis
// starts every container through enroot): /.lock bind-mounted read-only,
// /etc/rc beginning "# enroot-provenance:", a root under
// <ENROOT_DATA_PATH>/pyxis_<job>.<step>; and, beside one of those, a uid
// map of one id.
func enrootMarkers(e *Env, mountinfo []byte) []string {
	var marks []string
	for _, m := range ParseMountinfo(mountinfo) {
		switch {
		case m.Point == "/.lock" && hasOption(m.Options, "ro"):
			marks = append(marks, "/.lock is mounted read-only")
		case m.Point == "/" && strings.Contains(m.Root, "/pyxis_"):
			marks = append(marks, "the root filesystem is "+m.Root)
		}
	}
	if rc, _ := ReadSmall(e.Path("/etc/rc"), 64); bytes.HasPrefix(rc, []byte("# enroot-provenance:")) {
		marks = append(marks, "/etc/rc is enroot's (# enroot-provenance:)")
	}
	// A uid map of one id backs up the marks above but proves nothing alone:
	// Charliecloud and unshare -r make one too.
	if len(marks) == 0 {
		return nil
	}
	if b, err := ReadSmall(e.Path("/proc/self/uid_map"), 4096); err == nil {
		if lines := strings.Fields(string(b)); len(lines) == 3 && lines[2] == "1" {
			marks = append(marks, "/proc/self/uid_map maps one uid ("+strings.Join(lines, " ")+")")
		}
	}
	return marks
}

func hasOption(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// containerdSnapshot returns containerd's snapshotter when it holds the
// container's root filesystem ("io.containerd.snapshotter.v1.overlayfs" in
// the overlay's lowerdir), the one mark that ctr leaves.
func containerdSnapshot(mountinfo []byte) string {
	const mark = "io.containerd.snapshotter.v1."
	for l := range bytes.SplitSeq(mountinfo, []byte("\n")) {
		if string(mountinfoField(l, 4)) != "/" {
			continue
		}
		i := bytes.Index(l, []byte(mark))
		if i < 0 {
			continue
		}
		end := i + len(mark)
		for end < len(l) && l[end] != '/' && l[end] != ',' && l[end] != ' ' {
			end++
		}
		return string(l[i:end])
	}
	return ""
}

// Runtime returns the detected runtime, computed once.
func (e *Env) Runtime() Runtime {
	e.rtOnce.Do(func() { e.rt = DetectRuntime(e) })
	return e.rt
}

// InContainer is false for a Slurm job with no container: its fixes point
// variables at the node's folders instead of mounting them.
func (rt Runtime) InContainer() bool { return rt.Name != "slurm" }

// Command joins flags into a start command: "docker run --gpus all ...".
func (rt Runtime) Command(flags ...string) string {
	return rt.run + " " + strings.Join(flags, " ") + " ..."
}

// GPUHint says how to give the container GPUs.
func (rt Runtime) GPUHint() string {
	switch rt.Name {
	case "kubernetes":
		return "set resources.limits: {nvidia.com/gpu: 1} on the container"
	case "slurm", "pyxis":
		return rt.Command(rt.gpuFlag) + " (or #SBATCH --gres=gpu:1)"
	}
	return rt.Command(rt.gpuFlag)
}

// CDIHint says how to request all GPUs through the Container Device
// Interface, or "" when the runtime has no flag for it: srun has none (its
// GPUs come from --gpus or --gres), ctr's differs between releases, and
// Apptainer takes --device only from 1.5.0, so --nv comes first there.
func (rt Runtime) CDIHint() string {
	switch rt.Name {
	case "kubernetes":
		return "enable CDI in the NVIDIA device plugin (cdi.enabled=true)"
	case "slurm", "pyxis", "containerd":
		return ""
	case "apptainer":
		return rt.Command("--device nvidia.com/gpu=all") + " (Apptainer 1.5.0 and later; before that, " + rt.Command(rt.gpuFlag) + ")"
	}
	return rt.Command("--device nvidia.com/gpu=all")
}

// ShmHint says how to give the container a larger /dev/shm.
func (rt Runtime) ShmHint() string {
	switch {
	case rt.Name == "kubernetes":
		return "mount an emptyDir volume with medium: Memory (sizeLimit: 1Gi) at /dev/shm"
	case rt.shmFlag == "":
		return "this runtime uses the host's /dev/shm: ask the admins of the host for a larger one (at least 1 GiB)"
	case rt.Name == "containerd":
		return rt.Command(rt.shmFlag)
	}
	return rt.Command(rt.shmFlag) + " (or --ipc=host)"
}

// NofileHint is the fix for an open-file limit (RLIMIT_NOFILE) too low
// for the container's processes.
func (rt Runtime) NofileHint() string {
	switch rt.Name {
	case "kubernetes":
		return "raise the open-file limit of the node's container runtime (LimitNOFILE in the containerd or CRI-O systemd unit): containers inherit it"
	case "slurm", "pyxis":
		return "raise the open-file limit for the job: ulimit -n 65535 before srun, or srun --propagate=NOFILE ..."
	case "apptainer":
		return "raise the open-file limit before starting: ulimit -n 65535, then apptainer run ..."
	case "containerd":
		return "ctr run's default spec sets an open-file limit of 1024: start the container with nerdctl run --ulimit nofile=65535:65535 ..., which uses the same containerd and images"
	case "unknown":
		return "raise the open-file limit: " + rt.Command("--ulimit nofile=65535:65535") + " (or ulimit -n 65535 before starting it without a container)"
	}
	return "raise the open-file limit: " + rt.Command("--ulimit nofile=65535:65535")
}

// ProcsHint is the fix for a process limit (pids.max, RLIMIT_NPROC) that
// leaves no room for more processes.
func (rt Runtime) ProcsHint() string {
	switch rt.Name {
	case "kubernetes":
		return "raise the kubelet's podPidsLimit on the node (or ask its admins to)"
	case "slurm", "pyxis":
		return "raise the process limit for the job: ulimit -u 65535 before srun, or srun --propagate=NPROC ..."
	case "apptainer":
		return "raise the process limit before starting: ulimit -u 65535, then apptainer run ..."
	case "containerd":
		return "ctr run has no flag for it: start the container with nerdctl run --pids-limit=-1 --ulimit nproc=65535 ..., which uses the same containerd and images"
	}
	return "raise the process limit: " + rt.Command("--pids-limit=-1 --ulimit nproc=65535")
}

// MemoryHint is the fix for a container that ran out of memory.
func (rt Runtime) MemoryHint() string {
	switch rt.Name {
	case "kubernetes":
		return "raise resources.limits.memory on the container, or lower what else runs in it"
	case "slurm", "pyxis":
		return "give the job more memory: " + rt.Command("--mem=32G") + ", or lower what else runs in it"
	case "apptainer":
		return "free memory on the node, or lower what else runs in the job"
	case "containerd":
		return "give the container more memory: " + rt.Command("--memory-limit 34359738368") + ", or lower what else runs in it"
	}
	return "give the container more memory: " + rt.Command("--memory=32g") + ", or lower what else runs in it"
}

// MountHint says how to mount host folder host at ctr, setting env (NAME=value
// entries) too. With no container (plain Slurm) there is nothing to mount:
// a variable whose value is ctr is pointed at host instead.
func (rt Runtime) MountHint(host, ctr string, env ...string) string {
	switch {
	case rt.Name == "kubernetes":
		s := fmt.Sprintf("mount a volume (persistentVolumeClaim or hostPath) at %s", ctr)
		if len(env) > 0 {
			s += " and set env " + strings.Join(env, ", ")
		}
		return s
	case !rt.InContainer():
		var vars []string
		for _, kv := range env {
			if name, val, _ := strings.Cut(kv, "="); val == ctr {
				kv = name + `="` + host + `"`
			}
			vars = append(vars, kv)
		}
		if len(vars) == 0 {
			return "no container: the job sees the node's own files: create " + ctr + " on the node, or point its variable at a folder that exists"
		}
		return rt.Command(fmt.Sprintf(rt.envFlag, strings.Join(vars, ",")))
	}
	flags := []string{fmt.Sprintf(rt.mountFlag, host, ctr)}
	if rt.Name == "pyxis" && len(env) > 0 {
		// srun keeps only its last --export.
		return rt.Command(append(flags, fmt.Sprintf(rt.envFlag, strings.Join(env, ",")))...)
	}
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
	if rt.envValue && !strings.Contains(kv, "=") {
		kv = kv + `="$` + kv + `"`
	}
	return rt.Command(fmt.Sprintf(rt.envFlag, kv))
}

// UserHint says how to run as the owner of a mounted folder; uid and gid
// are the ids the process runs as now.
func (rt Runtime) UserHint(uid, gid int) string {
	switch rt.Name {
	case "kubernetes":
		return "set securityContext.runAsUser and fsGroup to the owner of the volume"
	case "slurm":
		return "the job runs as you: make the folder yours (chown) or readable and writable to you"
	case "pyxis", "apptainer":
		return "the container runs as your own user: make the folder yours (chown) or readable and writable to you"
	case "docker", "nerdctl", "unknown":
		switch {
		case rt.Rootless:
			return rt.Command(rt.userFlag) + " (rootless " + rt.Name + ": container root is your own host user, so root in the container can read and write your files)"
		case rt.remapped > 0:
			h := strconv.Itoa(rt.remapped + uid)
			return "the engine remaps users (userns-remap): uid " + strconv.Itoa(uid) + " here is host uid " + h + ": make the folder readable and writable to it on the host (sudo chown " + h + ")"
		}
	case "containerd":
		u := strconv.Itoa(uid)
		return "ctr run has no user flag: make the folder readable and writable to uid " + u + " (chown " + u + ":" + strconv.Itoa(gid) + ")"
	}
	if strings.Contains(rt.userFlag, "%[") {
		return rt.Command(fmt.Sprintf(rt.userFlag, uid, gid))
	}
	return rt.Command(rt.userFlag)
}

// PyxisBootstrap reports whether args are pyxis's own start-up command
// (sh -c 'kill -STOP $$'), which srun --container-entrypoint sends through
// the image's ENTRYPOINT: safe-synthesizer cannot run it, and pyxis then
// fails the job with "container exited too soon".
func PyxisBootstrap(args []string) bool {
	if len(args) != 3 || (args[0] != "sh" && args[0] != "/bin/sh") || args[1] != "-c" {
		return false
	}
	return strings.HasPrefix(strings.TrimSpace(args[2]), "kill -STOP")
}

// mountinfoField returns field i (from 0) of a mountinfo line, the fields
// being separated by single spaces as the kernel writes them; nil when the
// line has fewer. It allocates nothing, where bytes.Fields would allocate
// for every line of a mount table that runs to hundreds of lines.
func mountinfoField(line []byte, i int) []byte {
	for ; i > 0; i-- {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return nil
		}
		line = line[sp+1:]
	}
	if sp := bytes.IndexByte(line, ' '); sp >= 0 {
		return line[:sp]
	}
	return line
}
