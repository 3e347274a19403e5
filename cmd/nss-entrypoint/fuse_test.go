package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/cli"
	"github.com/nvidia-nemo/nss-entrypoint/internal/target"
	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

// mountHangFS builds testdata/hangfs and mounts it at a new directory with
// the given flags; the mount is undone, and anything stuck on it released,
// when the test ends or when release is called. It skips without
// /dev/fuse, root or fusermount3.
func mountHangFS(t *testing.T, flags ...string) (dir string, release func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a FUSE filesystem needs root (CI runs as root)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: " + err.Error())
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3 (Debian package fuse3)")
	}
	bin := filepath.Join(bins.Dir, "hangfs")
	if _, err := os.Stat(bin); err != nil {
		build := exec.Command(testbuild.Go(), "build", "-o", bin, "./testdata/hangfs")
		build.Dir = testbuild.RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building hangfs: %v\n%s", err, out)
		}
	}
	dir = filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(flags, dir)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hangfsDaemons.Store(dir, cmd.Process)
	var once sync.Once
	release = func() {
		once.Do(func() {
			// Killing the daemon aborts the connection: every process
			// stuck on the mount gets an error and goes on.
			cmd.Process.Kill()
			cmd.Wait()
			exec.Command("fusermount3", "-u", "-z", dir).Run()
		})
	}
	t.Cleanup(release)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("hangfs did not mount: %q %v %s", line, err, errb.String())
	}
	return dir, release
}

// runWithin starts cmd and waits for it; when limit passes first, it calls
// unstick (to kill it, or release what holds it), waits for the end and
// reports late.
func runWithin(t *testing.T, cmd *exec.Cmd, limit time.Duration, unstick func()) (late bool, err error) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
		return false, err
	case <-time.After(limit):
		unstick()
		return true, <-done
	}
}

// hangfsDaemons maps each hangfs mount point to its daemon.
var hangfsDaemons sync.Map

// The deadline holds for a filesystem the mount table does not show as one
// that may hang: no table at all (no /proc), or a table that shows only
// local filesystems where the path goes through a stacked or unlisted one
// (overlay over NFS, Docker Desktop's fakeowner, Cray DVS). The checks run
// in this process then, under the deadline's timer: a stopped FUSE daemon
// leaves its callers in a killable wait, which the exec at the deadline
// ends, and the target starts at the deadline. Without the timer it would
// never start.
func TestDeadlineHoldsWhereTheMountTableDoesNotShowTheHang(t *testing.T) {
	for _, table := range []string{"", "21 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n"} {
		name := "no mount table"
		if table != "" {
			name = "a mount table of local filesystems"
		}
		t.Run(name, func(t *testing.T) {
			mnt, _ := mountHangFS(t, "-hang", "lookup")
			d, ok := hangfsDaemons.Load(mnt)
			if !ok {
				t.Fatal("no hangfs daemon recorded")
			}
			// Stopped, the daemon reads no request: each stays pending,
			// and its caller can be killed.
			if err := d.(*os.Process).Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			r := root(t, false)
			if table != "" {
				if err := os.MkdirAll(filepath.Join(r, "proc/self"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(r, "proc/self/mountinfo"), []byte(table), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.RemoveAll(filepath.Join(r, "workspace")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(mnt, "data"), filepath.Join(r, "workspace")); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bins.Entrypoint)
			cmd.Env = []string{"PATH=" + filepath.Dir(bins.Target), "NSS_ENTRYPOINT_ROOT=" + r, "NSS_ENTRYPOINT_TIMEOUT=1s",
				"HOME=/root", "HF_HOME=/hf", "HF_TOKEN=hf_x"}
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			start := time.Now()
			late, err := runWithin(t, cmd, 15*time.Second, func() { cmd.Process.Kill() })
			if late {
				t.Fatalf("the target did not start within 15s of a 1s deadline; stderr:\n%s", errb.String())
			}
			if err != nil {
				t.Fatalf("%v: %s", err, errb.String())
			}
			t.Logf("target started after %v", time.Since(start))
			report(t, result{stdout: out.String(), stderr: errb.String()})
			want := "/workspace (on a filesystem unknown: the mount table could not be read) did not answer within 1s"
			if table != "" {
				want = "/workspace (ext4 at /) did not answer within 1s"
			}
			if !strings.Contains(errb.String(), want) {
				t.Errorf("no deadline message naming the path (%q):\n%s", want, errb.String())
			}
		})
	}
}

// A FUSE filesystem that stops answering, at the workspace, HF_HOME or the
// token path, cannot hold up the start: the entrypoint never touches it
// itself, the separate process that does is abandoned at the deadline, and
// the hint names the path and the filesystem, once.
func TestHungFilesystemCannotHoldUpTheStart(t *testing.T) {
	for _, hang := range []string{"lookup", "open", "readdir"} {
		for _, interrupt := range []bool{false, true} {
			name := hang
			flags := []string{"-hang", hang}
			if interrupt {
				name += ", answers interrupts"
				flags = append(flags, "-interrupt")
			}
			for _, layout := range []string{"workspace and HF_HOME on it", "HF_HOME a symbolic link into it"} {
				t.Run(name+", "+layout, func(t *testing.T) {
					mnt, release := mountHangFS(t, flags...)
					r := root(t, false)
					env := []string{"PATH=" + filepath.Dir(bins.Target), "NSS_ENTRYPOINT_TIMEOUT=1s", "HOME=/root"}
					hfHome := filepath.Join(mnt, "hf")
					if layout == "HF_HOME a symbolic link into it" {
						link := filepath.Join(r, "hf-link")
						if err := os.Symlink(hfHome, link); err != nil {
							t.Fatal(err)
						}
						hfHome = link
						env = append(env, "NSS_WORKSPACE="+filepath.Join(r, "workspace"))
					} else {
						env = append(env, "NSS_WORKSPACE="+mnt)
					}
					env = append(env, "HF_HOME="+hfHome)
					cmd := exec.Command(bins.Entrypoint)
					cmd.Env = env
					var out, errb bytes.Buffer
					cmd.Stdout, cmd.Stderr = &out, &errb
					start := time.Now()
					// Stuck in the kernel, no signal ends it until the daemon
					// goes.
					late, err := runWithin(t, cmd, 15*time.Second, release)
					if late {
						t.Fatalf("the entrypoint hung on the FUSE mount until its daemon was killed; stderr %s", errb.String())
					}
					took := time.Since(start)
					if err != nil {
						t.Fatalf("%v: %s", err, errb.String())
					}
					report(t, result{stdout: out.String(), stderr: errb.String()})
					t.Logf("target started after %v", took)
					if hang == "readdir" && layout == "HF_HOME a symbolic link into it" {
						// The Hugging Face checks never list a directory:
						// through the separate process, they get answers.
						if strings.Contains(errb.String(), "hangfs") || strings.Contains(errb.String(), "token") {
							t.Errorf("stderr:\n%s", errb.String())
						}
						return
					}
					if n := strings.Count(errb.String(), "fuse.hangfs"); n != 1 {
						t.Errorf("the hung filesystem is named %d times, want once:\n%s", n, errb.String())
					}
					if !strings.Contains(errb.String(), "did not answer within 1s") {
						t.Errorf("no deadline message naming the path:\n%s", errb.String())
					}
					if n := strings.Count(errb.String(), "raise NSS_ENTRYPOINT_TIMEOUT"); n > 1 {
						t.Errorf("%d copies of the time-out hint:\n%s", n, errb.String())
					}
					// The process that read the mount is not the target's.
					for _, pid := range delegates(t, env) {
						if ppid := parentOf(pid); ppid == cmd.Process.Pid {
							t.Errorf("the delegate %d is a child of the target", pid)
						}
						if interrupt && !gone(pid) {
							t.Errorf("the delegate %d is still there (%s) though the filesystem answers interrupts", pid, procState(pid))
						}
					}
				})
			}
		}
	}
}

// delegates lists the processes running delegated checks with env.
func delegates(t *testing.T, env []string) []int {
	t.Helper()
	return procsWith(check.DelegateArgv0, env[len(env)-1])
}

func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

var _ = syscall.Getpid

// The delegate exits by itself half a second past its deadline when nobody
// is left to read it: here the entrypoint is killed with SIGKILL while the
// delegate hangs on a FUSE mount whose daemon answers interrupts (one that
// does not would keep it in the kernel, where nothing ends a process). The
// delegate is a sibling of the entrypoint (CLONE_PARENT), so no PID
// namespace or parent ends it: only its own timer does.
func TestDelegateExitsByItselfWhenTheEntrypointIsKilled(t *testing.T) {
	mnt, _ := mountHangFS(t, "-hang", "lookup", "-interrupt")
	mark := "NSS_TEST_MARK=" + strconv.FormatInt(time.Now().UnixNano(), 10)
	env := []string{"PATH=" + filepath.Dir(bins.Target), "NSS_ENTRYPOINT_TIMEOUT=1s", "HOME=/root",
		"NSS_WORKSPACE=" + mnt, "HF_HOME=/nonexistent", "HF_TOKEN=hf_x", mark}
	cmd := exec.Command(bins.Entrypoint)
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for i := 0; i < 300 && len(pids) == 0; i++ {
		pids = delegates(t, env)
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) != 1 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("found delegates %v, want one", pids)
	}
	killed := time.Now()
	cmd.Process.Kill()
	cmd.Wait()
	// The delegate is this process's child: reap it.
	defer syscall.Wait4(pids[0], nil, 0, nil)
	for time.Since(killed) < 5*time.Second {
		if st := procState(pids[0]); st == "" || st == "Z" {
			t.Logf("the delegate ended %v after the entrypoint was killed", time.Since(killed).Round(time.Millisecond))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("the delegate %d still runs (%s) 5s after the entrypoint was killed with a 1s deadline", pids[0], procState(pids[0]))
	// A signal makes the kernel interrupt the FUSE request, which hangfs
	// answers: the delegate can die, and be reaped.
	unix.Kill(pids[0], syscall.SIGKILL)
}

// Stderr itself may be a file on a filesystem that stops answering (a
// Slurm --error file on a FUSE mount): poll says a regular file is always
// writable, and a write the daemon has read but never answers waits in the
// kernel uninterruptibly, where the exec would wait for it. The hints are
// then written by a separate process, a sibling the target does not
// inherit, and the target starts; with the mount table unreadable the file
// is treated the same way. A file on a local filesystem gets the hints as
// before.
func TestStderrOnAHungFilesystemCannotHoldUpTheStart(t *testing.T) {
	for _, table := range []string{"the real mount table", "no mount table", "the daemon stopped"} {
		t.Run(table, func(t *testing.T) {
			mnt, release := mountHangFS(t, "-hang", "write")
			mark := "NSS_TEST_MARK=" + strconv.FormatInt(time.Now().UnixNano(), 10)
			env := []string{"PATH=" + filepath.Dir(bins.Target), "NSS_ENTRYPOINT_TIMEOUT=1s", "HOME=/root",
				"NSS_WORKSPACE=" + t.TempDir(), "HF_HOME=/nonexistent", "HF_TOKEN=hf_x"}
			if table == "no mount table" {
				env = baseEnv(root(t, false))
			}
			env = append(env, mark)
			logf, err := os.OpenFile(filepath.Join(mnt, "log"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Closing a FUSE file asks the daemon: release it first.
			defer func() { release(); logf.Close() }()
			cmd := exec.Command(bins.Entrypoint)
			cmd.Env = env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, logf
			start := time.Now()
			if table == "the daemon stopped" {
				stoppedDaemonStart(t, mnt, env, release)
				return
			}
			late, err := runWithin(t, cmd, 10*time.Second, release)
			if late {
				t.Fatal("the entrypoint hung writing its hints to a file on the hung FUSE mount until the daemon was killed")
			}
			if err != nil {
				t.Fatal(err)
			}
			report(t, result{stdout: out.String()})
			t.Logf("target started after %v", time.Since(start))
			// The writer stuck on the mount is not the target's child.
			pids := procsWith(cli.StderrWriterArgv0, mark)
			if len(pids) == 0 {
				t.Error("no stderr writer process: the hints were not handed to one")
			}
			for _, pid := range pids {
				if parentOf(pid) == cmd.Process.Pid {
					t.Errorf("the stderr writer %d is a child of the target", pid)
				}
			}
		})
	}
	t.Run("a file on a local filesystem", func(t *testing.T) {
		logf, err := os.Create(filepath.Join(t.TempDir(), "log"))
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd := exec.Command(bins.Entrypoint)
		cmd.Env = []string{"PATH=" + filepath.Dir(bins.Target), "HOME=/root", "NSS_WORKSPACE=/nonexistent", "HF_HOME=/nonexistent", "HF_TOKEN=hf_x"}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, logf
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		report(t, result{stdout: out.String()})
		b, err := os.ReadFile(logf.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "nss-entrypoint: warning: /nonexistent does not exist") {
			t.Errorf("the hints did not reach the file:\n%s", b)
		}
	})
}

// stoppedDaemonStart runs the entrypoint with stderr a file on mnt whose
// daemon is stopped: nothing on the mount is answered, not only writes (an
// ioctl asking whether stderr is a terminal, a poll, would wait as well).
// A shell makes the file its descriptor 2 while the daemon still answers
// (a FUSE file's close waits for the daemon, uninterruptibly, so no other
// copy may be closed after it stops: os/exec's would be, at the exec),
// says ready, and execs the entrypoint once the daemon is stopped. The
// target's own exit then waits for the daemon too (its close of stderr):
// its output arriving is the start.
func stoppedDaemonStart(t *testing.T, mnt string, env []string, release func()) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `exec 2>>"$1"; echo ready; read go; exec "$2"`, "sh", filepath.Join(mnt, "log"), bins.Entrypoint)
	// The report would describe descriptor 2, asking the stopped daemon:
	// the target says it ran instead.
	cmd.Env = append(env, "FAKE_TARGET_STDOUT=target ran")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { release(); in.Close(); cmd.Wait() }()
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); line != "ready\n" {
		t.Fatalf("the shell said %q, %v", line, err)
	}
	d, _ := hangfsDaemons.Load(mnt)
	if err := d.(*os.Process).Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	in.Write([]byte("go\n"))
	// Its exit cannot finish (the close of stderr waits for the daemon,
	// and the kernel releases the stdout pipe only after the last close),
	// so its output is read as it comes, without waiting for the end.
	got := make(chan string, 16)
	go func() {
		var b []byte
		buf := make([]byte, 512)
		for {
			n, err := r.Read(buf)
			b = append(b, buf[:n]...)
			got <- string(b)
			if err != nil {
				return
			}
		}
	}()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case out := <-got:
			if out == "target ran" {
				t.Logf("target started after %v", time.Since(start))
				return
			}
		case <-deadline:
			t.Error("the target did not start within 10s with the daemon behind stderr stopped")
			return
		}
	}
}

// entrypointInHungDir runs the entrypoint with its working directory on a
// hangfs mount (-armfile arm): a shell gets into dir while the mount still
// answers, the mount then stops answering, and the shell execs the
// entrypoint with env. Past limit the mount is released and the test
// fails. It returns the exit status, stdout, stderr and how long the
// entrypoint took.
func entrypointInHungDir(t *testing.T, dir, arm string, release func(), env []string, limit time.Duration) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	sh := exec.Command("/bin/sh", "-c", `cd "$1" && echo ready && read go && exec "$2"`, "sh", dir, bins.Entrypoint)
	sh.Env = env
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	sh.Stderr = &errb
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(pipe)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		release()
		sh.Wait()
		t.Fatalf("the shell did not get into the mount: %q %v %s", line, err, errb.String())
	}
	if err := os.WriteFile(arm, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stdin.Write([]byte("go\n"))
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(out)
		rest <- string(b)
	}()
	done := make(chan error, 1)
	go func() { done <- sh.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		release()
		<-done
		t.Fatalf("the entrypoint did not end within %v with its working directory on a hung mount; stderr:\n%s", limit, errb.String())
	}
	took = time.Since(start)
	return sh.ProcessState.ExitCode(), <-rest, errb.String(), took
}

// A working directory on a mount that stops answering (a Slurm job started
// in its submit directory on NFS, with PWD exported) cannot hold up the
// start: the entrypoint asks the kernel for it with getcwd(2), never with a
// stat of "." or $PWD, which go to the server; a relative LD_LIBRARY_PATH
// entry there is not searched.
func TestWorkingDirectoryOnAHungMount(t *testing.T) {
	arm := filepath.Join(t.TempDir(), "arm")
	mnt, release := mountHangFS(t, "-hang", "getattr", "-armfile", arm)
	cwd := filepath.Join(mnt, "hf")
	var env []string
	for _, kv := range baseEnv(root(t, true), "NSS_FAKE_NVML=devices=1", "NSS_ENTRYPOINT_TIMEOUT=1s", "FAKE_TARGET_STDOUT=target ran", "PWD="+cwd) {
		if !strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			env = append(env, kv)
		}
	}
	// The fake NVML, then an empty entry: the working directory.
	env = append(env, "LD_LIBRARY_PATH="+bins.NVMLDir+":")
	code, out, errs, took := entrypointInHungDir(t, cwd, arm, release, env, 15*time.Second)
	t.Logf("target started after %v", took)
	if code != 0 || out != "target ran" {
		t.Errorf("exit %d, stdout %q, want the target's; stderr:\n%s", code, out, errs)
	}
}

// nss-diagnose finishes when paths it checks are on a mount that never
// answers: the checks time out, the report comes out, and the first
// process returns its status though the report's process, with threads
// stuck in the kernel, cannot exit until the mount answers. Whether a
// check's own time limit (the default --timeout) or the report's --timeout
// (2s) ends it, the report names the path that did not answer and its
// filesystem, and a fix in its own words: not the start path's
// NSS_ENTRYPOINT_TIMEOUT, which nss-diagnose does not read.
func TestReportFinishesWithPathsOnAHungMount(t *testing.T) {
	for _, args := range [][]string{{"--timeout", "2s"}, nil} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			mnt, release := mountHangFS(t, "-hang", "lookup")
			cmd := exec.Command(bins.Diagnose, args...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root", "HF_TOKEN=hf_x",
				"NSS_WORKSPACE=" + mnt + "/x", "HF_HOME=" + mnt + "/hf", "HF_TOKEN_PATH=" + mnt + "/tok"}
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			start := time.Now()
			late, _ := runWithin(t, cmd, 40*time.Second, release)
			if late {
				t.Fatalf("nss-diagnose did not return within 40s (2s per check) until the FUSE daemon was killed; stderr:\n%s", errb.String())
			}
			t.Logf("the report returned after %v", time.Since(start))
			if code := cmd.ProcessState.ExitCode(); code != 0 && code != 1 {
				t.Errorf("exit %d, want a report (0 or 1); stderr:\n%s", code, errb.String())
			}
			// The checks that read the mount name it as not answering (the
			// temporary paths themselves may be redacted).
			for _, id := range []string{"workspace", "hf-cache"} {
				if !regexp.MustCompile(`WARN ` + id + ` +[^\n]*: \S+ \(fuse\.hangfs at \S+\) did not answer`).MatchString(out.String()) {
					t.Errorf("the report does not name the path %s did not get an answer from:\n%s", id, out.String())
				}
			}
			if strings.Contains(out.String(), "NSS_ENTRYPOINT_TIMEOUT") || strings.Contains(out.String(), "run the check again") {
				t.Errorf("the report's fixes are not its own:\n%s", out.String())
			}
		})
	}
}

// A target found nowhere, with the working directory on a mount that
// stops answering: 127 at once. bash would look for a directory of that
// name there (and hang); the entrypoint does not look where it may hang.
func TestMissingTargetWithAHungWorkingDirectory(t *testing.T) {
	arm := filepath.Join(t.TempDir(), "arm")
	mnt, release := mountHangFS(t, "-hang", "lookup", "-armfile", arm)
	env := []string{"PATH=/nonexistent", "NSS_ENTRYPOINT_CHECKS=off"}
	code, _, errs, _ := entrypointInHungDir(t, filepath.Join(mnt, "hf"), arm, release, env, 15*time.Second)
	if code != target.NotFound || !strings.Contains(errs, "not found in PATH=/nonexistent") {
		t.Errorf("exit %d, want 127; stderr:\n%s", code, errs)
	}
}

// A GPU probe whose file lies on a filesystem that stops answering (an
// NSS_GPU_PROBE there, or an image whose layers are fetched lazily and
// stall) cannot hold up the start. The probe is started with vfork: the
// thread that starts it waits in the kernel until the probe's execve has
// found the file, and it holds its P meanwhile; with the one P the entry
// stub gives the runtime, nothing else ran, the deadline included, until
// the daemon was killed.
func TestProbeOnAHungMountCannotHoldUpTheStart(t *testing.T) {
	mnt, release := mountHangFS(t, "-hang", "lookup")
	r := root(t, true)
	// The container's mount table is this machine's, which shows the FUSE
	// mount.
	if err := os.MkdirAll(filepath.Join(r, "proc/self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/mountinfo", filepath.Join(r, "proc/self/mountinfo")); err != nil {
		t.Fatal(err)
	}
	env := baseEnv(r, "NSS_ENTRYPOINT_TIMEOUT=1s", "NSS_GPU_PROBE="+filepath.Join(mnt, "nss-gpu-probe"))
	cmd := exec.Command(bins.Entrypoint)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	late, err := runWithin(t, cmd, 15*time.Second, release)
	if late {
		t.Fatalf("the entrypoint waited for the probe's exec until the FUSE daemon was killed; stderr %s", errb.String())
	}
	if err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	t.Logf("target started after %v", time.Since(start))
	report(t, result{stdout: out.String(), stderr: errb.String()})
	if want := "the GPU probe " + filepath.Join(mnt, "nss-gpu-probe") + " did not start or answer within 1s: it is on fuse.hangfs at " + mnt; !strings.Contains(errb.String(), want) {
		t.Errorf("the hint does not name the probe's filesystem (%q):\n%s", want, errb.String())
	}
}
