package cudaprobe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
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
	// Both streams are bounded: a library that floods them, or a count of
	// devices it never had, must not grow this process.
	stdout := limitedBuffer{limit: maxAnswer}
	var stderr progressWriter
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 100 * time.Millisecond
	// Should the probe itself be killed first (its caller's deadline), the
	// kernel kills the stage too: a child hung in cuInit must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	elapsed := time.Since(start)
	if errors.Is(err, exec.ErrWaitDelay) {
		// The stage exited 0 but something it started (a process libcuda
		// forked) still holds its output: what the stage wrote is whole.
		err = nil
	}

	fail := func(name, msg string) gpureport.CUDA {
		return gpureport.CUDA{DeviceCount: -1, Devices: []gpureport.CUDADevice{}, StageMillis: millis(elapsed),
			Error: &gpureport.CUDAError{Function: stderr.lastCall(), Code: gpureport.CUDAStageFailed, Name: name, Message: msg}}
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
			if sig := goCrashSignal(stderr.head.String()); sig != "" {
				return fail("CRASHED", "crashed with "+sig)
			}
			return fail("EXITED", fmt.Sprintf("exit status %d", ee.ExitCode()))
		}
		return fail("NOT_STARTED", err.Error())
	}
	rep, extra, perr := parseAnswer(stdout.Bytes())
	if perr != nil {
		msg := "unreadable answer: " + perr.Error()
		if extra != "" {
			msg = "unreadable answer: libcuda wrote to standard output (" + extra + ")"
		}
		return fail("GARBAGE", msg)
	}
	rep.StageMillis = millis(elapsed)
	if rep.Devices == nil {
		rep.Devices = []gpureport.CUDADevice{}
	}
	return rep
}

// maxAnswer bounds the stage's answer: MaxDevices devices fit many times.
const maxAnswer = 1 << 20

// parseAnswer reads the stage's answer, the JSON document on the last line
// of its standard output. Anything libcuda printed before it is passed over
// and returned as extra (quoted, cut short) so that an unreadable answer can
// say where it came from.
func parseAnswer(out []byte) (gpureport.CUDA, string, error) {
	var rep gpureport.CUDA
	body := bytes.TrimRight(out, "\n")
	var before []byte
	if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
		before, body = body[:i+1], body[i+1:]
	}
	if i := bytes.Index(body, []byte(`{"`)); i > 0 {
		before, body = append(before, body[:i]...), body[i:]
	}
	err := json.Unmarshal(body, &rep)
	extra := ""
	if len(before) > 0 {
		extra = strconv.QuoteToASCII(string(before[:min(len(before), 80)]))
	}
	return rep, extra, err
}

// limitedBuffer keeps the first limit bytes written and drops the rest.
type limitedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// progressWriter reads the stage's standard error as it comes: it keeps the
// call named by the last progress line and the first few KiB of the other
// lines (where a Go crash names its signal), in bounded memory however
// many lines arrive.
type progressWriter struct {
	last    string
	partial []byte
	head    limitedBuffer
}

const maxLine = 512

func (w *progressWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.head.limit == 0 {
		w.head.limit = 8 << 10
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxLine - len(w.partial); room > 0 {
			w.partial = append(w.partial, chunk[:min(len(chunk), room)]...)
		}
		if i < 0 {
			break
		}
		w.line(w.partial)
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (w *progressWriter) line(l []byte) {
	if rest, ok := bytes.CutPrefix(l, []byte(ProgressPrefix)); ok {
		if len(rest) > 0 {
			w.last = string(rest)
		}
		return
	}
	w.head.Write(l)
	w.head.Write([]byte{'\n'})
}

// lastCall returns the call named by the last progress line, or "dlopen".
func (w *progressWriter) lastCall() string {
	if len(w.partial) > 0 {
		w.line(w.partial)
		w.partial = w.partial[:0]
	}
	if w.last == "" {
		return "dlopen"
	}
	return w.last
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
