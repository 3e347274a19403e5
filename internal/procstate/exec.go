package procstate

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oldMask is rawExec's scratch for the mask it replaces.
//
//lint:ignore U1000 used by the assembly
var oldMask uint64

// Exec replaces the process with path, run with argv and envv, in the state
// the process started with: the signal mask of s, the signals ignored then
// ignored again (the Go runtime had replaced them with its handlers), the
// standard descriptors closed then closed again, and RLIMIT_NOFILE as it
// was. pending are signals that arrived while blocked at entry would have
// kept them pending: they are made pending again, so the target receives
// them when it unblocks them. Without a captured state it is syscall.Exec.
// It returns only on failure.
func Exec(path string, argv, envv []string, s State, pending uint64) error {
	if !s.Captured || !stubArch {
		return syscall.Exec(path, argv, envv)
	}
	pathp, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	// The environment Environ read from the kernel's vector goes on as
	// that vector, not copied: a copy costs its size again in memory
	// (README, "What the target inherits").
	envPtr := kernelVector(envv)
	if envPtr == nil {
		vec, err := syscall.SlicePtrFromStrings(envv)
		if err != nil {
			return err
		}
		envPtr = unsafe.Pointer(&vec[0])
	}
	// No fork may run while the process is replaced: a child forked at
	// that moment would become the target's. A fork whose exec hangs (its
	// program on a dead mount) holds the lock for good: wait a moment at
	// most, then go on.
	locked := syscall.ForkLock.TryLock()
	for i := 0; i < 100 && !locked; i++ {
		time.Sleep(time.Millisecond)
		locked = syscall.ForkLock.TryLock()
	}
	if s.NofileSet {
		lim := unix.Rlimit{Cur: s.Nofile[0], Max: s.Nofile[1]}
		_ = unix.Prlimit(0, unix.RLIMIT_NOFILE, &lim, nil)
	}
	for sig := 1; sig <= 64; sig++ {
		if Has(s.Ignored, sig) {
			SetDisposition(sig, handlerIgnore)
		}
	}
	var closed []int
	for fd, c := range s.ClosedStd {
		if c {
			closed = append(closed, fd)
		}
	}
	// The runtime opened /dev/null on these; close them again. A message
	// written after a failed exec goes nowhere then, as it would have.
	for _, fd := range closed {
		unix.Close(fd)
	}
	mask := s.Mask
	errno := rawExec(unsafe.Pointer(pathp), unsafe.Pointer(&argvp[0]), envPtr, &mask, pending)
	// Still here: let forks run again (the /bin/sh retry after ENOEXEC
	// takes the lock anew).
	if locked {
		syscall.ForkLock.Unlock()
	}
	return syscall.Errno(errno)
}

// The dispositions SetDisposition sets.
const (
	handlerDefault = 0
	handlerIgnore  = 1
)

// Default sets the disposition of sig to SIG_DFL behind the Go runtime's
// back, with a raw rt_sigaction.
func Default(sig int) { SetDisposition(sig, handlerDefault) }

// Ignore sets the disposition of sig to SIG_IGN with a raw rt_sigaction.
func Ignore(sig int) { SetDisposition(sig, handlerIgnore) }

// SetDisposition sets sig's handler to SIG_DFL (0) or SIG_IGN (1) with a
// raw rt_sigaction; the kernel's struct starts with the handler, and the
// rest (flags, restorer, mask) is left zero.
func SetDisposition(sig int, handler uintptr) {
	var act [4]uint64
	act[0] = uint64(handler)
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act[0])), 0, 8, 0, 0)
}

// Action is a signal's disposition as the kernel's rt_sigaction reads and
// writes it: handler, flags, restorer and mask.
type Action [4]uint64

// IgnoreFor sets sig to SIG_IGN with a raw rt_sigaction and returns the
// action it had, for Restore: whatever it was (the Go runtime's handler,
// one os/signal relies on, or SIG_DFL) is put back as it was.
func IgnoreFor(sig int) Action {
	var act, old Action
	act[0] = handlerIgnore
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act[0])), uintptr(unsafe.Pointer(&old[0])), 8, 0, 0)
	return old
}

// Restore puts back an action IgnoreFor returned.
func Restore(sig int, a Action) {
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&a[0])), 0, 8, 0, 0)
}

// Unblock removes sig from the calling thread's signal mask.
func Unblock(sig int) {
	set := Bit(sig)
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_UNBLOCK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
}
