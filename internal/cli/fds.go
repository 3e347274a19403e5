package cli

import (
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
// "" when they may: RLIMIT_NPROC (counted per user, threads included) below
// a few hundred, or, when helpers would start, a pids cgroup (pids.max)
// nearly used up (reading it costs about 35 µs, so it is read only then).
// Where no thread can be created at all the Go runtime cannot start, and
// nothing here runs (see README).
func processesScarce(helpers bool) string {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NPROC, &rl) == nil && rl.Cur < 256 {
		return "RLIMIT_NPROC (ulimit -u) is " + strconv.FormatUint(rl.Cur, 10)
	}
	if !helpers {
		return ""
	}
	b, err := check.ReadSmall("/sys/fs/cgroup/pids.max", 64)
	max := strings.TrimSpace(string(b))
	if err != nil || max == "max" {
		return ""
	}
	c, err := check.ReadSmall("/sys/fs/cgroup/pids.current", 64)
	limit, err1 := strconv.Atoi(max)
	cur, err2 := strconv.Atoi(strings.TrimSpace(string(c)))
	if err != nil || err1 != nil || err2 != nil || limit-cur >= minFreeTasks {
		return ""
	}
	return "the container's pids.max is " + max + " with " + strconv.Itoa(cur) + " in use"
}
