package main_test

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// launchEnv makes the test binary a launcher: it sets up process state that
// a shell cannot (a blocked signal mask), then execs os.Args[1:]. Its value
// is "block=15,17;ignore=3,12;close=0,2".
const launchEnv = "NSS_TEST_LAUNCH"

// launched returns the command line and environment that start argv
// through the launcher with the given state.
func launched(spec string, argv []string, env []string) ([]string, []string) {
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return append([]string{self}, argv...), append(env, launchEnv+"="+spec)
}

// launch runs in the re-executed test binary: it never returns.
func launch() {
	runtime.LockOSThread()
	spec := os.Getenv(launchEnv)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, launchEnv+"=") {
			env = append(env, kv)
		}
	}
	var closeFDs []int
	for _, part := range strings.Split(spec, ";") {
		key, list, _ := strings.Cut(part, "=")
		for _, f := range strings.Split(list, ",") {
			if f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil {
				panic(err)
			}
			switch key {
			case "block":
				set := uint64(1) << (n - 1)
				unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
			case "ignore":
				act := [4]uint64{1} // SIG_IGN
				unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(n), uintptr(unsafe.Pointer(&act[0])), 0, 8, 0, 0)
			case "close":
				closeFDs = append(closeFDs, n)
			case "tkill": // pending on this thread, the one that execs
				unix.Tgkill(unix.Getpid(), unix.Gettid(), syscall.Signal(n))
			}
		}
	}
	for _, fd := range closeFDs {
		unix.Close(fd)
	}
	err := syscall.Exec(os.Args[1], os.Args[1:], env)
	os.Stderr.WriteString("launch: " + err.Error() + "\n")
	os.Exit(111)
}
