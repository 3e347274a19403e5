// Package gpuhelper runs nss-gpu-probe with a deadline, through package
// child (its own process group, a sibling of the entrypoint, output read
// with a bound), and turns whatever it does (report, crash, hang, garbage,
// flood, each reason it cannot start) into an Outcome. It never links NVML
// itself.
package gpuhelper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/child"
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
	// Flood: the helper printed more than maxReport; it was killed.
	Flood Failure = "flood"
	// IsDirectory: the helper's path is a directory.
	IsDirectory Failure = "is-directory"
	// NotExecutable: the file has no execute permission for us, or sits
	// on a filesystem mounted noexec (EACCES).
	NotExecutable Failure = "not-executable"
	// BadFormat: the kernel cannot run the file (ENOEXEC): another
	// architecture, or a truncated binary.
	BadFormat Failure = "bad-format"
	// NoProcesses: fork failed with EAGAIN: RLIMIT_NPROC (ulimit -u) or
	// the cgroup's pids.max is used up.
	NoProcesses Failure = "no-processes"
	// NoThreads: the helper started but could not create a thread (its Go
	// runtime, or cgo's pthread_create, failed with EAGAIN and aborted):
	// RLIMIT_NPROC or pids.max again, with room for a process but not for
	// the threads it needs.
	NoThreads Failure = "no-threads"
	// ThreadMemory: the helper started but a thread's stack could not be
	// mapped: an address-space limit (ulimit -v), a huge stack limit
	// (ulimit -s, the default size of a thread's stack), or memory.
	ThreadMemory Failure = "thread-memory"
	// BudgetSpent: the probe ran out of its --budget and ended itself
	// without a report (gpureport.BudgetSpent on its stderr). Its caller
	// kills it at the deadline first, so this reaches the caller only
	// where both were stopped meanwhile (a paused container).
	BudgetSpent Failure = "budget-spent"
	// RuntimeMemory: the helper's Go runtime could not reserve the address
	// space it starts with (a Go "fatal error: ... out of memory" before
	// main): an address-space limit (ulimit -v), or memory.
	RuntimeMemory Failure = "runtime-memory"
	// NoDescriptors: the pipes for its output could not be made (EMFILE,
	// ENFILE): the descriptor table is full.
	NoDescriptors Failure = "no-descriptors"
	// NoMemory: fork failed with ENOMEM.
	NoMemory Failure = "no-memory"
	// NoLoader: the file is there but its ELF interpreter (glibc's ld.so)
	// is not (ENOENT from exec of an existing file).
	NoLoader Failure = "no-loader"
	// StartFailed: any other error of fork or exec.
	StartFailed Failure = "start-failed"
)

// Outcome is the result of one helper run.
type Outcome struct {
	Report  *gpureport.Report
	Failure Failure
	// Detail explains a failure in a few words (a signal, an exit status, the
	// last line the helper wrote on stderr).
	Detail string
	// HeldOpen is true when the helper delivered its report and exited but
	// a process it started kept its output open; that process was killed.
	HeldOpen bool
	// Other is what else the helper printed on stdout around its report
	// (a library's message), cut to maxOther bytes; "" when nothing.
	Other string
	// Path is the helper that was run or looked for.
	Path    string
	Elapsed time.Duration
}

// reportStart is how the probe's report begins: encoding/json writes the
// fields in order, and SchemaVersion is the first.
const reportStart = `{"schema_version":`

// maxOther bounds what is kept of other output around the report.
const maxOther = 512

// parseReport reads the probe's report from its stdout. The probe writes it
// as one line, but a library it loads may print on stdout too, before it or
// after it: when the whole output is not a report, the line that starts as
// a report does is read alone, and the rest is returned, cut to maxOther
// bytes. The error is the whole output's when no line is a report.
func parseReport(stdout []byte) (*gpureport.Report, string, error) {
	rep, err := gpureport.Parse(stdout)
	if err == nil {
		return rep, "", nil
	}
	for rest, off := stdout, 0; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		if bytes.HasPrefix(line, []byte(reportStart)) {
			if r, lerr := gpureport.Parse(line); lerr == nil {
				other := append(append([]byte(nil), stdout[:off]...), stdout[off+len(line):]...)
				other = bytes.TrimSpace(other)
				if len(other) > maxOther {
					other = other[:maxOther]
				}
				return r, string(other), nil
			}
		}
		rest, off = rest[len(line):], off+len(line)
	}
	return nil, "", err
}

// maxReport bounds what is read from the helper's stdout: a real report is
// a few KiB per GPU. maxStderr bounds what is kept of its stderr.
const (
	maxReport = 1 << 20
	maxStderr = 4096
)

// Run is RunIn without a record of process groups.
func Run(ctx context.Context, path string, environ []string, args ...string) Outcome {
	return RunIn(ctx, path, environ, nil, args...)
}

// RunIn starts the helper at path with args and environ (LD_BIND_NOW removed:
// go-nvml needs lazy binding) and waits for its report until ctx ends. The
// helper runs in a process group of its own, recorded in groups while it
// runs, as a sibling of this process (package child): when RunIn returns the
// group has been killed, and a helper stuck in the kernel is never this
// process's child. At most maxReport bytes of output are held.
func RunIn(ctx context.Context, path string, environ []string, groups *child.Groups, args ...string) Outcome {
	start := time.Now()
	out := Outcome{Path: path}
	defer func() { out.Elapsed = time.Since(start) }()

	if path == "" {
		out.Failure, out.Detail = Missing, "the path of nss-entrypoint could not be found"
		return out
	}
	res := child.Run(ctx, child.Spec{Path: path, Argv: append([]string{path}, args...), Env: helperEnv(environ),
		StdoutLimit: maxReport, StderrLimit: maxStderr, Groups: groups})
	if res.StartErr != nil {
		out.Failure, out.Detail = startFailure(path, res.StartErr)
		return out
	}
	stderr := string(res.Stderr)
	switch {
	case res.Overflow:
		out.Failure, out.Detail = Flood, fmt.Sprintf("it printed more than %d bytes and was stopped", maxReport)
		return out
	case res.TimedOut:
		out.Failure, out.Detail = TimedOut, "no report before the deadline"
		if rep, other, err := parseReport(res.Stdout); err == nil {
			// The report is complete; only the exit was late.
			out.Failure, out.Detail, out.Report, out.Other = None, "", rep, other
		}
		return out
	}
	if rep, other, err := parseReport(res.Stdout); err == nil {
		out.Report, out.HeldOpen, out.Other = rep, res.HeldOpen, other
		return out
	} else if len(bytes.TrimSpace(res.Stdout)) > 0 {
		out.Failure, out.Detail = Garbage, err.Error()
		return out
	}
	ws := res.Status
	noThread, noMemory := threadFailure(stderr), runtimeMemoryFailure(stderr)
	switch {
	case noThread != "":
		// Before the signal: cgo aborts (SIGABRT) when pthread_create
		// fails, which is not a crash in the driver.
		out.Failure, out.Detail = threadCause(noThread, rlimit(unix.RLIMIT_AS), rlimit(unix.RLIMIT_STACK))
	case noMemory != "":
		out.Failure, out.Detail = RuntimeMemory, withAddressSpace(noMemory, rlimit(unix.RLIMIT_AS))
	case ws != nil && ws.Signaled():
		out.Failure, out.Detail = Crashed, "killed by signal "+signalName(ws.Signal())
	case goSignal(stderr) != "":
		// The Go runtime turns a fatal signal inside C code into a
		// traceback and exit status 2; the signal is named on stderr.
		out.Failure, out.Detail = Crashed, "crashed with "+goSignal(stderr)
	case strings.HasPrefix(firstLine(stderr), gpureport.BudgetSpent):
		out.Failure, out.Detail = BudgetSpent, "it ran out of its time and ended itself without a report"
	case res.HeldOpen:
		out.Failure, out.Detail = Exited, "it exited without a report, and a process it started kept its output open"
	case ws != nil:
		out.Failure, out.Detail = Exited, fmt.Sprintf("exit status %d", ws.ExitStatus())
	default:
		out.Failure, out.Detail = Exited, "it exited without a report"
	}
	if line := firstLine(stderr); line != "" && out.Failure == Exited {
		out.Detail += ": " + line
	}
	return out
}

// startFailure names why the helper could not be started.
func startFailure(path string, err error) (Failure, string) {
	var errno syscall.Errno
	errors.As(err, &errno)
	switch errno {
	case syscall.ENOENT:
		if _, serr := os.Stat(path); serr == nil {
			return NoLoader, path + " exists but its dynamic loader is missing (it needs glibc's ld.so)"
		}
		return Missing, path + " does not exist"
	case syscall.EISDIR:
		return IsDirectory, path + " is a directory"
	case syscall.EACCES:
		if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
			return IsDirectory, path + " is a directory"
		}
		return NotExecutable, path + " cannot be executed (permission denied, or its filesystem is mounted noexec)"
	case syscall.ENOEXEC:
		return BadFormat, path + " is not an executable for this machine (exec format error)"
	case syscall.EAGAIN:
		return NoProcesses, "no process could be created (fork: resource temporarily unavailable)"
	case syscall.EMFILE, syscall.ENFILE:
		return NoDescriptors, "no file descriptor was free for its output (" + errno.Error() + ")"
	case syscall.ENOMEM:
		return NoMemory, "no memory to start it (fork: cannot allocate memory)"
	}
	return StartFailed, err.Error()
}

// helperEnv copies environ without LD_BIND_NOW and without the Go
// runtime's settings (runtimeSettings): they are the user's, for the user's
// programs, and a helper is a Go program run for the checks, with the
// runtime's defaults. A GOMEMLIMIT=4G (the runtime wants 4GiB) aborts a Go
// program before main; GOGC=off lets its heap grow without bound;
// GOTRACEBACK=crash dumps core where it crashes.
func helperEnv(environ []string) []string {
	env := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if name == "LD_BIND_NOW" || slices.Contains(runtimeSettings, name) {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// runtimeSettings are the environment variables the Go runtime reads as it
// starts.
var runtimeSettings = []string{"GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GOTRACEBACK", "GODEBUG"}

// threadFailure returns the line of stderr in which the Go runtime (or cgo)
// says that it could not create a thread for want of processes or memory,
// or "".
func threadFailure(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "runtime: failed to create new OS thread") ||
			strings.HasPrefix(line, "runtime/cgo: pthread_create failed: Resource temporarily unavailable") ||
			strings.HasPrefix(line, "runtime/cgo: pthread_create failed: Cannot allocate memory") {
			return firstLine(line)
		}
	}
	return ""
}

// runtimeMemoryFailure returns the line of stderr in which the Go runtime
// says that it could not get memory ("fatal error: out of memory",
// "fatal error: pageAlloc: out of memory", "fatal error: runtime: cannot
// allocate memory", "fatal error: failed to reserve page summary memory"),
// or "". Under a ulimit -v of a few hundred MiB to about 1.3 GiB the
// runtime fails so as it reserves its heap's address space, before main.
func runtimeMemoryFailure(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(line, "fatal error: ") {
			continue
		}
		if low := strings.ToLower(line); strings.Contains(low, "out of memory") || strings.Contains(low, "cannot allocate memory") || strings.Contains(low, "failed to reserve") {
			return firstLine(line)
		}
		return ""
	}
	return ""
}

// withAddressSpace adds the address-space limit to line where one is set.
func withAddressSpace(line string, addressSpace uint64) string {
	if addressSpace == ^uint64(0) {
		return line
	}
	return line + "; ulimit -v is " + strconv.FormatUint(addressSpace>>10, 10) + " KiB"
}

// threadCause says why the thread of line (threadFailure's) could not be
// created, from the errno the line names and the helper's limits, which it
// inherited from this process (RLIM_INFINITY: none): the Go runtime's
// clone says errno=12 for memory and 11 for processes; glibc's
// pthread_create says EAGAIN ("Resource temporarily unavailable") for
// either, so a finite address-space limit or a stack limit of more than
// 1 GiB (each thread's stack is that size) names memory.
func threadCause(line string, addressSpace, stack uint64) (Failure, string) {
	const infinity = ^uint64(0)
	memory := strings.Contains(line, "errno=12") || strings.Contains(line, "Cannot allocate memory")
	if strings.HasPrefix(line, "runtime/cgo: pthread_create failed: Resource temporarily unavailable") {
		memory = addressSpace != infinity || stack != infinity && stack > 1<<30
	}
	if !memory {
		return NoThreads, line
	}
	var limits []string
	if addressSpace != infinity {
		limits = append(limits, "ulimit -v is "+strconv.FormatUint(addressSpace>>10, 10)+" KiB")
	}
	if stack != infinity && stack > 1<<30 {
		limits = append(limits, "ulimit -s is "+strconv.FormatUint(stack>>10, 10)+" KiB")
	}
	if len(limits) > 0 {
		line += "; " + strings.Join(limits, ", ")
	}
	return ThreadMemory, line
}

// rlimit returns the soft limit of resource, or RLIM_INFINITY when it
// cannot be read.
func rlimit(resource int) uint64 {
	var rl unix.Rlimit
	if unix.Getrlimit(resource, &rl) != nil {
		return ^uint64(0)
	}
	return rl.Cur
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

func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprintf("%d (%s)", int(sig), sig.String())
}

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
