// Package cli is nss-entrypoint's command line: it picks the mode, runs the
// start-up checks, writes their hints and hands over to the target.
package cli

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/internal/hints"
	"github.com/nvidia-nemo/nss-entrypoint/internal/procstate"
	"github.com/nvidia-nemo/nss-entrypoint/internal/secret"
	"github.com/nvidia-nemo/nss-entrypoint/internal/target"
)

// DefaultTarget is the program the entrypoint hands over to.
const DefaultTarget = "safe-synthesizer"

// DefaultTimeout bounds the start-up checks when NSS_ENTRYPOINT_TIMEOUT is unset.
const DefaultTimeout = 5 * time.Second

// stderrBudget is the longest the entrypoint waits for a stderr write
// before it gives up on it and starts the target anyway.
const stderrBudget = 250 * time.Millisecond

// DiagnoseProgram is the report's own binary, installed next to
// nss-entrypoint. Keeping the report's code (and its imports: gopsutil,
// package net) out of nss-entrypoint keeps their initialisation off the path
// that runs before every container start.
const DiagnoseProgram = "nss-diagnose"

// Main runs nss-entrypoint with args (args[0] is its own name) and returns
// the exit status. environ is the environment as the process received it,
// byte for byte (procstate.Environ): the target gets exactly that. In
// entrypoint mode Main returns only when the target could not be started;
// with --diagnose first it execs nss-diagnose.
func Main(args, environ []string) int {
	reserveStack()
	if len(args) == 0 {
		// An exec with an empty argv: Linux before 5.18 allows it (later
		// kernels put "" in). The target is started all the same.
		args = []string{""}
	}
	if args[0] == check.DelegateArgv0 {
		if dl, ok := check.DelegateDeadline(environ); ok {
			return delegated(args[1:], environ, dl)
		}
	}
	if args[0] == StderrWriterArgv0 {
		// The entrypoint gives its writer a deadline stderrBudget away; a
		// later one was not set by it.
		if dl, ok := check.DelegateDeadline(environ); ok && time.Until(dl) <= stderrBudget+helperGrace {
			return writeStderr(args[1:], dl)
		}
	}
	if len(args) > 1 && args[1] == "--diagnose" {
		return diagnose(args, environ)
	}
	return entrypoint(args, environ, procstate.Initial())
}

// delegated is the process that runs the checks whose paths lie on a
// filesystem that may hang (check.RunInline): nss-entrypoint started again
// with argv[0] check.DelegateArgv0, check.DelegateEnv set to its deadline
// and the checks' IDs. It writes their
// results on stdout; the entrypoint abandons it at the deadline.
func delegated(ids, environ []string, deadline time.Time) int {
	// Past the deadline and a grace, nobody reads the results: exit, even
	// with a check stuck (unless in the kernel, where nothing ends it).
	time.AfterFunc(pastDeadline(deadline, helperGrace), func() { os.Exit(3) })
	e := check.NewEnv(environ, "")
	check.RunDelegated(context.Background(), e, ids, func(b []byte) { writeAll(1, b) })
	return 0
}

// helperGrace is how long a helper runs past its deadline before it exits
// by itself.
const helperGrace = 500 * time.Millisecond

// pastDeadline is the time from now until grace after deadline. It does
// not wrap around for a deadline centuries away (NSS_ENTRYPOINT_TIMEOUT
// near the largest Go duration): the sum saturates.
func pastDeadline(deadline time.Time, grace time.Duration) time.Duration {
	d := time.Until(deadline)
	if d > math.MaxInt64-grace {
		return math.MaxInt64
	}
	return d + grace
}

// diagnose execs nss-diagnose with the arguments after --diagnose; exit
// status 3 (the report could not be made) when it cannot.
func diagnose(args, environ []string) int {
	path := gpuhelper.SiblingPath(DiagnoseProgram, args[0])
	err := syscall.Exec(path, append([]string{DiagnoseProgram}, args[2:]...), environ)
	writeBounded(2, []byte(hints.Prefix+"error: --diagnose needs "+DiagnoseProgram+" next to nss-entrypoint ("+hints.Escape(path)+"): "+hints.Escape(err.Error())+"\n"), stderrBudget)
	return 3
}

// entrypoint runs the start-up checks, writes their hints and execs the
// target. Hints are written with write(2) on fd 2, not through os.Stderr:
// the Go runtime then ignores the SIGPIPE of a broken pipe and the write
// returns EPIPE, so no signal handling is changed (signal.Ignore would
// survive the exec).
func entrypoint(args, environ []string, st procstate.State) int {
	e := check.NewEnv(environ, args[0])
	h := &handover{e: e, st: st, environ: environ, name: DefaultTarget, args: args[1:]}
	if v := e.Get("NSS_ENTRYPOINT_TARGET"); v != "" {
		h.name = v
	}
	if !checksWanted(h.args, e) {
		return h.run(nil)
	}
	// Helpers run when there is a GPU to probe or a path on a filesystem
	// that may hang: a signal must then end them with the entrypoint.
	helpers := e.NVIDIACtl() || e.WSL() || e.UnsafeMounts()
	// Too few free descriptors for the checks (the runtime's poller alone
	// needs two): start the target at once, with one line that says so.
	need := needDescriptors
	if !helpers {
		need = needDescriptorsInline
	}
	if free, limit, ok := descriptorsFree(need); !ok {
		h.scarceFDs = true
		are := " file descriptors are free"
		if free == 1 {
			are = " file descriptor is free"
		}
		return h.run([]byte(hints.Prefix + "warning: only " + strconv.Itoa(free) + are + " (ulimit -n is " +
			strconv.FormatUint(limit, 10) + "): the start-up checks were skipped\n" +
			hints.Prefix + "  fix: raise the open-file limit: --ulimit nofile=65535:65535 with docker, podman or nerdctl run; ulimit -n 65535 before srun or apptainer run; on Kubernetes, LimitNOFILE of the node's container runtime\n"))
	}

	var notes []byte
	timeout, err := parseTimeout(e.Get("NSS_ENTRYPOINT_TIMEOUT"))
	if err != nil {
		notes = []byte(hints.Prefix + "warning: " + hints.Escape(err.Error()) + "\n")
	}
	if check.PyxisBootstrap(h.args) {
		notes = append(notes, hints.Prefix+"error: these arguments are pyxis's start-up command, sent through the image's ENTRYPOINT by srun --container-entrypoint; "+
			"safe-synthesizer cannot run it and pyxis will report \"container exited too soon\"\n"+
			hints.Prefix+"  fix: leave out --container-entrypoint and name the command: srun --container-image=IMAGE nss-entrypoint run ...\n"...)
	}
	lines := func(results []check.Result) []byte {
		// write scrubs every line; a message that hints will cut (over
		// hints.MaxLine) is scrubbed before, as a secret cut in two would
		// be found by neither half.
		for i := range results {
			if r := &results[i]; len(r.Message) > hints.MaxLine || len(r.Hint) > hints.MaxLine {
				r.Message, r.Hint = h.scrubber().String(r.Message), h.scrubber().String(r.Hint)
			}
		}
		out := hints.Startup(results, hints.ColourWanted(e.Get, h.stderrTerminal()))
		if len(notes) == 0 {
			return out
		}
		return append(notes, out...)
	}
	if check.StartupCUDA(e) {
		e.GPUArgs = []string{"--cuda"}
	}
	// When processes are scarce no helper is started (and os/signal, which
	// costs two threads, is not used).
	e.NoHelpers = processesScarce(helpers)
	switch {
	case e.NoHelpers != "" && !st.Captured:
		// One P: the scheduler then starts no thread to run a goroutine
		// beside this one (a thread it cannot create aborts the runtime).
		// The entry stub has given the runtime one P from the start
		// (procstate's runtimeEnv); without the stub, it is set here, late,
		// at the cost of stopping the world.
		runtime.GOMAXPROCS(1)
	case helpers && e.NoHelpers == "" && runtime.GOMAXPROCS(0) < 2:
		// Two Ps where a helper starts: it is started with vfork, and the
		// thread that starts it keeps its P until the helper's execve has
		// found the file, which a hung or lazily fetched filesystem can
		// make take any time. The deadline runs on the other P.
		runtime.GOMAXPROCS(2)
	}
	h.sig = startSignals(st, e.Children, helpers && e.NoHelpers == "")
	ctx, cancel := context.WithTimeout(check.WithBudget(context.Background(), timeout), timeout)
	defer cancel()
	e.StartGPU(ctx)
	results := check.RunInline(ctx, e, check.Startup(), func(partial []check.Result) {
		// A check hangs past the deadline: start the target from here.
		os.Exit(h.run(lines(partial)))
	})
	return h.run(lines(results))
}

// handover is what the exec needs.
type handover struct {
	e       *check.Env
	st      procstate.State
	sig     *signals
	environ []string
	name    string
	args    []string
	// scarceFDs: too few descriptors are free for the runtime's poller, so
	// nothing may start a timer (writePolled instead of writeBounded).
	scarceFDs bool
	// stderr is what check.StatFD says of descriptor 2, asked once
	// (stderrStat): the colour decision and every write need it.
	stderr       check.FDStat
	stderrErr    error
	stderrStated bool
	// terminal is whether descriptor 2 is a terminal (stderrTerminal),
	// asked once when terminalKnown.
	terminal, terminalKnown bool
	// scrub takes secrets out of what is written (write).
	scrub *secret.Scrubber
}

// stderrStat is check.StatFD(2), asked once.
func (h *handover) stderrStat() (check.FDStat, error) {
	if !h.stderrStated {
		h.stderr, h.stderrErr = check.StatFD(2)
		h.stderrStated = true
	}
	return h.stderr, h.stderrErr
}

// stderrTerminal is whether descriptor 2 is a terminal, asked once: the
// colour decision and every write need it.
func (h *handover) stderrTerminal() bool {
	if !h.terminalKnown {
		st, err := h.stderrStat()
		h.terminal, h.terminalKnown = hints.IsTerminalStat(2, st, err), true
	}
	return h.terminal
}

// scrubber takes secrets out of what the entrypoint writes: the values of
// the environment's secret-named variables as they are, as hints.Escape
// writes them and as a Go %q quotes them (the timeout's warning), URL
// passwords and token shapes.
func (h *handover) scrubber() *secret.Scrubber {
	if h.scrub == nil {
		h.scrub = secret.NewScrubber(h.environ, hints.Escape, quoted)
	}
	return h.scrub
}

// quoted is s as Go's %q writes it, without the quotes; s itself, without
// copying, where %q would change nothing (printable ASCII but for " and \).
func quoted(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// write writes b on stderr within stderrBudget. Where stderr is a
// terminal, SIGTTOU is ignored meanwhile (and its action put back after): from a background process group on a terminal with tostop, the
// write would otherwise stop the whole entrypoint, deadline and all, before
// the target starts. (A mask would be per thread; locking a thread costs
// one more in the runtime.) Only a write to a terminal raises SIGTTOU: for
// a pipe, a file or /dev/null the two system calls are not made. Where
// stderr is a regular file, SIGXFSZ is ignored for the write likewise.
func (h *handover) write(b []byte) {
	if len(b) == 0 {
		return
	}
	// Every line quotes what the user set or the probe said: secrets are
	// taken out here, once for every message. The scrubber reads b in
	// place (a copy is an allocation in a size class a start has not used
	// yet, a fresh page): nothing writes b meanwhile, the Scrubber keeps no
	// reference to its text, and it returns either that same string
	// (nothing found) or a new one.
	text := unsafe.String(unsafe.SliceData(b), len(b))
	if s := h.scrubber().String(text); s != text {
		b = []byte(s)
	}
	if h.st.Captured && !procstate.Has(h.st.Ignored, int(unix.SIGTTOU)) && h.stderrTerminal() {
		old := procstate.IgnoreFor(int(unix.SIGTTOU))
		defer procstate.Restore(int(unix.SIGTTOU), old)
	}
	st, err := h.stderrStat()
	if h.st.Captured && !procstate.Has(h.st.Ignored, int(unix.SIGXFSZ)) && (err != nil || st.Type == unix.S_IFREG) {
		// A file already at RLIMIT_FSIZE (ulimit -f; 2>> a large log):
		// the write would raise SIGXFSZ and end the start, where the
		// target would have run until it wrote there itself. Ignored for
		// the write, which then fails with EFBIG; put back after.
		old := procstate.IgnoreFor(int(unix.SIGXFSZ))
		defer procstate.Restore(int(unix.SIGXFSZ), old)
	}
	switch {
	case stderrMayHang(h.e, st, err):
		// A file whose filesystem may stop answering: poll says a regular
		// file is always writable, and a write the server never answers
		// cannot be interrupted.
		h.writeFromHelper(b)
	case h.scarceFDs:
		writePolled(2, b, stderrBudget)
	default:
		writeBounded(2, b, stderrBudget)
	}
}

// run writes the hints and execs the target. It returns only when the
// target could not be started, with bash's exit code for that.
func (h *handover) run(lines []byte) int {
	// A signal that ends the entrypoint may have ended the probe first: the
	// checks then finished early, and must not start the target.
	h.sig.awaitDeath()
	h.sig.faultsToDefault()
	h.write(lines)
	// No helper outlives the handover.
	h.e.Children.Kill()
	h.sig.awaitDeath()
	// From here an ending signal acts as on the target.
	h.sig.quiesce()
	// Signals blocked and pending at entry, and those that arrived while
	// blocked, are made pending again for the target.
	pending := h.st.Pending
	if h.sig != nil {
		pending |= h.sig.Pending()
	}
	execve := func(path string, argv, envv []string) error {
		return procstate.Exec(path, argv, envv, h.st, pending)
	}
	path, err := target.Lookup(h.name, h.search())
	if err == nil {
		err = target.Exec(path, h.name, h.args, h.environ, execve)
	}
	code := target.NotExecutable
	if te, ok := err.(*target.Error); ok {
		code = te.Code
	}
	h.write([]byte(hints.Prefix + "error: " + hints.Escape(err.Error()) + "\n"))
	return code
}

// search is how the target is looked up on PATH: as bash, which expands a
// leading "~" in an entry unless it runs in POSIX mode (POSIXLY_CORRECT
// in its environment).
func (h *handover) search() target.Search {
	s := target.Search{PWD: h.e.Get("PWD")}
	s.Path, s.PathSet = h.e.Getenv("PATH")
	if _, posix := h.e.Getenv("POSIXLY_CORRECT"); !posix {
		s.Tilde = h.tilde
	}
	s.CwdMayHang = func() bool {
		wd, err := unix.Getwd()
		return err != nil || h.e.Locate(wd).Unsafe
	}
	return s
}

// tilde expands the "~" prefix of a PATH entry as bash does: "~" is $HOME
// (even empty; unset, the user's home from /etc/passwd), "~user" that
// user's home, "~+" $PWD (the working directory when unset), "~-"
// $OLDPWD; anything else is left as written.
func (h *handover) tilde(prefix string) (string, bool) {
	switch prefix {
	case "~":
		if home, set := h.e.Getenv("HOME"); set {
			return home, true
		}
	case "~+":
		if pwd, set := h.e.Getenv("PWD"); set {
			return pwd, true
		}
		wd, err := unix.Getwd()
		return wd, err == nil
	case "~-":
		return h.e.Getenv("OLDPWD")
	}
	if strings.Contains(prefix, "$") {
		return "", false // a user name, for bash: none has a "$"
	}
	if home := check.Expand(h.e, prefix); home != prefix {
		return home, true
	}
	return "", false
}

// checksWanted reports whether the start-up checks should run: not when
// NSS_ENTRYPOINT_CHECKS is off, and not for info-only invocations (first
// argument "config", or -h, --help, -V or --version before any "--").
func checksWanted(args []string, e *check.Env) bool {
	switch strings.ToLower(e.Get("NSS_ENTRYPOINT_CHECKS")) {
	case "off", "0", "false", "no":
		return false
	}
	if len(args) > 0 && args[0] == "config" {
		return false
	}
	for _, a := range args {
		switch a {
		case "--":
			return true
		case "-h", "--help", "-V", "--version":
			return false
		}
	}
	return true
}

// parseTimeout reads NSS_ENTRYPOINT_TIMEOUT; a bad value falls back to the
// default with an error that says so.
func parseTimeout(v string) (time.Duration, error) {
	if v == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return DefaultTimeout, fmt.Errorf("NSS_ENTRYPOINT_TIMEOUT=%q is not a positive Go duration (such as 5s or 1500ms); using %s", v, DefaultTimeout)
	}
	return d, nil
}

// pipeBuf is PIPE_BUF on Linux: a pipe that polls writable takes this much
// in one write without blocking.
const pipeBuf = 4096

// writeBounded writes b to fd, giving up after budget so that a full pipe
// cannot hold up the start; errors (closed, broken, full device) are ignored.
// A write still blocked is abandoned: exec ends its thread.
func writeBounded(fd int, b []byte, budget time.Duration) {
	if len(b) == 0 {
		return
	}
	// Fast path: when poll says the descriptor takes a write now and the
	// text fits in one atomic pipe write, write it here, without a goroutine.
	if len(b) <= pipeBuf {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(pfd, 0); err == nil && n == 1 && pfd[0].Revents&unix.POLLOUT != 0 &&
			pfd[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) == 0 {
			writeAll(fd, b)
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeAll(fd, b)
	}()
	t := time.NewTimer(budget)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// writePolled is writeBounded without a goroutine or a timer (a timer
// starts the runtime's poller, which needs two descriptors): it waits for
// fd with poll(2) and writes at most pipeBuf bytes each time it polls
// writable, until budget is spent.
func writePolled(fd int, b []byte, budget time.Duration) {
	end := time.Now().Add(budget)
	for len(b) > 0 {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EINVAL {
			// RLIMIT_NOFILE is 0: poll(2) takes no descriptor at all.
			writeWaiting(fd, b, left)
			return
		}
		if err != nil || n != 1 || pfd[0].Revents&unix.POLLOUT == 0 || pfd[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			return
		}
		m, err := unix.Write(fd, b[:min(len(b), pipeBuf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil || m <= 0 {
			return
		}
		b = b[m:]
	}
}

// writeWaiting writes b from a goroutine while this one waits, in raw
// sleeps of a millisecond, at most budget: for where neither poll(2) nor
// a timer can be used (a timer needs the runtime's poller, and the poller
// descriptors). A write still blocked is abandoned: exec ends its thread.
func writeWaiting(fd int, b []byte, budget time.Duration) {
	var done atomic.Bool
	go func() {
		writeAll(fd, b)
		done.Store(true)
	}()
	for waited := time.Duration(0); !done.Load() && waited < budget; waited += time.Millisecond {
		ts := unix.NsecToTimespec(int64(time.Millisecond))
		unix.Nanosleep(&ts, nil)
	}
}

// writeAll writes b with write(2), retrying on EINTR and short writes, and
// gives up silently on any error.
func writeAll(fd int, b []byte) {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		b = b[n:]
	}
}
