package cudaprobe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// ProgressPrefix starts the lines a stage child writes on stderr before
// each call, so that its parent can say where it hung or crashed.
const ProgressPrefix = "nss-cuda-stage: "

// RunStage runs the CUDA stage in a child process, exe with args (the probe
// itself with its --cuda-stage flag), and returns its answer. At deadline
// the child is killed: the answer then says which call it was in, as it
// does when the child crashed. RunStage returns only after the child has
// exited or been killed.
func RunStage(exe string, args, environ []string, deadline time.Time) gpureport.CUDA {
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 100 * time.Millisecond
	// Should the probe itself be killed first (its caller's deadline), the
	// kernel kills the stage too: a child hung in cuInit must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	elapsed := time.Since(start)

	fail := func(name, msg string) gpureport.CUDA {
		return gpureport.CUDA{DeviceCount: -1, Devices: []gpureport.CUDADevice{}, StageMillis: millis(elapsed),
			Error: &gpureport.CUDAError{Function: lastCall(stderr.String()), Code: gpureport.CUDAStageFailed, Name: name, Message: msg}}
	}
	if ctx.Err() != nil && err != nil {
		return fail("TIMEOUT", fmt.Sprintf("no answer after %s", elapsed.Round(time.Millisecond)))
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return fail("CRASHED", "killed by "+sigName(ws.Signal()))
			}
			if sig := goCrashSignal(stderr.String()); sig != "" {
				return fail("CRASHED", "crashed with "+sig)
			}
			return fail("EXITED", fmt.Sprintf("exit status %d", ee.ExitCode()))
		}
		return fail("NOT_STARTED", err.Error())
	}
	var rep gpureport.CUDA
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		return fail("GARBAGE", "unreadable answer: "+jerr.Error())
	}
	rep.StageMillis = millis(elapsed)
	if rep.Devices == nil {
		rep.Devices = []gpureport.CUDADevice{}
	}
	return rep
}

// lastCall returns the call named by the last progress line, or "dlopen".
func lastCall(stderr string) string {
	call := "dlopen"
	for _, line := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(line, ProgressPrefix); ok && rest != "" {
			call = rest
		}
	}
	return call
}

// goCrashSignal finds the "SIGSEGV: segmentation violation" line the Go
// runtime writes when a fatal signal arrives in C code (it then exits 2),
// and returns the signal's name, or "".
func goCrashSignal(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		name, _, ok := strings.Cut(line, ": ")
		if ok && strings.HasPrefix(name, "SIG") && len(name) <= 10 && strings.ToUpper(name) == name {
			return name
		}
	}
	return ""
}

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGBUS:
		return "SIGBUS"
	case syscall.SIGKILL:
		return "SIGKILL"
	}
	return fmt.Sprintf("signal %d", int(sig))
}
