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
	cmd, done := startHelper(t)
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

// Kill waits for a helper whose fork is under way, and that helper is
// killed as it is registered: the entrypoint cannot die between the fork
// and the registration and leave it running.
func TestKillWaitsForAHelperBeingStarted(t *testing.T) {
	var g Groups
	g.starts()
	killed := make(chan struct{})
	go func() {
		g.Kill()
		close(killed)
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-killed:
		t.Fatal("Kill returned while a helper was being started")
	default:
	}
	cmd, done := startHelper(t)
	g.started(cmd.Process.Pid)
	<-killed
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("the helper started during Kill was left running")
	}
}

// startHelper starts a sleeping helper in a process group of its own, as
// Run starts one; done receives its end.
func startHelper(t *testing.T) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, done
}
