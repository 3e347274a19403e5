package procstate

import (
	"syscall"
	"testing"
)

// A failed exec leaves syscall.ForkLock free: the /bin/sh retry after
// ENOEXEC, and any fork after a failure, must not wait for it.
func TestFailedExecReleasesForkLock(t *testing.T) {
	if !stubArch {
		t.Skip("no entry stub on this architecture")
	}
	st := State{Captured: true}
	for _, path := range []string{"/nonexistent/target", "/dev/null"} {
		if err := Exec(path, []string{path}, nil, st, 0); err == nil {
			t.Fatalf("exec %s succeeded", path)
		}
		if !syscall.ForkLock.TryLock() {
			t.Fatalf("after a failed exec of %s, syscall.ForkLock is still held", path)
		}
		syscall.ForkLock.Unlock()
	}
}
