package checks

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
)

// minMemory is the container memory below which fine-tuning is unlikely to fit.
const minMemory = 8 << 30

// CgroupLimits is what the container may use: memory in bytes and CPUs, as
// cgroup v2 or v1 says; zero means no limit.
type CgroupLimits struct {
	Version     int
	MemoryLimit uint64
	CPUQuota    float64
}

// procCgroup is one line of /proc/self/cgroup: "ID:controllers:path".
type procCgroup struct {
	id          string
	controllers []string
	path        string
}

func parseProcCgroup(b []byte) []procCgroup {
	var out []procCgroup
	for _, line := range strings.Split(string(b), "\n") {
		id, rest, ok1 := strings.Cut(line, ":")
		ctrl, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(p, "/") {
			continue
		}
		var cs []string
		if ctrl != "" {
			cs = strings.Split(ctrl, ",")
		}
		out = append(out, procCgroup{id: id, controllers: cs, path: p})
	}
	return out
}

// cgroupDir is where a cgroup's files sit: the directory under the mount
// point, and the mount point itself (the top a walk up stops at).
type cgroupDir struct{ dir, top string }

// resolve places the cgroup path p (as /proc/self/cgroup gives it) under
// mount m. With a cgroup namespace p is relative to the namespace and the
// mount's root is "/"; without one (Slurm, enroot, Docker on v1) p is the
// host's path, and m's root is "/" or p's own prefix. A path outside the
// mount's root means the mount is the cgroup itself.
func resolve(m check.Mount, p string) cgroupDir {
	rel := ""
	switch {
	case m.Root == "/":
		rel = p
	case p == m.Root || strings.HasPrefix(p, m.Root+"/"):
		rel = p[len(m.Root):]
	}
	return cgroupDir{dir: path.Join(m.Point, rel), top: path.Clean(m.Point)}
}

// findCgroup finds the directory of the process's cgroup: for v2 (ctrl
// empty) the unified hierarchy, for v1 the hierarchy of controller ctrl.
func findCgroup(lines []procCgroup, mounts []check.Mount, ctrl string) (cgroupDir, bool) {
	for _, l := range lines {
		if ctrl == "" && (l.id != "0" || len(l.controllers) > 0) || ctrl != "" && !slices.Contains(l.controllers, ctrl) {
			continue
		}
		for _, m := range mounts {
			switch {
			case ctrl == "" && m.FSType == "cgroup2":
			case ctrl != "" && m.FSType == "cgroup" && slices.Contains(strings.Split(path.Base(m.Point), ","), ctrl):
			default:
				continue
			}
			return resolve(m, l.path), true
		}
	}
	return cgroupDir{}, false
}

// walkUp calls f on d.dir and each parent up to d.top: a limit set on a
// parent (Slurm's job, above its step) binds the process too.
func walkUp(d cgroupDir, f func(dir string)) {
	for dir := d.dir; ; dir = path.Dir(dir) {
		f(dir)
		if dir == d.top || dir == "/" || dir == "." {
			return
		}
	}
}

// maxCgroupFile bounds each cgroup file read.
const maxCgroupFile = 4 << 10

// ReadCgroupLimits reads the limits of the process's own cgroup, found
// through /proc/self/cgroup and the cgroup mounts in /proc/self/mountinfo,
// v1 controllers first (a hybrid host keeps its limits there), then v2. The
// tightest limit on the way up to the mount point counts.
func ReadCgroupLimits(e *check.Env) CgroupLimits {
	read := func(p string) string {
		b, err := check.ReadSmall(e.Path(p), maxCgroupFile)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	cg, _ := check.ReadSmall(e.Path("/proc/self/cgroup"), 64<<10)
	mi, _ := check.ReadSmall(e.Path("/proc/self/mountinfo"), 4<<20)
	lines, mounts := parseProcCgroup(cg), check.ParseMountinfo(mi)
	var l CgroupLimits
	minMem := func(n uint64) {
		if n > 0 && (l.MemoryLimit == 0 || n < l.MemoryLimit) {
			l.MemoryLimit = n
		}
	}
	minCPU := func(q, p float64) {
		if q > 0 && p > 0 && (l.CPUQuota == 0 || q/p < l.CPUQuota) {
			l.CPUQuota = q / p
		}
	}
	memV1, okMem := findCgroup(lines, mounts, "memory")
	cpuV1, okCPU := findCgroup(lines, mounts, "cpu")
	if okMem || okCPU {
		l.Version = 1
		if okMem {
			walkUp(memV1, func(dir string) {
				if n, err := strconv.ParseUint(read(path.Join(dir, "memory.limit_in_bytes")), 10, 64); err == nil && n < 1<<62 {
					minMem(n)
				}
			})
		}
		if okCPU {
			walkUp(cpuV1, func(dir string) {
				q, err1 := strconv.ParseFloat(read(path.Join(dir, "cpu.cfs_quota_us")), 64)
				p, err2 := strconv.ParseFloat(read(path.Join(dir, "cpu.cfs_period_us")), 64)
				if err1 == nil && err2 == nil {
					minCPU(q, p)
				}
			})
		}
		return l
	}
	v2, ok := findCgroup(lines, mounts, "")
	if !ok {
		return l
	}
	l.Version = 2
	walkUp(v2, func(dir string) {
		if n, err := strconv.ParseUint(read(path.Join(dir, "memory.max")), 10, 64); err == nil {
			minMem(n)
		}
		if f := strings.Fields(read(path.Join(dir, "cpu.max"))); len(f) == 2 && f[0] != "max" {
			q, err1 := strconv.ParseFloat(f[0], 64)
			p, err2 := strconv.ParseFloat(f[1], 64)
			if err1 == nil && err2 == nil {
				minCPU(q, p)
			}
		}
	})
	return l
}

// Resources reports what the container may use (cgroup limits), what the
// host has, and /dev/shm; a memory limit under 8 GiB is a warning.
var Resources = check.Check{
	ID: "resources", Title: "memory and CPU", Timeout: defaultCheckTimeout,
	Run: func(ctx context.Context, e *check.Env) check.Result {
		l := ReadCgroupLimits(e)
		data := map[string]any{"cgroup_version": l.Version}
		var parts []string
		if l.MemoryLimit > 0 {
			data["memory_limit_bytes"] = l.MemoryLimit
			parts = append(parts, "memory limit "+check.FormatBytes(l.MemoryLimit))
		} else {
			parts = append(parts, "no memory limit")
		}
		if l.CPUQuota > 0 {
			data["cpu_quota"] = l.CPUQuota
			parts = append(parts, fmt.Sprintf("CPU quota %.1f", l.CPUQuota))
		} else {
			parts = append(parts, "no CPU quota")
		}
		if e.Host != nil {
			if h, err := e.Host(); err == nil {
				data["host_memory_bytes"], data["host_cpus"] = h.MemoryTotal, h.CPUs
				parts = append(parts, fmt.Sprintf("host %s, %d CPUs", check.FormatBytes(h.MemoryTotal), h.CPUs))
			}
		}
		if fs, err := e.StatfsPath(e.Path("/dev/shm")); err == nil {
			data["shm_bytes"], data["shm_free_bytes"] = fs.Total, fs.Free
			parts = append(parts, "/dev/shm "+check.FormatBytes(fs.Total)+" ("+check.FormatBytes(fs.Free)+" free)")
		}
		msg := strings.Join(parts, "; ")
		if l.MemoryLimit > 0 && l.MemoryLimit < minMemory {
			return check.Result{Status: check.Warn, Data: data, Message: msg + ": under " + check.FormatBytes(minMemory) + ", fine-tuning will likely be killed for memory",
				Hint: memoryHint(e.Runtime())}
		}
		return check.Result{Status: check.OK, Data: data, Message: msg}
	},
}

func memoryHint(rt check.Runtime) string {
	switch rt.Name {
	case "kubernetes":
		return "raise resources.limits.memory on the container (16Gi or more)"
	case "slurm":
		return "ask for more memory: srun --mem=32G ..."
	}
	return "raise or drop the memory limit: " + rt.Command("--memory=32g")
}
