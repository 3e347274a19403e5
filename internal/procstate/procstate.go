// Package procstate keeps the process state that nss-entrypoint was started
// with and that the Go runtime changes before main runs, and restores it in
// the exec that hands over to the target.
//
// The Go runtime, before any Go code runs, installs its own handlers for
// most signals (forgetting which were ignored), unblocks on every thread the
// signals it needs, opens /dev/null on a closed descriptor 0, 1 or 2, and
// raises RLIMIT_NOFILE. A direct start of the target sees none of that. So
// nss-entrypoint's ELF entry point is Entry, a few instructions of assembly
// that record the signal mask, the ignored signals, the closed standard
// descriptors and RLIMIT_NOFILE with raw system calls, put GOMAXPROCS=1
// and the defaults of the runtime's other settings ahead of the environment
// the runtime reads (runtimeEnv), and then jump to the Go runtime's own
// entry point. The binary must be linked with
// -ldflags=-E=<EntrySymbol>; Captured reports whether that happened.
//
// It is on the start path: it imports nothing but the standard library and
// golang.org/x/sys/unix.
package procstate

import "unsafe"

// EntrySymbol is the linker name of the entry stub, for go build
// -ldflags "-E ...".
const EntrySymbol = "github.com/nvidia-nemo/nss-entrypoint/internal/procstate.entry"

// Written by the entry stub before the Go runtime starts; read-only after.
var (
	captured uint64    // 1 once the stub has run
	sigMask  uint64    // the signal mask at entry; bit n-1 is signal n
	sigIgn   uint64    // signals whose disposition was SIG_IGN at entry
	stdClose uint64    // bit n: descriptor n (0, 1, 2) was closed at entry
	nofile   [2]uint64 // RLIMIT_NOFILE at entry: soft, hard
	nofileOK uint64    // 1 when nofile was read
	// sigPend are the signals blocked and pending at entry, which the stub
	// took off (the runtime unblocks some, and a pending SIGTERM would
	// then end the process before main).
	sigPend uint64
	//lint:ignore U1000 used by the assembly
	sigWait uint64 // scratch: the set rt_sigtimedwait waits for
	//lint:ignore U1000 used by the assembly
	zeroTime [2]int64 // a zero timeout for rt_sigtimedwait
	// envp is the kernel's environment vector on the initial stack, which
	// the Go runtime keeps mapped (os.Args points into the same area).
	envp unsafe.Pointer
	//lint:ignore U1000 used by the assembly
	sigact [8]uint64 // scratch for rt_sigaction's old action
	// pdeathSig is the main thread's parent-death signal (prctl), which a
	// new thread does not inherit: rawExec sets it on the exec's thread.
	//lint:ignore U1000 used by the assembly
	pdeathSig uint64
	// schedReset is 1 when the main thread's policy has
	// SCHED_RESET_ON_FORK (new threads then start at SCHED_OTHER, nice 0):
	// rawExec sets schedPolicy, schedParam and schedNice (getpriority's
	// raw 20 - nice) on the exec's thread.
	//lint:ignore U1000 used by the assembly
	schedReset, schedPolicy, schedNice uint64
	//lint:ignore U1000 used by the assembly
	schedParam [2]uint64
)

// runtimeEnv holds the six environment entries the entry stub puts ahead
// of the kernel's environment in the vector the Go runtime reads (not in
// the one Environ returns, which the checks read and the target gets),
// each in 16 bytes, NUL-terminated. The runtime reads the first of a name,
// so the user's own values of these reach only the target.
//
// GOMAXPROCS=1: the runtime starts with one P. With more, it starts
// threads to run goroutines that the start path does not need run in
// parallel: each costs a clone and a wake-up on every start, and a thread
// it cannot create (RLIMIT_NPROC, a container's pids.max) aborts the
// runtime before main. (Where helpers run, the entrypoint raises it to 2.)
//
// GOMEMLIMIT=, GOGC=, GOTRACEBACK=, GODEBUG=: the defaults, whatever the
// user set for their own programs: a GOMEMLIMIT the runtime cannot parse
// ("4G") aborts it before main, GOGC=off lets the heap grow without bound,
// and GODEBUG's traces (inittrace, gctrace, schedtrace) write to stderr
// from the runtime, where a full stderr pipe would block the start.
//
// The sixth entry is empty: it names nothing and is there so that the
// stack the stub hands on moves by a multiple of 16 bytes.
//
//lint:ignore U1000 used by the assembly
var runtimeEnv = [96]byte{
	'G', 'O', 'M', 'A', 'X', 'P', 'R', 'O', 'C', 'S', '=', '1', 0, 0, 0, 0,
	'G', 'O', 'M', 'E', 'M', 'L', 'I', 'M', 'I', 'T', '=', 0, 0, 0, 0, 0,
	'G', 'O', 'G', 'C', '=', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	'G', 'O', 'T', 'R', 'A', 'C', 'E', 'B', 'A', 'C', 'K', '=', 0, 0, 0, 0,
	'G', 'O', 'D', 'E', 'B', 'U', 'G', '=', 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
}

// State is what the process started with.
type State struct {
	// Captured is false when the binary was linked without the entry stub
	// (or on an architecture without one): the other fields are then zero
	// and nothing is restored.
	Captured bool
	// Mask is the signal mask at entry: bit n-1 is signal n.
	Mask uint64
	// Ignored are the signals whose disposition was SIG_IGN at entry.
	Ignored uint64
	// ClosedStd says which of descriptors 0, 1 and 2 were closed at entry.
	ClosedStd [3]bool
	// Pending are the signals that were blocked and pending at entry:
	// they are to be made pending again in the exec (Exec's pending).
	Pending uint64
	// NofileSet says whether Nofile holds RLIMIT_NOFILE at entry.
	NofileSet bool
	// Nofile is RLIMIT_NOFILE at entry: soft, hard.
	Nofile [2]uint64
}

// Initial returns the state recorded at entry.
func Initial() State {
	if captured != 1 {
		return State{}
	}
	return State{
		Captured:  true,
		Mask:      sigMask,
		Ignored:   sigIgn,
		Pending:   sigPend,
		ClosedStd: [3]bool{stdClose&1 != 0, stdClose&2 != 0, stdClose&4 != 0},
		NofileSet: nofileOK == 1,
		Nofile:    nofile,
	}
}

// Has reports whether signal sig is in the set.
func Has(set uint64, sig int) bool {
	return sig >= 1 && sig <= 64 && set&(1<<(sig-1)) != 0
}

// Bit returns the set holding only signal sig.
func Bit(sig int) uint64 {
	if sig < 1 || sig > 64 {
		return 0
	}
	return 1 << (sig - 1)
}
