package cli

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/child"
	"github.com/nvidia-nemo/nss-entrypoint/internal/procstate"
)

// endingSignals are the signals whose default action ends a process and
// for which the Go runtime installs a handler of its own before main: with
// that handler, SIGUSR1 would be swallowed and SIGQUIT would print a
// goroutine dump and exit 2, where a directly started target dies by the
// signal. Realtime signals 35 to 64 are added by startSignals. Not here:
// SIGKILL and SIGSTOP (no handler possible), SIGPIPE (kept with the runtime
// so that a write to a broken stderr returns EPIPE: see entrypoint), SIGPROF
// (the runtime never delivers it to a program), and the signals whose
// default is to ignore or stop (the runtime leaves those to the kernel).
var endingSignals = [...]int{
	int(unix.SIGHUP), int(unix.SIGINT), int(unix.SIGQUIT), int(unix.SIGILL), int(unix.SIGTRAP),
	int(unix.SIGABRT), int(unix.SIGBUS), int(unix.SIGFPE), int(unix.SIGUSR1), int(unix.SIGSEGV),
	int(unix.SIGUSR2), int(unix.SIGALRM), int(unix.SIGTERM), int(unix.SIGSTKFLT), int(unix.SIGXCPU),
	int(unix.SIGXFSZ), int(unix.SIGVTALRM), int(unix.SIGIO), int(unix.SIGPWR), int(unix.SIGSYS),
}

// runtimeNeeds reports whether the Go runtime needs its handler for sig
// (a nil dereference is a SIGSEGV it turns into a panic).
func runtimeNeeds(sig int) bool {
	switch unix.Signal(sig) {
	case unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE:
		return true
	}
	return false
}

// unblockedByRuntime reports whether the Go runtime unblocks sig on its
// threads whatever the mask it started with (its "unblockable" signals).
func unblockedByRuntime(sig int) bool {
	switch unix.Signal(sig) {
	case unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGILL, unix.SIGTRAP, unix.SIGABRT,
		unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGTERM, unix.SIGSTKFLT, unix.SIGSYS:
		return true
	}
	return false
}

// signals makes the check phase answer signals the way the target would
// have: an ending signal ends the entrypoint by that signal (after killing
// the helpers' process groups), an ignored one is ignored, and one that was
// blocked at start is kept to be made pending again in the exec.
type signals struct {
	st procstate.State
	// watch: every ending signal goes through os/signal (helpers run).
	watch   bool
	kids    *child.Groups
	pending atomic.Uint64
	// dying is set, before the helpers are killed, when an ending signal
	// is being acted on: the handover must not start the target then (it
	// would see the probe killed and go on, and the signal would be lost
	// with the entrypoint's image).
	dying atomic.Bool
	// reset are the signals routed through os/signal only so that the
	// helpers die first: quiesce sets them back to their default action.
	reset []int
	// barrier is set while quiesce waits for its sentinel; passed is
	// closed when the loop has taken it.
	barrier atomic.Bool
	passed  chan struct{}
}

// sentinel is the signal quiesce sends itself: the highest number, so that
// the runtime hands os/signal every signal it caught before the sentinel
// first (it delivers the ones waiting in increasing order).
const sentinel = 64

// startSignals sets up the check phase's signal handling. With helpers
// to run (watch), every ending signal goes through os/signal, so that the
// helpers are killed before the entrypoint dies; without, the dispositions
// are set straight back to what they were at start (SIG_DFL or SIG_IGN) with
// raw rt_sigaction, which costs a few microseconds and no thread, and
// os/signal is used only for the rare signals that the runtime needs or
// that were blocked at start.
func startSignals(st procstate.State, kids *child.Groups, watch bool) *signals {
	s := &signals{st: st, kids: kids, watch: watch}
	if !st.Captured {
		return s
	}
	var notify []os.Signal
	plan := func(sig int) {
		ign, blk := procstate.Has(st.Ignored, sig), procstate.Has(st.Mask, sig)
		switch {
		case ign && !runtimeNeeds(sig):
			procstate.Ignore(sig)
		case ign || watch || blk && unblockedByRuntime(sig):
			notify = append(notify, syscall.Signal(sig))
			if !ign && !blk && !runtimeNeeds(sig) {
				s.reset = append(s.reset, sig)
			}
		case runtimeNeeds(sig):
			// Left with the runtime: see README, "What the target inherits".
		default:
			procstate.Default(sig)
		}
	}
	for _, sig := range endingSignals {
		plan(sig)
	}
	// Realtime signals: only with helpers, or when one was ignored or
	// blocked at start. Without helpers the check phase lasts a fraction of
	// a millisecond, and 30 more system calls would cost a tenth of what
	// the checks cost; a realtime signal sent in that window is swallowed
	// by the runtime (README, "What the target inherits").
	for sig := 35; sig <= 64; sig++ {
		if watch || procstate.Has(st.Ignored|st.Mask, sig) {
			plan(sig)
		}
	}
	// Signals that do not end a process but were ignored at start: make
	// them ignored again now (SIGPIPE stays with the runtime, see above;
	// SIGURG is the runtime's preemption signal and SIGPROF its profiler's,
	// both restored to SIG_IGN in the exec).
	for _, sig := range []unix.Signal{unix.SIGCHLD, unix.SIGCONT, unix.SIGWINCH, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU} {
		if procstate.Has(st.Ignored, int(sig)) {
			procstate.Ignore(int(sig))
		}
	}
	// SIGCHLD blocked at start: the runtime unblocks it on its threads and
	// its handler would take one that arrives (the helpers are siblings, so
	// none of theirs comes here): kept to be made pending. (SIGURG is the
	// runtime's preemption signal and SIGPROF its profiler's: see README.)
	if procstate.Has(st.Mask, int(unix.SIGCHLD)) && !procstate.Has(st.Ignored, int(unix.SIGCHLD)) {
		notify = append(notify, unix.SIGCHLD)
	}
	if len(notify) > 0 {
		s.passed = make(chan struct{})
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, notify...)
		go s.loop(ch)
	}
	return s
}

func (s *signals) loop(ch chan os.Signal) {
	for v := range ch {
		sig := int(v.(syscall.Signal))
		switch {
		case sig == sentinel && s.barrier.CompareAndSwap(true, false):
			close(s.passed)
		case procstate.Has(s.st.Ignored, sig):
		case procstate.Has(s.st.Mask, sig):
			s.pending.Or(procstate.Bit(sig))
		case unix.Getpid() == 1:
			// The init of a PID namespace (no tini: docker run
			// --entrypoint nss-entrypoint, a Kubernetes command): the
			// kernel drops a signal left at its default action, from
			// inside or outside the namespace, so the target started
			// directly would run on. So do the checks. (Asked only when
			// a signal comes.)
		default:
			s.dying.Store(true)
			s.kids.Kill()
			die(sig)
		}
	}
}

// die ends the process by sig, as the signal's default action would.
func die(sig int) {
	procstate.Default(sig)
	procstate.Unblock(sig)
	unix.Kill(unix.Getpid(), unix.Signal(sig))
	// A signal whose default action does not end the process ends up here.
	time.Sleep(time.Second)
	os.Exit(128 + sig)
}

// Pending returns the signals to make pending again in the exec.
func (s *signals) Pending() uint64 { return s.pending.Load() }

// quiesce closes the window between a signal being caught and the loop
// acting on it, which the exec would otherwise end with the signal lost (a
// docker stop during the handover ignored): the signals in reset get their
// default action back, so that one arriving from now on ends the process at
// once, as it would the target; then the process sends itself the sentinel
// and waits (at most 100 ms) for the loop to take it, by which time every
// signal caught before has been acted on. It does not return when one is.
func (s *signals) quiesce() {
	if s == nil || s.passed == nil {
		return
	}
	withSentinel := false
	for _, sig := range s.reset {
		if sig == sentinel {
			withSentinel = true
			continue
		}
		procstate.Default(sig)
	}
	if withSentinel {
		s.barrier.Store(true)
		unix.Kill(unix.Getpid(), sentinel)
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-s.passed:
		case <-t.C:
		}
		t.Stop()
		procstate.Default(sentinel)
	}
	s.awaitDeath()
}

// faultsToDefault gives SIGSEGV, SIGBUS and SIGFPE their default action
// for the handover, where the checks left them with the runtime (no
// helpers, and neither ignored nor blocked at start: see startSignals).
// The runtime's handler turns a nil dereference into a panic, which the
// checks recover from; but one of these sent by kill(2) makes it print a
// crash report on stderr, and a stderr that is a full pipe (the hints'
// write waiting on it) then held the process for ever, where the target
// would have died by the signal. From the handover on, such a signal ends
// the entrypoint as it would the target; a fault of the handover's own
// code does too, without a Go traceback.
func (s *signals) faultsToDefault() {
	if s == nil || !s.st.Captured || s.watch {
		return
	}
	for _, sig := range []unix.Signal{unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE} {
		if !procstate.Has(s.st.Ignored|s.st.Mask, int(sig)) {
			procstate.Default(int(sig))
		}
	}
}

// awaitDeath does not return when an ending signal is being acted on: the
// goroutine that took it ends the process by it.
func (s *signals) awaitDeath() {
	if s == nil || !s.dying.Load() {
		return
	}
	for {
		time.Sleep(time.Second)
	}
}
