// Package diagnose is nss-diagnose, the program behind
// `nss-entrypoint --diagnose`: it runs every check and writes the
// support-triage report. It lives in its own binary so that nothing of it
// runs, or even initialises, on a container's start path.
package diagnose

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/mem"
	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/checks"
	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/online"
	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/redact"
	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose/report"
	"github.com/nvidia-nemo/nss-entrypoint/internal/hints"
	"github.com/nvidia-nemo/nss-entrypoint/internal/secret"
	"github.com/nvidia-nemo/nss-entrypoint/internal/version"
)

// Exit codes of --diagnose.
const (
	DiagnoseOK         = 0
	DiagnoseFailed     = 1
	DiagnoseUsage      = 2
	DiagnoseIncomplete = 3
)

// diagnoseTimeout bounds the whole report by default.
const diagnoseTimeout = 30 * time.Second

// redactGrace is the least time redaction gets after the checks.
const redactGrace = time.Second

// slowNotice is when the report names, on stderr, the checks still running.
const slowNotice = 3 * time.Second

const diagnoseUsage = `usage: nss-entrypoint --diagnose [--format text|json|markdown] [--verbose] [--strict]
                                 [--online] [--no-redact] [--timeout DURATION]

Checks this container for the mistakes that stop Safe Synthesizer and prints
a report on stdout, redacted so that it is safe to paste in public.

exit status: 0 no failed check, 1 a failed check (with --strict, also a
warning), 2 usage error, 3 the report could not be written. A check that
timed out is reported as such and does not change the status.
`

// DiagnoseOptions are the parsed --diagnose flags.
type DiagnoseOptions struct {
	Format   string
	Verbose  bool
	Strict   bool
	Online   bool
	NoRedact bool
	Timeout  time.Duration
}

// ParseDiagnose parses the arguments after --diagnose. Its errors never
// repeat a value from the command line, which may be a secret pasted in
// the wrong place: they name a known flag, or an argument by its position.
func ParseDiagnose(args []string, stderr io.Writer) (DiagnoseOptions, error) {
	var o DiagnoseOptions
	fs := flag.NewFlagSet("nss-entrypoint --diagnose", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Format, "format", "text", "")
	fs.BoolVar(&o.Verbose, "verbose", false, "")
	fs.BoolVar(&o.Strict, "strict", false, "")
	fs.BoolVar(&o.Online, "online", false, "")
	fs.BoolVar(&o.NoRedact, "no-redact", false, "")
	fs.DurationVar(&o.Timeout, "timeout", diagnoseTimeout, "")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return o, err
	case err != nil:
		return o, usageError(fs, err, len(args)-len(fs.Args()))
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument (argument %d)", len(args)-fs.NArg()+1)
	case o.Format != "text" && o.Format != "json" && o.Format != "markdown":
		return o, errors.New("--format must be text, json or markdown")
	case o.Timeout <= 0:
		return o, errors.New("--timeout must be a positive duration, such as 30s")
	}
	return o, nil
}

// usageError restates a flag package error without the value it quotes.
// n is how many arguments the flag set consumed, the bad one included.
func usageError(fs *flag.FlagSet, err error, n int) error {
	msg := err.Error()
	name := msg[strings.LastIndex(msg, "-")+1:]
	if i := strings.Index(msg, " for flag -"); i >= 0 {
		name, _, _ = strings.Cut(msg[i+len(" for flag -"):], ":")
	} else if i := strings.Index(msg, " for -"); i >= 0 {
		name, _, _ = strings.Cut(msg[i+len(" for -"):], ":")
	}
	known := fs.Lookup(name) != nil
	switch {
	case known && name == "timeout":
		return errors.New("--timeout must be a positive duration, such as 30s")
	case known && strings.HasPrefix(msg, "flag needs an argument"):
		return fmt.Errorf("--%s needs a value", name)
	case known:
		return fmt.Errorf("--%s: not a valid value", name)
	}
	return fmt.Errorf("unknown flag (argument %d)", n)
}

// Diagnose runs every check and writes the report to stdout.
func Diagnose(args, environ []string, stdout, stderr io.Writer, stdoutTTY, stderrTTY bool) (code int) {
	o, err := ParseDiagnose(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		io.WriteString(stdout, diagnoseUsage)
		return DiagnoseOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%serror: %v\n%s", hints.Prefix, err, diagnoseUsage)
		return DiagnoseUsage
	}
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "%serror: the report could not be completed: %v\n", hints.Prefix, p)
			code = DiagnoseIncomplete
		}
	}()

	e := check.NewEnv(environ, "")
	e.Online = o.Online
	e.RaiseTimeoutFix = "run the report with a longer --timeout (it had " + o.Timeout.String() + ")"
	e.CUDAVariant = version.CUDAVariant
	e.Host = hostInfo
	// The report asks the probe for the CUDA stage with a context on each
	// GPU, and for each GPU's hardware health.
	e.GPUArgs = []string{"--diagnose"}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	results := check.RunNotify(ctx, e, append(checks.All(), online.Network), slowNotice, func(doing []string) {
		fmt.Fprintf(stderr, "%sstill waiting on %s\n", hints.Prefix, strings.Join(doing, "; "))
	})

	var r *redact.Redactor
	if !o.NoRedact {
		host, _ := os.Hostname()
		user, _ := checks.UserName(e)
		// Redaction ends with --timeout (or, when the checks took all of it,
		// redactGrace later): what is left unscanned is left out.
		deadline := start.Add(o.Timeout)
		if least := time.Now().Add(redactGrace); deadline.Before(least) {
			deadline = least
		}
		r = &redact.Redactor{Home: e.Get("HOME"), Hostname: host, User: user, Deadline: deadline, Secrets: secret.NewScrubber(environ)}
	}
	tool := report.Tool{Name: "nss-entrypoint", Version: version.Version, Commit: version.Commit, CUDAVariant: version.CUDAVariant}
	doc := report.Build(tool, time.Now(), results, facts(e), environ, r)

	var out []byte
	switch o.Format {
	case "json":
		if out, err = report.JSON(doc); err != nil {
			fmt.Fprintf(stderr, "%serror: encode the report: %v\n", hints.Prefix, err)
			return DiagnoseIncomplete
		}
	case "markdown":
		out = report.Markdown(doc)
	default:
		colour := hints.ColourWanted(e.Get, stdoutTTY)
		out = report.Text(doc, report.TextOptions{Colour: colour, Unicode: colour && utf8Locale(e), Verbose: o.Verbose})
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "%serror: write the report: %v\n", hints.Prefix, err)
		return DiagnoseIncomplete
	}
	switch w := check.Worst(results); {
	case w == check.Fail, o.Strict && w == check.Warn:
		return DiagnoseFailed
	}
	return DiagnoseOK
}

// utf8Locale reports whether the locale asks for UTF-8, as setlocale would
// choose it: LC_ALL, then LC_CTYPE, then LANG.
func utf8Locale(e *check.Env) bool {
	for _, v := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if val := e.Get(v); val != "" {
			up := strings.ToUpper(val)
			return strings.Contains(up, "UTF-8") || strings.Contains(up, "UTF8")
		}
	}
	return false
}

// hostInfo asks gopsutil for the host's memory and counts the online CPUs.
// gopsutil's cpu package is not used: its package initialisation (sysconf,
// large tables) would run before every container start.
func hostInfo() (check.HostInfo, error) {
	vm, err := mem.VirtualMemory()
	if err != nil {
		return check.HostInfo{}, err
	}
	return check.HostInfo{MemoryTotal: vm.Total, CPUs: onlineCPUs()}, nil
}

// onlineCPUs counts the CPUs in /sys/devices/system/cpu/online ("0-3,8").
func onlineCPUs() int {
	b, err := check.ReadSmall("/sys/devices/system/cpu/online", 4<<10)
	if err != nil {
		return 0
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		if !isRange {
			if err1 == nil {
				n++
			}
			continue
		}
		b, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && b >= a {
			n += b - a + 1
		}
	}
	return n
}

// facts gathers what the report says about the container besides checks.
func facts(e *check.Env) report.Facts {
	uid, gid := e.IDs()
	f := report.Facts{Runtime: e.Runtime().Name, UID: uid, GID: gid}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		f.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := check.ReadSmall(e.Path("/etc/os-release"), 64<<10); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
				f.OS = strings.Trim(v, `"`)
			}
		}
	}
	return f
}

// Main runs nss-diagnose with argv (argv[0] is the program's name) and
// returns the exit status. The report is made by a second nss-diagnose process (the
// worker) that Main waits for: the Go runtime ends a process that fails
// fatally (out of memory, a panic in a library's goroutine, SIGQUIT) with
// status 2, the usage error's status, and a process killed by a signal
// cannot say anything. Main turns both into 3 with a line that says why, so
// that 2 means a usage error and nothing else. The worker is known by its
// argv[0], workerArgv0, and workerEnv together: a variable a user set
// alone changes nothing (and is not passed on).
func Main(argv, environ []string) int {
	// At least two Ps, also in a container of one CPU: a helper (the
	// report's worker, the GPU probe) is started with vfork, and the
	// thread starting it keeps its P until the helper's execve has found
	// its file, which a hung filesystem can make take for ever. The report's
	// deadlines run on the other P.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	var args []string
	if len(argv) > 0 {
		args = argv[1:]
	}
	env := make([]string, 0, len(environ)+1)
	marked := false
	for _, kv := range environ {
		if strings.HasPrefix(kv, workerEnv+"=") {
			marked = marked || kv == workerEnv+"=1"
			continue
		}
		env = append(env, kv)
	}
	if marked && len(argv) > 0 && argv[0] == workerArgv0 {
		// The status pipe is this process's own: not for the probe or
		// anything else it starts.
		unix.CloseOnExec(workerStatusFD)
		code := Diagnose(args, env, os.Stdout, os.Stderr, hints.IsTerminal(1), hints.IsTerminal(2))
		if code == DiagnoseUsage {
			code = workerUsage
		}
		// The report is out. A check abandoned on a path that does not
		// answer may hold a thread in the kernel, and then this process
		// cannot finish exiting: let go of the standard descriptors (a
		// pipe held open keeps kubectl exec or a CI step waiting) and
		// tell Main the status on its own pipe, so that it need not wait.
		unix.Close(0)
		unix.Close(1)
		unix.Close(2)
		unix.Write(workerStatusFD, []byte{byte(code)})
		return code
	}
	self, err := os.Executable()
	if err != nil {
		return Diagnose(args, env, os.Stdout, os.Stderr, hints.IsTerminal(1), hints.IsTerminal(2))
	}
	cmd := exec.Command(self, args...)
	cmd.Args[0] = workerArgv0
	cmd.Env = append(env, workerEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	statusR, statusW, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%serror: the report could not be started: %v\n", hints.Prefix, err)
		return DiagnoseIncomplete
	}
	defer statusR.Close()
	cmd.ExtraFiles = []*os.File{statusW} // workerStatusFD
	err = cmd.Start()
	statusW.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%serror: the report could not be started: %v\n", hints.Prefix, err)
		return DiagnoseIncomplete
	}
	if code, ok := waitWorker(cmd, statusR); ok {
		return mapWorkerStatus(code)
	}
	switch code := cmd.ProcessState.ExitCode(); code {
	case workerUsage:
		return DiagnoseUsage
	case DiagnoseOK, DiagnoseFailed, DiagnoseIncomplete:
		return code
	}
	why := cmd.ProcessState.String()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		why = "killed by " + unix.SignalName(ws.Signal())
		if ws.Signal() == syscall.SIGKILL {
			why += " (out of memory?)"
		}
	}
	fmt.Fprintf(os.Stderr, "%serror: the report could not be completed: nss-diagnose %s\n", hints.Prefix, why)
	return DiagnoseIncomplete
}

// waitWorker waits for the worker. It returns the status the worker sent
// and true when the worker sent one but has not exited workerExitGrace
// later (a thread of it stuck in the kernel on a path that does not
// answer: the report is complete, and the worker will exit when the path
// answers); otherwise false once the worker has exited, its ProcessState
// set.
func waitWorker(cmd *exec.Cmd, status *os.File) (int, bool) {
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	sent := make(chan int, 1)
	go func() {
		var b [1]byte
		if n, _ := status.Read(b[:]); n == 1 {
			sent <- int(b[0])
		}
	}()
	select {
	case <-exited:
		return 0, false
	case code := <-sent:
		select {
		case <-exited:
			return 0, false
		case <-time.After(workerExitGrace):
			fmt.Fprintf(os.Stderr, "%snote: the report is complete, but its process cannot exit yet: a check is stuck on a path that does not answer (see the checks that timed out above)\n", hints.Prefix)
			return code, true
		}
	}
}

// mapWorkerStatus is Main's status for a worker that sent code.
func mapWorkerStatus(code int) int {
	switch code {
	case workerUsage:
		return DiagnoseUsage
	case DiagnoseOK, DiagnoseFailed, DiagnoseIncomplete:
		return code
	}
	return DiagnoseIncomplete
}

// workerStatusFD is the worker's end of the pipe on which it sends its
// status before it exits; workerExitGrace is how long Main waits for the
// exit after that.
const (
	workerStatusFD  = 3
	workerExitGrace = time.Second
)

// workerEnv and workerArgv0 mark the nss-diagnose process that makes the
// report (Main).
const (
	workerEnv   = "NSS_DIAGNOSE_WORKER"
	workerArgv0 = "nss-diagnose-worker"
)

// workerUsage is the worker's status for a usage error; Main returns
// DiagnoseUsage for it.
const workerUsage = 64
