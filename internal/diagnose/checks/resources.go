package checks

import (
	"context"
	"fmt"
	"os"
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

// ReadCgroupLimits reads the limits of the process's cgroup, v2 first.
func ReadCgroupLimits(e *check.Env) CgroupLimits {
	read := func(p string) string {
		b, err := os.ReadFile(e.Path(p))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if v := read("/sys/fs/cgroup/memory.max"); v != "" || read("/sys/fs/cgroup/cpu.max") != "" {
		l := CgroupLimits{Version: 2}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			l.MemoryLimit = n
		}
		if f := strings.Fields(read("/sys/fs/cgroup/cpu.max")); len(f) == 2 && f[0] != "max" {
			q, err1 := strconv.ParseFloat(f[0], 64)
			p, err2 := strconv.ParseFloat(f[1], 64)
			if err1 == nil && err2 == nil && p > 0 {
				l.CPUQuota = q / p
			}
		}
		return l
	}
	l := CgroupLimits{Version: 1}
	if n, err := strconv.ParseUint(read("/sys/fs/cgroup/memory/memory.limit_in_bytes"), 10, 64); err == nil && n < 1<<62 {
		l.MemoryLimit = n
	}
	q, err1 := strconv.ParseFloat(read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), 64)
	p, err2 := strconv.ParseFloat(read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"), 64)
	if err1 == nil && err2 == nil && q > 0 && p > 0 {
		l.CPUQuota = q / p
	}
	if l.MemoryLimit == 0 && l.CPUQuota == 0 && read("/sys/fs/cgroup/memory/memory.limit_in_bytes") == "" {
		l.Version = 0
	}
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
