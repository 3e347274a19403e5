package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/faketarget"
	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

var bins *testbuild.Set

func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv(launchEnv); ok {
		launch() // never returns
	}
	testbuild.Main(m, &bins)
}

// root makes a container-like root: /workspace with data, a tmpfs
// /dev/shm, and optionally GPU device nodes, so the checks' outcome is known.
func root(t *testing.T, gpu bool) string {
	t.Helper()
	r := t.TempDir()
	for _, d := range []string{"workspace/data", "dev", "hf"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shmRoot(t, filepath.Join(r, "dev/shm"))
	if err := os.WriteFile(filepath.Join(r, "workspace/data/x.csv"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if gpu {
		if err := os.MkdirAll(filepath.Join(r, "proc/driver/nvidia"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, node := range []string{"dev/nvidiactl", "dev/nvidia0", "dev/nvidia-uvm"} {
			if err := os.WriteFile(filepath.Join(r, node), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r
}

// fullPipe returns a pipe that is full, so that the next write to w
// blocks; nothing reads r unless the test does. Both ends close when the
// test ends.
func fullPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	fd := int(pw.Fd()) // Fd puts the file in blocking mode: call it once
	syscall.SetNonblock(fd, true)
	chunk := make([]byte, 4096)
	for {
		if _, err := syscall.Write(fd, chunk); err != nil {
			break
		}
	}
	syscall.SetNonblock(fd, false)
	return pr, pw
}

// shmRoot makes dir a tmpfs of 1 GiB, as Docker's --shm-size=1g does: as
// root a tmpfs is mounted there (and unmounted at the end); otherwise dir
// is a link to this machine's /dev/shm.
func shmRoot(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() == 0 {
		if err := os.Mkdir(dir, 0o1777); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=1g"); err == nil {
			t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
			return
		}
		os.Remove(dir)
	}
	if err := os.Symlink("/dev/shm", dir); err != nil {
		t.Fatal(err)
	}
}

// baseEnv is a complete environment in which the target is found on PATH.
func baseEnv(r string, extra ...string) []string {
	return append([]string{
		"PATH=" + filepath.Dir(bins.Target) + ":/usr/bin:/bin",
		"NSS_ENTRYPOINT_ROOT=" + r,
		"HOME=/home/appuser",
		"HF_HOME=/hf",
		"HF_TOKEN=hf_testTOKENvalueDoNotLeak123",
		"LD_LIBRARY_PATH=" + bins.NVMLDir,
	}, extra...)
}

type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
	pid            int
}

func runEP(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bins.Entrypoint, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start), pid: cmd.Process.Pid}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return res
}

func report(t *testing.T, res result) faketarget.Report {
	t.Helper()
	r, err := faketarget.Parse([]byte(res.stdout))
	if err != nil {
		t.Fatalf("%v\nstdout: %q\nstderr: %s", err, res.stdout, res.stderr)
	}
	return r
}

func TestArgvAndEnvironmentPassByteForByte(t *testing.T) {
	long := strings.Repeat("x", 100*1024)
	args := []string{"", "two words", "line\nbreak", "\xff\xfe not utf-8", "--", "--help", "tab\there", long}
	env := baseEnv(root(t, false), "WEIRD=a=b=c", "EMPTY=", "NON_UTF8=\xc3\x28", "LD_BIND_NOW=1", "MULTI=line1\nline2")
	res := runEP(t, env, args...)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	r := report(t, res)
	gotArgs := r.Args()
	if want := append([]string{"safe-synthesizer"}, args...); !slices.Equal(gotArgs, want) {
		t.Errorf("argv differs:\n got %q\nwant %q", faketarget.Abbrev(gotArgs), faketarget.Abbrev(want))
	}
	if got := r.Env(); !slices.Equal(got, env) {
		t.Errorf("environment differs:\n got %q\nwant %q", got, env)
	}
	if r.PID != res.pid {
		t.Errorf("target pid %d, entrypoint pid %d: not an exec", r.PID, res.pid)
	}
	if r.PPID != os.Getpid() {
		t.Errorf("target parent %d, want the test process %d", r.PPID, os.Getpid())
	}
}

func TestStdoutIsTheTargetsAlone(t *testing.T) {
	// Every check warns here (no workspace, no GPU, no token), so stderr is
	// busy; stdout must still be exactly what the target wrote.
	r := t.TempDir()
	want := "exact bytes\n\tfrom the target\n"
	res := runEP(t, []string{"PATH=" + filepath.Dir(bins.Target), "NSS_ENTRYPOINT_ROOT=" + r, "FAKE_TARGET_STDOUT=" + want})
	if res.stdout != want {
		t.Errorf("stdout %q, want %q", res.stdout, want)
	}
	for _, hint := range []string{"/workspace does not exist", "no GPU is visible", "no Hugging Face token", "/dev/shm does not exist"} {
		if !strings.Contains(res.stderr, hint) {
			t.Errorf("stderr lacks %q:\n%s", hint, res.stderr)
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n") {
		if !strings.HasPrefix(line, "nss-entrypoint: ") {
			t.Errorf("stderr line without the prefix: %q", line)
		}
	}
}

func TestExitCodePassesThrough(t *testing.T) {
	for _, code := range []int{0, 1, 42, 255} {
		res := runEP(t, baseEnv(root(t, false), "FAKE_TARGET_EXIT="+strconv.Itoa(code)))
		if res.code != code {
			t.Errorf("exit %d, want %d", res.code, code)
		}
	}
}

func TestAllPassingPrintsOneLine(t *testing.T) {
	res := runEP(t, baseEnv(root(t, true), "NSS_FAKE_NVML=devices=2"))
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	// /dev/shm under the fake root is a 1 GiB tmpfs: all checks pass.
	want := "nss-entrypoint: ok: 5 checks passed; 2 GPUs: 2x NVIDIA H200 (140.4 GiB), driver 580.159.04, CUDA 13.0\n"
	if res.stderr != want {
		t.Errorf("stderr %q\nwant   %q", res.stderr, want)
	}
}

func TestGPUHelperFailuresNeverStopTheTarget(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		stderr string
	}{
		{"healthy", []string{"NSS_FAKE_NVML=devices=1"}, "ok: 5 checks passed; 1 GPU: NVIDIA H200"},
		{"LD_BIND_NOW", []string{"NSS_FAKE_NVML=devices=1", "LD_BIND_NOW=1"}, "ok: 5 checks passed; 1 GPU"},
		{"helper missing", []string{"NSS_GPU_PROBE=/nonexistent/nss-gpu-probe"}, "nss-gpu-probe is missing"},
		{"crash", []string{"NSS_FAKE_NVML=crash"}, "crashed"},
		{"abort", []string{"NSS_FAKE_NVML=abort"}, "crashed with SIGABRT"},
		{"hang", []string{"NSS_FAKE_NVML=hang", "NSS_ENTRYPOINT_TIMEOUT=400ms"}, "did not answer in time"},
		{"deadline too short", []string{"NSS_FAKE_NVML=hang", "NSS_ENTRYPOINT_TIMEOUT=1ms"}, "did not answer within NSS_ENTRYPOINT_TIMEOUT=1ms, too short"},
		{"garbage", []string{"NSS_FAKE_NVML=garbage"}, "unreadable report"},
		{"no library", []string{"LD_LIBRARY_PATH=/nonexistent"}, "libnvidia-ml.so.1 is not in the container"},
		{"driver not loaded", []string{"NSS_FAKE_NVML=init=9"}, "kernel driver is not loaded"},
		{"no permission", []string{"NSS_FAKE_NVML=init=4"}, "no permission"},
		{"unknown error", []string{"NSS_FAKE_NVML=init=999"}, "daemon-reload"},
		{"version mismatch", []string{"NSS_FAKE_NVML=init=18"}, "versions differ"},
		{"gpu lost", []string{"NSS_FAKE_NVML=count=15"}, "fallen off the bus"},
		{"zero devices", []string{"NSS_FAKE_NVML=devices=0"}, "no GPU is visible to this container"},
		{"old driver", []string{"LD_LIBRARY_PATH=" + bins.NVMLOldDir}, "ok: 5 checks passed; 1 GPU: NVIDIA H200, driver 580.159.04"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := baseEnv(root(t, true), "FAKE_TARGET_EXIT=42")
			env = append(env, tc.env...)
			res := runEP(t, env, "run", "--data", "x.csv")
			if res.code != 42 {
				t.Fatalf("exit %d, want the target's 42; stderr %s", res.code, res.stderr)
			}
			if !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, res.stderr)
			}
			r := report(t, res)
			if got := r.Args(); !slices.Equal(got, []string{"safe-synthesizer", "run", "--data", "x.csv"}) {
				t.Errorf("argv %q", got)
			}
			if want := inheritedFDs(t); !slices.Equal(r.FDNumbers(), want) {
				t.Errorf("target descriptors %v, want exactly those a direct start gets %v", r.FDs, want)
			}
			if res.took > 3*time.Second {
				t.Errorf("start took %v", res.took)
			}
		})
	}
}

func TestDescriptorsAreExactlyThoseInherited(t *testing.T) {
	extra, err := os.CreateTemp(t.TempDir(), "extra")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	cmd := exec.Command(bins.Entrypoint)
	cmd.Env = baseEnv(root(t, true), "NSS_FAKE_NVML=devices=1")
	cmd.ExtraFiles = []*os.File{extra, pw}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	r, err := faketarget.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	want := append(inheritedFDs(t), "3", "4")
	slices.Sort(want)
	if got := r.FDNumbers(); !slices.Equal(got, want) {
		t.Errorf("target descriptors %v, want %v", r.FDs, want)
	}
	if r.FDs["3"] != extra.Name() || !strings.HasPrefix(r.FDs["4"], "pipe:") {
		t.Errorf("inherited descriptors changed: %v", r.FDs)
	}
}

// inheritedFDs starts the fake target directly, as runEP starts the
// entrypoint, and returns the descriptors it has: those this test process
// passes on (its standard streams, plus any its own parent leaked to it).
func inheritedFDs(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command(bins.Target)
	cmd.Stderr = &bytes.Buffer{}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	r, err := faketarget.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	return r.FDNumbers()
}

// shellStart runs the entrypoint (or the target directly) from sh after
// setting up process state, and returns the target's report.
func shellStart(t *testing.T, setup string, direct bool, env []string) faketarget.Report {
	t.Helper()
	bin := bins.Entrypoint
	if direct {
		bin = bins.Target
	}
	cmd := exec.Command("/bin/sh", "-c", setup+"; exec "+bin)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	r, err := faketarget.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestProcessStateIsInherited(t *testing.T) {
	env := baseEnv(root(t, true), "NSS_FAKE_NVML=devices=1")
	dir := t.TempDir()
	setup := "cd " + dir + "; umask 027; ulimit -n 1000; trap '' HUP INT"
	direct := shellStart(t, setup, true, env)
	via := shellStart(t, setup, false, env)
	if via.Umask != direct.Umask || via.Umask != 0o27 {
		t.Errorf("umask %o, direct %o", via.Umask, direct.Umask)
	}
	if via.Rlimit != direct.Rlimit || via.Rlimit[0] != 1000 {
		t.Errorf("RLIMIT_NOFILE %v, direct %v (Go raises it at start and must restore it)", via.Rlimit, direct.Rlimit)
	}
	if via.SigBlk != direct.SigBlk {
		t.Errorf("signal mask %s, direct %s", via.SigBlk, direct.SigBlk)
	}
	// SIGHUP and SIGINT are bits 0 and 1; the rest of the set is whatever
	// this test process inherited, the same for both starts.
	if ign, err := strconv.ParseUint(via.SigIgn, 16, 64); err != nil || via.SigIgn != direct.SigIgn || ign&3 != 3 {
		t.Errorf("ignored signals %s, direct %s (SIGHUP and SIGINT ignored)", via.SigIgn, direct.SigIgn)
	}
	if via.SigCgt != direct.SigCgt {
		t.Errorf("caught signals %s, direct %s", via.SigCgt, direct.SigCgt)
	}
	if via.Cwd != dir || direct.Cwd != dir {
		t.Errorf("cwd %q, direct %q, want %q", via.Cwd, direct.Cwd, dir)
	}
	// Started without a process group of its own, the target stays in this
	// test's group.
	if pg := syscall.Getpgrp(); via.PGID != pg || direct.PGID != pg {
		t.Errorf("process group %d, direct %d, want %d", via.PGID, direct.PGID, pg)
	}
}

func TestWorkingDirectoryAndProcessGroup(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(bins.Entrypoint)
	cmd.Env = baseEnv(root(t, false))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	r, err := faketarget.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cwd != dir {
		t.Errorf("cwd %q, want %q", r.Cwd, dir)
	}
	if r.PGID != cmd.Process.Pid {
		t.Errorf("process group %d, want %d", r.PGID, cmd.Process.Pid)
	}
}

func TestBrokenClosedOrFullStderrNeverStopsTheTarget(t *testing.T) {
	env := baseEnv(t.TempDir(), "FAKE_TARGET_EXIT=7") // every check warns: lots to write
	t.Run("closed", func(t *testing.T) {
		cmd := exec.Command("/bin/sh", "-c", "exec 2>&-; exec "+bins.Entrypoint)
		cmd.Env = env
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Fatalf("err %v, want exit 7", err)
		}
		if !strings.Contains(string(out), "args_hex") {
			t.Errorf("target did not report: %q", out)
		}
	})
	t.Run("broken pipe", func(t *testing.T) {
		pr, pw, _ := os.Pipe()
		pr.Close()
		defer pw.Close()
		cmd := exec.Command(bins.Entrypoint)
		cmd.Env, cmd.Stderr = env, pw
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Fatalf("err %v, want exit 7 (a SIGPIPE death would be signal-killed)", err)
		}
		if !strings.Contains(string(out), "args_hex") {
			t.Errorf("target did not report: %q", out)
		}
	})
	t.Run("full pipe", func(t *testing.T) {
		pr, pw := fullPipe(t)
		cmd := exec.Command(bins.Entrypoint)
		var out bytes.Buffer
		cmd.Env, cmd.Stderr, cmd.Stdout = env, pw, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A blocked write would hold the start for ever: give it far more
		// than the check deadline, then call it blocked.
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatal("the start blocked on a full stderr")
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Fatalf("err %v, want exit 7", err)
		}
		if !strings.Contains(out.String(), "args_hex") {
			t.Errorf("target did not report: %q", out.String())
		}
		// Nothing was written into the full pipe, not even part of a line:
		// drained, it holds the filler alone.
		rfd := int(pr.Fd())
		syscall.SetNonblock(rfd, true)
		var drained []byte
		buf := make([]byte, 1<<16)
		for {
			n, err := syscall.Read(rfd, buf)
			if n <= 0 || err != nil {
				break
			}
			drained = append(drained, buf[:n]...)
		}
		if i := bytes.IndexFunc(drained, func(r rune) bool { return r != 0 }); i >= 0 {
			t.Errorf("wrote into the full pipe: %q", drained[i:min(len(drained), i+80)])
		}
	})
	t.Run("dev full", func(t *testing.T) {
		full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Skip("no /dev/full")
		}
		defer full.Close()
		cmd := exec.Command(bins.Entrypoint)
		cmd.Env, cmd.Stderr = env, full
		if err := cmd.Run(); err == nil || err.(*exec.ExitError).ExitCode() != 7 {
			t.Fatalf("err %v, want exit 7", err)
		}
	})
}

// TestPyxisBootstrapIsNamed: srun --container-entrypoint hands pyxis's
// start-up command to the ENTRYPOINT (finding 6). The entrypoint says so
// and how to run instead, and still starts the target with those arguments.
func TestPyxisBootstrapIsNamed(t *testing.T) {
	res := runEP(t, baseEnv(root(t, false), "SLURM_JOB_ID=42"), "sh", "-c", "kill -STOP $$")
	if got := report(t, res).Args(); len(got) != 4 || got[1] != "sh" || got[3] != "kill -STOP $$" {
		t.Errorf("the target got %q", got)
	}
	for _, want := range []string{"error: these arguments are pyxis's start-up command", "fix: leave out --container-entrypoint and name the command: srun --container-image=IMAGE nss-entrypoint run ..."} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	res = runEP(t, baseEnv(root(t, false)), "sh", "-c", "echo hello")
	if strings.Contains(res.stderr, "pyxis") {
		t.Errorf("an ordinary sh -c is taken for pyxis's:\n%s", res.stderr)
	}
}

// procsWith lists the processes whose argv[0] is argv0 and whose
// environment holds env (any environment, when env is ""). It reads
// /proc/PID/cmdline and environ: not for processes that may be stuck on a
// FUSE mount whose daemon is stopped.
func procsWith(argv0, env string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(b), argv0+"\x00") {
			continue
		}
		if env != "" {
			if envb, _ := os.ReadFile("/proc/" + e.Name() + "/environ"); !bytes.Contains(envb, []byte(env)) {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}
