// Package gpuhelper runs nss-gpu-probe as a child process with a deadline and
// turns whatever it does (report, crash, hang, garbage, missing binary) into
// an Outcome. It never links NVML itself.
package gpuhelper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

// Failure names why no report came back.
type Failure string

// The ways the helper can fail. None means a report was read.
const (
	None     Failure = ""
	Missing  Failure = "missing"
	Crashed  Failure = "crashed"
	TimedOut Failure = "timed-out"
	Garbage  Failure = "garbage"
	Exited   Failure = "exited"
)

// Outcome is the result of one helper run.
type Outcome struct {
	Report  *gpureport.Report
	Failure Failure
	// Detail explains a failure in a few words (a signal, an exit status, the
	// last line the helper wrote on stderr).
	Detail string
	// Path is the helper that was run or looked for.
	Path    string
	Elapsed time.Duration
}

// maxReport bounds what is read from the helper's stdout.
const maxReport = 1 << 20

// Run starts the helper at path with args and environ (LD_BIND_NOW
// removed: go-nvml needs lazy binding) and waits for its report until ctx ends, when it kills
// the helper and reaps it. Run always returns after the helper has exited or
// been killed, so no child outlives it.
func Run(ctx context.Context, path string, environ []string, args ...string) Outcome {
	start := time.Now()
	out := Outcome{Path: path}
	defer func() { out.Elapsed = time.Since(start) }()

	if path == "" {
		out.Failure, out.Detail = Missing, "the path of nss-entrypoint could not be found"
		return out
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		out.Failure, out.Detail = Missing, fmt.Sprintf("%s does not exist", path)
		return out
	}

	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = maxReport, 4096
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = helperEnv(environ)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 200 * time.Millisecond
	err := cmd.Run()

	switch {
	case ctx.Err() != nil && (err != nil || stdout.Len() == 0):
		out.Failure = TimedOut
		out.Detail = "no report before the deadline"
		return out
	case err != nil:
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				out.Failure = Crashed
				out.Detail = fmt.Sprintf("killed by signal %s", signalName(ws.Signal()))
				return out
			}
			// The Go runtime turns a fatal signal inside C code into a
			// traceback and exit status 2; the signal is named on stderr.
			if sig := goSignal(stderr.String()); sig != "" {
				out.Failure = Crashed
				out.Detail = "crashed with " + sig
				return out
			}
			out.Failure = Exited
			out.Detail = fmt.Sprintf("exit status %d", exitErr.ExitCode())
			if line := firstLine(stderr.String()); line != "" {
				out.Detail += ": " + line
			}
			return out
		}
		out.Failure, out.Detail = Missing, err.Error()
		return out
	}
	rep, perr := gpureport.Parse(stdout.Bytes())
	if perr != nil {
		out.Failure = Garbage
		out.Detail = perr.Error()
		return out
	}
	out.Report = rep
	return out
}

// helperEnv copies environ without LD_BIND_NOW.
func helperEnv(environ []string) []string {
	env := make([]string, 0, len(environ))
	for _, kv := range environ {
		if strings.HasPrefix(kv, "LD_BIND_NOW=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// goSignal finds the "SIGSEGV: segmentation violation" line of a Go crash
// and returns the signal's name, or "".
func goSignal(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		name, _, ok := strings.Cut(line, ": ")
		if ok && strings.HasPrefix(name, "SIG") && len(name) <= 10 && strings.ToUpper(name) == name {
			return name
		}
	}
	return ""
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// signalName names a signal as the C headers do ("SIGSEGV"), or by number
// when the platform does not know it.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// limitedBuffer keeps the first limit bytes written and drops the rest, so a
// helper that floods its output cannot exhaust memory or block.
type limitedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}

var _ io.Writer = (*limitedBuffer)(nil)

// SiblingPath returns the program name in the directory of the running
// executable (argv0 when /proc/self/exe cannot be read and argv0 is
// absolute), or "" when neither tells where that is. The image installs its
// binaries side by side.
func SiblingPath(name, argv0 string) string {
	self, err := os.Executable()
	if err != nil {
		if !strings.HasPrefix(argv0, "/") {
			return ""
		}
		self = argv0
	}
	dir := self[:strings.LastIndexByte(self, '/')+1]
	return dir + name
}
