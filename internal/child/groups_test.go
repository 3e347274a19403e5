package child

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// A helper registered after Kill (forked while a signal was being acted
// on) is killed as it is registered: it cannot outlive the entrypoint.
func TestHelperRegisteredAfterKillIsKilled(t *testing.T) {
	var g Groups
	g.Kill()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	g.add(cmd.Process.Pid)
	select {
	case <-done:
		if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("the helper ended with %v, want SIGKILL", ws)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("a helper registered after Kill was left running")
	}
}
