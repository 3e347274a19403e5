package cli

import (
	"bytes"
	"encoding/binary"
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

// descriptorsFree reports whether at least need descriptors are free under
// RLIMIT_NOFILE. It counts the open descriptors in /proc/self/fd (one read
// of a directory, whatever the limit: a table filled to 2 below a limit of
// 1024 or 4096 makes the Go runtime abort when a timer or a pipe first
// needs its poller), or, without /proc, duplicates descriptor 0 up to need
// times and closes the copies. free is how many are free (at most need when
// counted by duplication), limit the soft limit.
func descriptorsFree(need int) (free int, limit uint64, ok bool) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return need, rl.Cur, true
	}
	if open, err := countOpen(rl.Cur); err == nil {
		free = int(max(int64(min(rl.Cur, 1<<40))-int64(open), 0))
		return free, rl.Cur, free >= need
	}
	var fds [needDescriptors]int
	for free < need && free < len(fds) {
		fd, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 0)
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

// countOpen counts this process's open descriptors numbered below limit,
// not counting the one it opens to read /proc/self/fd. One numbered at or
// above the limit (inherited before the limit was lowered, such as a
// shell's 255) takes no free slot, so it is not counted.
func countOpen(limit uint64) (int, error) {
	fd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var buf [4096]byte
	n := 0
	for {
		m, err := unix.Getdents(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if m == 0 {
			return n, nil
		}
		// linux_dirent64: inode (8 bytes), offset (8), record length (2),
		// type (1), then the NUL-terminated name.
		for off := 0; off+19 < m; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen == 0 {
				break
			}
			name := buf[off+19 : min(off+reclen, m)]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if num, err := strconv.ParseUint(string(name), 10, 64); err == nil && num < limit && int(num) != fd {
				n++
			}
			off += reclen
		}
	}
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
