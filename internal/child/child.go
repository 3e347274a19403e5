// Package child runs a helper program for the start path in a way that can
// never hold up or outlive the handover: its output is read with a bound and
// a deadline, it runs in a process group of its own that is killed when the
// run ends (and by Groups.Kill when a signal ends the entrypoint), and it is
// started as a sibling of the entrypoint (CLONE_PARENT), not its child, so
// that a helper stuck in the kernel, which no signal can end, is never
// inherited by the target. It uses raw pipes and poll(2), not os/exec, so
// that the runtime's network poller is not started and a flood of output
// never reaches memory.
package child

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec says what to run.
type Spec struct {
	Path string
	// Argv is the whole argument vector, argv[0] included.
	Argv []string
	Env  []string
	// StdoutLimit and StderrLimit bound what is kept of each stream; past
	// StdoutLimit the helper is killed and Result.Overflow is set.
	StdoutLimit, StderrLimit int
	// Groups, when not nil, holds the helper's process group while it runs.
	Groups *Groups
	// InheritStderr gives the helper this process's descriptor 2 as its
	// own instead of a pipe (Result.Stderr stays empty): for a helper that
	// writes there on our behalf.
	InheritStderr bool
}

// Result is what a run saw.
type Result struct {
	// StartErr is the error of fork or exec (EAGAIN, EMFILE, ENOENT,
	// EACCES, ENOEXEC, ...); nothing ran when it is set.
	StartErr error
	Stdout   []byte
	Stderr   []byte
	// Exited is true when the helper ended before the deadline.
	Exited bool
	// Status is the wait status, when it could be learnt (it cannot when
	// the helper is a sibling that our parent has already reaped).
	Status *syscall.WaitStatus
	// TimedOut is true when the deadline came first.
	TimedOut bool
	// Overflow is true when the helper wrote more than StdoutLimit.
	Overflow bool
	// HeldOpen is true when the helper exited but something it started
	// kept its output open.
	HeldOpen bool
	// Sibling is true when the helper was started with CLONE_PARENT.
	Sibling bool
}

// heldOpenGrace is how long output may stay open after the helper exits.
const heldOpenGrace = 100 * time.Millisecond

// Run starts the helper and returns when it has exited and its output is
// closed, when it overflows, or when ctx ends; the helper's process group is
// then killed. Run never waits for a process the kernel cannot stop.
func Run(ctx context.Context, s Spec) Result {
	var r Result
	var outp, errp [2]int
	if err := unix.Pipe2(outp[:], unix.O_CLOEXEC); err != nil {
		r.StartErr = os.NewSyscallError("pipe2", err)
		return r
	}
	defer closeFDs(&outp[0])
	if err := unix.Pipe2(errp[:], unix.O_CLOEXEC); err != nil {
		unix.Close(outp[1])
		r.StartErr = os.NewSyscallError("pipe2", err)
		return r
	}
	defer closeFDs(&errp[0])
	pidfd := -1
	attr := &syscall.ProcAttr{
		Env:   s.Env,
		Files: []uintptr{^uintptr(0), uintptr(outp[1]), uintptr(errp[1])},
		Sys:   &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd},
	}
	if s.InheritStderr {
		attr.Files[2] = 2
	}
	// A sibling, not a child: PID 1 of a namespace cannot do that.
	if unix.Getpid() != 1 {
		attr.Sys.Cloneflags = unix.CLONE_PARENT
		r.Sibling = true
	}
	if s.Groups != nil {
		s.Groups.starts()
	}
	pid, err := syscall.ForkExec(s.Path, s.Argv, attr)
	if errors.Is(err, unix.EINVAL) && r.Sibling {
		attr.Sys.Cloneflags, r.Sibling = 0, false
		pid, err = syscall.ForkExec(s.Path, s.Argv, attr)
	}
	if s.Groups != nil {
		if err != nil {
			s.Groups.started(0)
		} else {
			s.Groups.started(pid)
			defer s.Groups.remove(pid)
		}
	}
	unix.Close(outp[1])
	unix.Close(errp[1])
	if err != nil {
		r.StartErr = err
		return r
	}
	if pidfd >= 0 {
		defer unix.Close(pidfd)
	}
	// Whatever happened, nothing of the helper's is left running.
	defer unix.Kill(-pid, unix.SIGKILL)

	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Hour)
	}
	out := reader{fd: outp[0], limit: s.StdoutLimit}
	// With stderr inherited, nothing writes to the pipe's other end: it
	// is not read.
	errs := reader{fd: errp[0], limit: s.StderrLimit, eof: s.InheritStderr}
	var exitedAt time.Time
	for {
		wait := time.Until(deadline)
		if !exitedAt.IsZero() {
			wait = min(wait, heldOpenGrace-time.Since(exitedAt))
		}
		if out.eof && errs.eof && (!exitedAt.IsZero() || pidfd < 0) {
			break
		}
		if wait <= 0 {
			if exitedAt.IsZero() {
				r.TimedOut = true
			} else {
				r.HeldOpen = true
			}
			break
		}
		fds := make([]unix.PollFd, 0, 3)
		if !out.eof {
			fds = append(fds, unix.PollFd{Fd: int32(out.fd), Events: unix.POLLIN})
		}
		if !errs.eof {
			fds = append(fds, unix.PollFd{Fd: int32(errs.fd), Events: unix.POLLIN})
		}
		if pidfd >= 0 && exitedAt.IsZero() {
			fds = append(fds, unix.PollFd{Fd: int32(pidfd), Events: unix.POLLIN})
		}
		if len(fds) == 0 {
			// Output closed, no pidfd: the helper has exited or is
			// about to; the status below says which.
			break
		}
		ms := int((wait + time.Millisecond - 1) / time.Millisecond)
		if _, err := unix.Poll(fds, ms); err != nil && err != unix.EINTR {
			break
		}
		for _, p := range fds {
			if p.Revents == 0 {
				continue
			}
			switch int(p.Fd) {
			case out.fd:
				out.read()
			case errs.fd:
				errs.read()
			case pidfd:
				exitedAt = time.Now()
				r.Exited = true
				r.Status = status(pid, r.Sibling)
			}
		}
		if out.overflow {
			r.Overflow = true
			break
		}
	}
	if !r.Exited && pidfd < 0 && out.eof && errs.eof {
		r.Exited = true
		r.Status = status(pid, r.Sibling)
	}
	r.Stdout, r.Stderr = out.buf, errs.buf
	if !r.Sibling && r.Status == nil {
		// Our own child, not reaped yet: kill it and reap it, in the
		// background if it does not die at once; one in uninterruptible
		// sleep is left (as PID 1 every orphan is ours anyway).
		unix.Kill(-pid, unix.SIGKILL)
		var ws syscall.WaitStatus
		if p, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); p != pid {
			go syscall.Wait4(pid, &ws, 0, nil)
		}
	}
	return r
}

// status reads the helper's wait status. A child of our own is reaped with
// wait4; a sibling's status can only be read from /proc while it is a
// zombie that our parent has not reaped yet.
func status(pid int, sibling bool) *syscall.WaitStatus {
	if !sibling {
		var ws syscall.WaitStatus
		if p, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err == nil && p == pid {
			return &ws
		}
		return nil
	}
	b := make([]byte, 1024)
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	n, err := unix.Read(fd, b)
	unix.Close(fd)
	if err != nil || n <= 0 {
		return nil
	}
	// The fields after the command name (which may hold spaces) are
	// space-separated; the state is the first of them, exit_code the 50th.
	s := string(b[:n])
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 50 || f[0] != "Z" {
		return nil
	}
	code, err := strconv.Atoi(f[49])
	if err != nil {
		return nil
	}
	ws := syscall.WaitStatus(code)
	return &ws
}

func closeFDs(fd *int) { unix.Close(*fd) }

// reader drains one pipe, keeping at most limit bytes.
type reader struct {
	fd       int
	limit    int
	buf      []byte
	eof      bool
	overflow bool
}

func (r *reader) read() {
	var chunk [16 << 10]byte
	n, err := unix.Read(r.fd, chunk[:])
	if err == unix.EINTR || err == unix.EAGAIN {
		return
	}
	if err != nil || n == 0 {
		r.eof = true
		return
	}
	room := max(r.limit-len(r.buf), 0)
	if n > room {
		r.overflow, n = true, room
	}
	r.buf = append(r.buf, chunk[:n]...)
}

// Groups records the process groups of running helpers, so that a signal
// that ends the entrypoint ends them too.
type Groups struct {
	mu  sync.Mutex
	ids []int
	// killed is set by Kill: a helper registered after it (forked while
	// Kill ran) is killed as it is added.
	killed bool
	// starting counts the helpers being forked and not yet registered:
	// Kill waits a moment for them, so that the entrypoint cannot die
	// between a fork and its registration and leave the helper behind.
	starting int
}

// maxStartWait bounds how long Kill waits for helpers being started (a
// fork and exec take about a millisecond; one whose program lies on a hung
// filesystem may never finish).
const maxStartWait = 200 * time.Millisecond

// starts records that a helper is being forked.
func (g *Groups) starts() {
	g.mu.Lock()
	g.starting++
	g.mu.Unlock()
}

// started registers a helper whose fork has returned (pid 0 when it
// failed).
func (g *Groups) started(pid int) {
	if pid > 0 {
		g.add(pid)
	}
	g.mu.Lock()
	g.starting--
	g.mu.Unlock()
}

func (g *Groups) add(id int) {
	g.mu.Lock()
	g.ids = append(g.ids, id)
	killed := g.killed
	g.mu.Unlock()
	if killed {
		unix.Kill(-id, unix.SIGKILL)
	}
}

func (g *Groups) remove(id int) {
	g.mu.Lock()
	for i, x := range g.ids {
		if x == id {
			g.ids = append(g.ids[:i], g.ids[i+1:]...)
			break
		}
	}
	g.mu.Unlock()
}

// Kill sends SIGKILL to every running helper's process group, and to any
// registered after it: a helper forked while Kill runs is killed as soon as
// it is registered. It takes no lock that a stuck helper could hold, so a
// signal handler may call it.
func (g *Groups) Kill() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.killed = true
	ids := append([]int(nil), g.ids...)
	g.mu.Unlock()
	for _, id := range ids {
		unix.Kill(-id, unix.SIGKILL)
	}
	// A helper being forked is killed when it is registered (killed is
	// set): wait for that, a moment at most.
	for end := time.Now().Add(maxStartWait); time.Now().Before(end); {
		g.mu.Lock()
		n := g.starting
		g.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
