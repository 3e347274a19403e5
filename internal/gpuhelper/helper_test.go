package gpuhelper

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

var bins *testbuild.Set

func TestMain(m *testing.M) { testbuild.Main(m, &bins) }

// probeEnv runs the real nss-gpu-probe over the fake libnvidia-ml in dir,
// loaded through dlopen via LD_LIBRARY_PATH.
func probeEnv(dir, mode string, extra ...string) []string {
	return append([]string{"LD_LIBRARY_PATH=" + dir, "NSS_FAKE_NVML=" + mode, "PATH=/usr/bin:/bin"}, extra...)
}

func TestRunRealProbeOverFakeNVML(t *testing.T) {
	tests := []struct {
		name    string
		dir     string
		mode    string
		extra   []string
		failure Failure
		check   func(t *testing.T, o Outcome)
	}{
		{"two healthy GPUs", bins.NVMLDir, "devices=2", nil, None, func(t *testing.T, o Outcome) {
			r := o.Report
			if !r.Loaded || len(r.Devices) != 2 || r.Devices[1].Name != "NVIDIA H200" || r.DriverVersion != "580.159.04" || r.CUDADriverVersion != 13000 {
				t.Errorf("report %+v", r)
			}
			d := r.Devices[0]
			if d.UUID != "GPU-fa4e0000-0000-4000-8000-000000000000" || d.PCIBusID != "00000000:06:00.0" || d.MemoryTotalBytes != 143771<<20 ||
				d.ComputeCapability != "9.0" || d.MIGMode != "disabled" || d.PersistenceMode != "enabled" || d.ComputeProcesses != 0 {
				t.Errorf("device %+v", d)
			}
		}},
		{"zero devices", bins.NVMLDir, "devices=0", nil, None, func(t *testing.T, o Outcome) {
			if !o.Report.Loaded || len(o.Report.Devices) != 0 {
				t.Errorf("report %+v", o.Report)
			}
		}},
		{"MIG and processes", bins.NVMLDir, "mig,procs=3,used=2048", nil, None, func(t *testing.T, o Outcome) {
			d := o.Report.Devices[0]
			if d.MIGMode != "enabled" || d.MIGDevices != 2 || d.ComputeProcesses != 3 || d.MemoryUsedBytes != 2048<<20 {
				t.Errorf("device %+v", d)
			}
		}},
		{"oldest symbols only", bins.NVMLOldDir, "devices=1", nil, None, func(t *testing.T, o Outcome) {
			r := o.Report
			if !r.Loaded || len(r.Devices) != 1 || r.Devices[0].Name != "NVIDIA H200" || r.DriverVersion != "580.159.04" {
				t.Errorf("report %+v", r)
			}
			for _, fn := range []string{"nvmlSystemGetCudaDriverVersion", "nvmlDeviceGetUUID", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetCudaComputeCapability"} {
				if !strings.Contains(strings.Join(r.Unavailable, " "), fn) {
					t.Errorf("unavailable %v lacks %s", r.Unavailable, fn)
				}
			}
		}},
		{"LD_BIND_NOW is removed for the helper", bins.NVMLOldDir, "devices=1", []string{"LD_BIND_NOW=1"}, None, func(t *testing.T, o Outcome) {
			if !o.Report.Loaded {
				t.Errorf("report %+v", o.Report)
			}
		}},
		{"no library", t.TempDir(), "", nil, None, func(t *testing.T, o Outcome) {
			if o.Report.Loaded || o.Report.Error.Code != 12 || o.Report.Error.Name != "ERROR_LIBRARY_NOT_FOUND" {
				t.Errorf("report %+v", o.Report)
			}
		}},
		{"hang", bins.NVMLDir, "hang", nil, TimedOut, nil},
		{"segfault", bins.NVMLDir, "crash", nil, Crashed, func(t *testing.T, o Outcome) {
			if !strings.Contains(o.Detail, "SIGSEGV") {
				t.Errorf("detail %q", o.Detail)
			}
		}},
		{"abort", bins.NVMLDir, "abort", nil, Crashed, func(t *testing.T, o Outcome) {
			if !strings.Contains(o.Detail, "SIGABRT") {
				t.Errorf("detail %q", o.Detail)
			}
		}},
		{"garbage", bins.NVMLDir, "garbage", nil, Garbage, nil},
		{"a library prints before the report", bins.NVMLDir, "chatter,devices=2", nil, None, func(t *testing.T, o Outcome) {
			if len(o.Report.Devices) != 2 || o.Other != "fakenvml: a message a driver library printed on stdout" {
				t.Errorf("report %+v, other output %q", o.Report, o.Other)
			}
		}},
	}
	for _, code := range []int{4, 9, 15, 18, 999} {
		tests = append(tests, struct {
			name    string
			dir     string
			mode    string
			extra   []string
			failure Failure
			check   func(t *testing.T, o Outcome)
		}{"init error " + itoa(code), bins.NVMLDir, "init=" + itoa(code), nil, None, func(t *testing.T, o Outcome) {
			if o.Report.Loaded || o.Report.Error == nil || o.Report.Error.Code != code || o.Report.Error.Message == "" {
				t.Errorf("report %+v error %+v", o.Report, o.Report.Error)
			}
		}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			o := Run(ctx, bins.Probe, probeEnv(tc.dir, tc.mode, tc.extra...))
			if o.Failure != tc.failure {
				t.Fatalf("failure %q (%s), want %q", o.Failure, o.Detail, tc.failure)
			}
			if tc.failure == None && o.Report == nil {
				t.Fatal("no report")
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

func TestLDBindNowWouldKillTheProbe(t *testing.T) {
	// The reason helperEnv drops LD_BIND_NOW: with it, the dynamic linker
	// resolves every nvml* symbol at start and the probe, started bare over
	// a library that lacks some, dies before main.
	bare := exec.Command(bins.Probe)
	bare.Env = probeEnv(bins.NVMLOldDir, "", "LD_BIND_NOW=1")
	out, err := bare.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 || !strings.Contains(string(out), "undefined symbol") {
		t.Errorf("bare probe with LD_BIND_NOW=1: %v, %q; want exit 127 and an undefined symbol", err, out)
	}
	ctx := context.Background()
	cmd := []string{"LD_BIND_NOW=1"}
	o := Run(ctx, bins.Probe, probeEnv(bins.NVMLOldDir, "", cmd...))
	if o.Failure != None {
		t.Fatalf("with LD_BIND_NOW stripped the probe should work: %q %s", o.Failure, o.Detail)
	}
	in := []string{"A=1", "LD_BIND_NOW=1", "GOMEMLIMIT=4G", "GOGC=off", "GODEBUG=x=1", "GOTRACEBACK=crash", "GOMAXPROCS=3", "GOMAXPROCSX=1", "B=2", "GOGC"}
	if got := helperEnv(in); strings.Join(got, " ") != "A=1 GOMAXPROCSX=1 B=2" {
		t.Errorf("helperEnv = %v", got)
	}
}

func TestRunMissingAndFailingHelper(t *testing.T) {
	dir := t.TempDir()
	o := Run(context.Background(), filepath.Join(dir, "nss-gpu-probe"), nil)
	if o.Failure != Missing {
		t.Errorf("missing helper: %q", o.Failure)
	}
	o = Run(context.Background(), "", nil)
	if o.Failure != Missing {
		t.Errorf("empty path: %q", o.Failure)
	}
	script := filepath.Join(dir, "exit3")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'boom: the driver said no' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o = Run(context.Background(), script, nil)
	if o.Failure != Exited || !strings.Contains(o.Detail, "exit status 3: boom") {
		t.Errorf("exit 3: %q %q", o.Failure, o.Detail)
	}
	flood := filepath.Join(dir, "flood")
	if err := os.WriteFile(flood, []byte("#!/bin/sh\nhead -c 5000000 /dev/zero\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o = Run(context.Background(), flood, nil)
	if o.Failure != Flood {
		t.Errorf("flood: %q %q", o.Failure, o.Detail)
	}
}

func TestRunKillsAndReapsAHungHelper(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	o := Run(ctx, bins.Probe, probeEnv(bins.NVMLDir, "hang"))
	took := time.Since(start)
	if o.Failure != TimedOut {
		t.Fatalf("failure %q", o.Failure)
	}
	if took > 2*time.Second {
		t.Errorf("Run returned %v after a 300ms deadline", took)
	}
	// No child may be left behind: every child of this process is reaped.
	kids, _ := os.ReadFile("/proc/self/task/" + itoa(os.Getpid()) + "/children")
	if strings.TrimSpace(string(kids)) != "" {
		t.Errorf("children left: %q", kids)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Each way the probe can fail to start has its own Failure, so that the
// hint names the cause and its fix.
func TestStartFailureCauses(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	badFormat := filepath.Join(dir, "bad-format")
	os.WriteFile(badFormat, []byte("\x7fELF\x02\x01\x01\x00garbage"), 0o755)
	noLoader := filepath.Join(dir, "no-loader")
	os.WriteFile(noLoader, []byte("#!/nonexistent/ld.so\n"), 0o755)
	aDir := filepath.Join(dir, "a-dir")
	os.Mkdir(aDir, 0o755)
	for _, tc := range []struct {
		path string
		want Failure
	}{
		{filepath.Join(dir, "missing"), Missing},
		{notExec, NotExecutable},
		{badFormat, BadFormat},
		{noLoader, NoLoader},
		{aDir, IsDirectory},
	} {
		o := Run(context.Background(), tc.path, nil)
		if o.Failure != tc.want {
			t.Errorf("%s: %q (%s), want %q", filepath.Base(tc.path), o.Failure, o.Detail, tc.want)
		}
	}
	// Causes that need an exhausted system: the errno each maps to.
	for _, tc := range []struct {
		err  error
		want Failure
	}{
		{syscall.EAGAIN, NoProcesses},
		{os.NewSyscallError("pipe2", syscall.EMFILE), NoDescriptors},
		{syscall.ENFILE, NoDescriptors},
		{syscall.ENOMEM, NoMemory},
		{syscall.ETXTBSY, StartFailed},
	} {
		if got, _ := startFailure("/p", tc.err); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
	}
}

// A probe whose runtime cannot create a thread (processes are scarce) is
// not "a crash inside the NVIDIA driver": cgo aborts with SIGABRT when
// pthread_create fails, the Go runtime alone exits 2. The real probe is run
// as another user under ulimit -u 2 (RLIMIT_NPROC does not bind root), and
// a stand-in prints the pure-Go runtime's message.
func TestProbeWithoutThreads(t *testing.T) {
	dir := t.TempDir()
	goRuntime := filepath.Join(dir, "go-runtime")
	os.WriteFile(goRuntime, []byte("#!/bin/sh\necho 'runtime: failed to create new OS thread (have 5 already; errno=11)' >&2\necho 'fatal error: newosproc' >&2\nexit 2\n"), 0o755)
	paths := []string{goRuntime}
	setpriv, err := exec.LookPath("setpriv")
	if os.Geteuid() == 0 && err == nil {
		// A copy the other user can reach (the build's folder and the
		// test's are private).
		shared, err := os.MkdirTemp("", "nss-nothreads-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(shared)
		os.Chmod(shared, 0o755)
		probe := filepath.Join(shared, "nss-gpu-probe")
		b, err := os.ReadFile(bins.Probe)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(probe, b, 0o755)
		wrapped := filepath.Join(dir, "scarce")
		os.WriteFile(wrapped, []byte("#!/bin/sh\nexec "+setpriv+" --reuid 61235 --regid 61235 --clear-groups /bin/bash -c 'ulimit -u 2 && exec \"$0\"' "+probe+"\n"), 0o755)
		paths = append(paths, wrapped)
	} else {
		t.Log("not root, or no setpriv: only the stand-in runs")
	}
	for _, path := range paths {
		o := Run(context.Background(), path, probeEnv(bins.NVMLDir, "devices=1"))
		if o.Failure != NoThreads || !strings.Contains(o.Detail, "thread") {
			t.Errorf("%s: %q %q, want %q", filepath.Base(path), o.Failure, o.Detail, NoThreads)
		}
	}
}

// Why a thread could not be created: the errno the Go runtime names, or,
// for cgo's EAGAIN (glibc says it for a stack it cannot map too), the
// limits the probe inherited.
func TestThreadCause(t *testing.T) {
	const inf = ^uint64(0)
	goAgain := "runtime: failed to create new OS thread (have 5 already; errno=11)"
	goNoMem := "runtime: failed to create new OS thread (have 5 already; errno=12)"
	cgoAgain := "runtime/cgo: pthread_create failed: Resource temporarily unavailable"
	cgoNoMem := "runtime/cgo: pthread_create failed: Cannot allocate memory"
	for _, tc := range []struct {
		line      string
		as, stack uint64
		want      Failure
		detail    string
	}{
		{goAgain, inf, 8 << 20, NoThreads, goAgain},
		{goNoMem, inf, 8 << 20, ThreadMemory, goNoMem},
		{cgoAgain, inf, 8 << 20, NoThreads, cgoAgain},
		{cgoAgain, inf, inf, NoThreads, cgoAgain},
		{cgoAgain, 730000 << 10, 8 << 20, ThreadMemory, cgoAgain + "; ulimit -v is 730000 KiB"},
		{cgoAgain, inf, 500 << 30, ThreadMemory, cgoAgain + "; ulimit -s is 524288000 KiB"},
		{cgoNoMem, inf, 8 << 20, ThreadMemory, cgoNoMem},
	} {
		got, detail := threadCause(tc.line, tc.as, tc.stack)
		if got != tc.want || detail != tc.detail {
			t.Errorf("threadCause(%q, %d, %d) = %q, %q; want %q, %q", tc.line, tc.as, tc.stack, got, detail, tc.want, tc.detail)
		}
	}
}

// A probe that prints without end is stopped at maxReport, however fast it
// writes; one that delivers a report and exits while a process it started
// keeps its output open is believed, and that process is killed.
func TestFloodAndHeldOpenOutput(t *testing.T) {
	dir := t.TempDir()
	flood := filepath.Join(dir, "flood")
	os.WriteFile(flood, []byte("#!/bin/sh\nexec yes\n"), 0o755)
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer fcancel()
	start := time.Now()
	o := Run(fctx, flood, nil)
	if o.Failure != Flood || time.Since(start) > 5*time.Second {
		t.Errorf("flood: %q %q after %v", o.Failure, o.Detail, time.Since(start))
	}

	good := Run(context.Background(), bins.Probe, probeEnv(bins.NVMLDir, "devices=1"))
	if good.Report == nil {
		t.Fatalf("no report from the real probe: %+v", good)
	}
	rep := filepath.Join(dir, "report.json")
	b, _ := json.Marshal(good.Report)
	os.WriteFile(rep, b, 0o644)
	pidFile := filepath.Join(dir, "pid")
	held := filepath.Join(dir, "held")
	os.WriteFile(held, []byte("#!/bin/sh\ncat "+rep+"\nsleep 60 &\necho $! > "+pidFile+"\nexit 0\n"), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start = time.Now()
	o = Run(ctx, held, nil)
	if o.Failure != None || o.Report == nil || !o.HeldOpen {
		t.Fatalf("held open: %q %q held=%v", o.Failure, o.Detail, o.HeldOpen)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v: it waited for the process holding the pipe", took)
	}
	pb, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pb)))
	time.Sleep(100 * time.Millisecond)
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); pid > 0 && err == nil && !strings.Contains(string(st), ") Z ") {
		t.Errorf("the process holding the pipe (%d) is still running: %s", pid, st)
	}
}

// Output after the report (a library printing as the probe exits) leaves
// the report readable; text that holds no report line is garbage.
func TestOutputAroundTheReport(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		failure      Failure
		other        string
	}{
		{"after", `"$PROBE"; echo "trailing words"`, None, "trailing words"},
		{"before and after", `echo before; "$PROBE"; printf 'after'`, None, "before\nafter"},
		{"a report line that is broken", `echo '{"schema_version":1,"loaded":'; echo nothing`, Garbage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := filepath.Join(t.TempDir(), "probe")
			if err := os.WriteFile(script, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			o := Run(ctx, script, append(probeEnv(bins.NVMLDir, "devices=1"), "PROBE="+bins.Probe))
			if o.Failure != tc.failure || o.Other != tc.other {
				t.Errorf("failure %q (%s), other %q; want %q, %q", o.Failure, o.Detail, o.Other, tc.failure, tc.other)
			}
			if tc.failure == None && (o.Report == nil || len(o.Report.Devices) != 1) {
				t.Errorf("report %+v", o.Report)
			}
		})
	}
}

// Under some address-space limits (measured on this VM: 705000 and 1230000
// KiB) the real probe's Go runtime cannot reserve its heap and ends with
// "fatal error: ... out of memory" before main: that is RuntimeMemory,
// named with the limit, not "the GPU probe failed". The test looks for such
// a limit itself (they move with the binary and the kernel), runs the probe
// under it through a wrapper script, and skips where none is found.
func TestProbeWhoseRuntimeCannotReserveMemory(t *testing.T) {
	dir := t.TempDir()
	env := probeEnv(bins.NVMLDir, "devices=1")
	for kib := 600000; kib <= 1400000; kib += 5000 {
		cmd := exec.Command("/bin/sh", "-c", "ulimit -v "+strconv.Itoa(kib)+" && exec \"$0\"", bins.Probe)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		if runtimeMemoryFailure(string(out)) == "" {
			continue
		}
		// The entrypoint's own limit is the one named; here it is the
		// wrapper's, so the wrapper stands for the whole container.
		wrapper := filepath.Join(dir, "limited")
		os.WriteFile(wrapper, []byte("#!/bin/sh\nulimit -v "+strconv.Itoa(kib)+" && exec "+bins.Probe+"\n"), 0o755)
		o := RunIn(context.Background(), wrapper, env, nil)
		if o.Failure != RuntimeMemory || !strings.Contains(o.Detail, "fatal error: ") {
			t.Errorf("ulimit -v %d: %q %q, want %q", kib, o.Failure, o.Detail, RuntimeMemory)
		}
		return
	}
	t.Skip("no address-space limit between 600000 and 1400000 KiB made the probe's runtime fail here")
}

func TestRuntimeMemoryFailure(t *testing.T) {
	for _, c := range []struct{ stderr, want string }{
		{"fatal error: pageAlloc: out of memory\n\nruntime stack:\n", "fatal error: pageAlloc: out of memory"},
		{"fatal error: runtime: cannot allocate memory\n", "fatal error: runtime: cannot allocate memory"},
		{"fatal error: failed to reserve page summary memory\n", "fatal error: failed to reserve page summary memory"},
		{"fatal error: out of memory allocating heap arena map\n", "fatal error: out of memory allocating heap arena map"},
		{"fatal error: unexpected signal during runtime execution\n[signal SIGSEGV]\nfatal error: out of memory\n", ""},
		{"NVML: out of memory\n", ""},
		{"", ""},
	} {
		if got := runtimeMemoryFailure(c.stderr); got != c.want {
			t.Errorf("runtimeMemoryFailure(%q) = %q, want %q", c.stderr, got, c.want)
		}
	}
	if got := withAddressSpace("x", 705000<<10); got != "x; ulimit -v is 705000 KiB" {
		t.Errorf("withAddressSpace = %q", got)
	}
	if got := withAddressSpace("x", ^uint64(0)); got != "x" {
		t.Errorf("withAddressSpace without a limit = %q", got)
	}
}

// A probe that outlives its budget ends itself (exit 3) with a line that
// says so: where its caller did not kill it first, both were stopped
// meanwhile (a paused container), and the outcome is BudgetSpent, which says
// so, not "exited without a report". Here the caller sets no deadline and
// the probe's own budget runs out, NVML hanging.
func TestProbeThatEndsItselfAtItsBudget(t *testing.T) {
	o := RunIn(context.Background(), bins.Probe, probeEnv(bins.NVMLDir, "hang"), nil, "--budget=50ms")
	if o.Failure != BudgetSpent || o.Detail != "it ran out of its time and ended itself without a report" {
		t.Errorf("%q %q, want %q", o.Failure, o.Detail, BudgetSpent)
	}
}
