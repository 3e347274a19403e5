package cli

import (
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
)

// needDescriptors is how many free descriptors the checks need at most at
// once: the runtime's network poller (epoll and an eventfd, taken by the
// first timer), a file being read, and for each helper two pipes, its pidfd
// and the pipe os.StartProcess uses for exec errors.
const needDescriptors = 16

// needDescriptorsInline is how many the checks need when no helper runs:
// the runtime's poller (two, started by the deadline's timer) and a file
// being read, with one to spare.
const needDescriptorsInline = 4

// descriptorsFree reports whether at least need descriptors are free under
// RLIMIT_NOFILE, by taking them: it duplicates descriptor 0 up to need times
// (the lowest free numbers below the limit, as any later open would get) and
// closes the copies. Descriptor 0 is always open here: the Go runtime opens
// /dev/null on 0, 1 and 2 when they were closed at start, before main. This
// holds whatever the limit and however the open descriptors are spread (a
// table filled to 2 below a limit of 1024 or 4096 makes the Go runtime abort
// when a timer or a pipe first needs its poller), and costs 2 x need system
// calls (about 9 µs for 16, where reading /proc/self/fd cost about 65 µs).
// free is how many are free, at most need; limit is the soft limit.
func descriptorsFree(need int) (free int, limit uint64, ok bool) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return need, rl.Cur, true
	}
	var fds [needDescriptors]int
	for free < need && free < len(fds) {
		fd, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break
		}
		fds[free] = fd
		free++
	}
	// Each closed with close(2), not one close_range(2) for a run of
	// consecutive numbers: that would save three system calls, and a
	// seccomp profile that kills on any call it does not list (an
	// allowlist written before Linux 5.9) would kill the start.
	for _, fd := range fds[:free] {
		unix.Close(fd)
	}
	return free, rl.Cur, free >= need
}

// minFreeTasks is how many more tasks (threads or processes) the checks
// may need: the GPU probe, the delegate and the threads the Go runtime adds
// while they run (measured: up to 8 threads in all, where a bare Go program
// needs 4).
const minFreeTasks = 32

// processesScarce says why the checks must not start helper processes, or
// "" when they may: RLIMIT_NPROC nearly used up (nprocScarce), or, when
// helpers would start, a pids cgroup (pids.max) nearly used up
// (pidsHeadroom; read only then, as it costs a few reads). Where no thread
// can be created at all the Go runtime cannot start, and nothing here runs
// (see README).
func processesScarce(helpers bool) string {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NPROC, &rl) == nil && rl.Cur != unix.RLIM_INFINITY {
		if why := nprocScarce(helpers, rl.Cur, unix.Getuid(), nprocExempt, allTasks, uidTasks); why != "" {
			return why
		}
	}
	if !helpers {
		return ""
	}
	tight, ok := pidsHeadroom(check.ReadSmall)
	if !ok || tight.max-tight.current >= minFreeTasks {
		return ""
	}
	return "pids.max is " + strconv.Itoa(tight.max) + " with " + strconv.Itoa(tight.current) + " in use, in " + tight.dir
}

// nprocScarce says why RLIMIT_NPROC (limit, a finite soft limit) leaves too
// few tasks for the helpers, or "". The kernel counts every task (thread or
// process) of the real uid against it, host-wide, and does not apply it to
// uid 0 of the initial user namespace or to a process with CAP_SYS_RESOURCE
// or CAP_SYS_ADMIN there (exempt): Docker's root is not limited by
// --ulimit nproc. A limit below a few hundred is scarce as it is. Above
// that, only when helpers would start: where all the system's tasks
// (allTasks: /proc/loadavg) leave minFreeTasks under the limit, the uid's
// cannot use it up; otherwise the uid's tasks are counted (uidTasks: all of
// them in the host's PID namespace, those visible in a container's).
//
// exempt is asked last, only where the limit would otherwise be scarce: it
// reads a file, which an ordinary start need not pay for.
func nprocScarce(helpers bool, limit uint64, uid int, exempt func() bool, allTasks func() (int, bool), uidTasks func(uid int) int) string {
	why := ""
	switch {
	case limit < 256:
		why = "RLIMIT_NPROC (ulimit -u) is " + strconv.FormatUint(limit, 10)
	case !helpers:
		return ""
	default:
		if all, ok := allTasks(); ok && uint64(all)+minFreeTasks <= limit {
			return ""
		}
		if used := uidTasks(uid); uint64(used)+minFreeTasks > limit {
			why = "RLIMIT_NPROC (ulimit -u) is " + strconv.FormatUint(limit, 10) + " and uid " + strconv.Itoa(uid) + " has " + strconv.Itoa(used) + " tasks"
		}
	}
	if why == "" || exempt() {
		return ""
	}
	return why
}

// nprocExempt reports whether RLIMIT_NPROC does not bind this process: its
// user namespace is the initial one (uid_map maps every uid to itself) and
// it runs as uid 0 or holds CAP_SYS_RESOURCE or CAP_SYS_ADMIN.
func nprocExempt() bool {
	b, err := check.ReadSmall("/proc/self/uid_map", 4096)
	if err != nil || strings.Join(strings.Fields(string(b)), " ") != "0 0 4294967295" {
		return false
	}
	if unix.Getuid() == 0 {
		return true
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return false
	}
	const sysAdmin, sysResource = 21, 24
	return data[0].Effective&(1<<sysAdmin|1<<sysResource) != 0
}

// allTasks returns the number of tasks on the system, /proc/loadavg's
// fourth field after its "/".
func allTasks() (int, bool) {
	b, err := check.ReadSmall("/proc/loadavg", 256)
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return 0, false
	}
	_, total, ok := strings.Cut(f[3], "/")
	n, err := strconv.Atoi(total)
	return n, ok && err == nil
}

// uidTasks counts the tasks (threads) of the processes in /proc whose real
// uid is uid, which is what RLIMIT_NPROC counts: each /proc/PID/status
// gives its "Uid:" (real uid first; the owner of /proc/PID is the
// effective one, which set-uid programs and setresuid change) and its
// "Threads:". It reads a file a process, so it is asked only when the
// limit is near the system's whole task count.
func uidTasks(uid int) int {
	fd, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	n := 0
	want := strconv.Itoa(uid)
	buf := make([]byte, 16<<10)
	for {
		got, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || got <= 0 {
			return n
		}
		var names []string
		_, _, names = unix.ParseDirent(buf[:got], -1, names)
		for _, name := range names {
			if name == "" || name[0] < '1' || name[0] > '9' {
				continue
			}
			b, err := check.ReadSmall("/proc/"+name+"/status", 8<<10)
			if err != nil {
				continue
			}
			if real, threads := statusUidThreads(string(b)); real == want {
				n += max(threads, 1)
			}
		}
	}
}

// statusUidThreads returns the real uid and the thread count that a
// /proc/PID/status text gives.
func statusUidThreads(status string) (realUID string, threads int) {
	for line := range strings.Lines(status) {
		switch {
		case strings.HasPrefix(line, "Uid:"):
			if f := strings.Fields(line[4:]); len(f) > 0 {
				realUID = f[0]
			}
		case strings.HasPrefix(line, "Threads:"):
			threads, _ = strconv.Atoi(strings.TrimSpace(line[8:]))
		}
	}
	return realUID, threads
}

// pidsCgroup is one pids cgroup's limit and use.
type pidsCgroup struct {
	dir          string
	max, current int
}

// pidsHeadroom returns, of the pids cgroups that hold this process and set
// a limit, the one with the fewest tasks left; ok is false when none does.
// It looks at the process's own cgroup, under cgroup v2's mount
// (/sys/fs/cgroup) and v1's pids controller (/sys/fs/cgroup/pids), by the
// path /proc/self/cgroup gives, and at each cgroup above it: a Slurm step
// or a Kubernetes pod may set the limit a level or two up. In a container
// with its own cgroup namespace the path is "/" and the mount is its own
// cgroup; where the path is not found under the mount (Docker on cgroup v1
// mounts the container's cgroup there), the mount's own files count. A
// hierarchy that /proc/self/cgroup does not name for this process is not
// looked at (on cgroup v2 a cgroup may be called "pids").
func pidsHeadroom(read func(name string, limit int) ([]byte, error)) (tight pidsCgroup, ok bool) {
	self, err := read("/proc/self/cgroup", 64<<10)
	for _, h := range []struct{ mount, controller string }{{"/sys/fs/cgroup", ""}, {"/sys/fs/cgroup/pids", "pids"}} {
		rel, named := cgroupPath(string(self), h.controller)
		if err == nil && !named {
			continue
		}
		for _, dir := range cgroupLevels(h.mount, rel) {
			if c, found := readPids(read, dir); found && (!ok || c.max-c.current < tight.max-tight.current) {
				tight, ok = c, true
			}
		}
	}
	return tight, ok
}

// maxCgroupLevels bounds the cgroups pidsHeadroom reads in one hierarchy:
// the top and the bottom half of a deeper path (real ones are a few levels).
const maxCgroupLevels = 64

// cgroupLevels returns the folders of a cgroup path under mount, from the
// mount itself down to the cgroup: each level's limit binds. A level that
// is not there (a path not under this mount, the root cgroup without
// limit files) is passed over by the reader. A path that leaves the cgroup
// namespace ("/../x", a process outside its namespace's root) counts as the
// mount alone.
func cgroupLevels(mount, rel string) []string {
	levels := []string{mount}
	if slices.Contains(strings.Split(rel, "/"), "..") {
		return levels
	}
	dir := mount
	for _, name := range strings.Split(rel, "/") {
		if name == "" || name == "." {
			continue
		}
		dir += "/" + name
		levels = append(levels, dir)
	}
	if len(levels) > maxCgroupLevels {
		levels = append(levels[:maxCgroupLevels/2], levels[len(levels)-maxCgroupLevels/2:]...)
	}
	return levels
}

// readPids reads dir's pids.max and pids.current; found is false when
// either is missing or not a number ("max": no limit).
func readPids(read func(name string, limit int) ([]byte, error), dir string) (c pidsCgroup, found bool) {
	m, err := read(dir+"/pids.max", 64)
	if err != nil {
		return c, false
	}
	cur, err := read(dir+"/pids.current", 64)
	if err != nil {
		return c, false
	}
	max, err1 := strconv.Atoi(strings.TrimSpace(string(m)))
	current, err2 := strconv.Atoi(strings.TrimSpace(string(cur)))
	if err1 != nil || err2 != nil {
		return c, false
	}
	return pidsCgroup{dir: dir, max: max, current: current}, true
}

// cgroupPath returns the process's cgroup path for a cgroup v1 controller
// from /proc/self/cgroup's lines ("4:pids:/docker/ab12"), or for cgroup
// v2 ("0::/user.slice/...") when controller is ""; named is false (and the
// path "/") when no line names it.
func cgroupPath(self, controller string) (path string, named bool) {
	for _, line := range strings.Split(self, "\n") {
		id, rest, ok1 := strings.Cut(line, ":")
		list, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(p, "/") {
			continue
		}
		if controller == "" && id == "0" && list == "" || controller != "" && slices.Contains(strings.Split(list, ","), controller) {
			return p, true
		}
	}
	return "/", false
}
