//go:build e2e

package e2e

// What the Podman, containerd and Slurm suites share: the image under test
// as an archive, private daemons, and the scenarios every runtime must pass.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

// testImage is the image the other runtimes run: a docker-archive tarball
// that podman load and ctr import read, its name and its ENTRYPOINT.
type testImage struct {
	Archive    string
	Name       string
	Entrypoint []string
}

var (
	imageOnce sync.Once
	image     testImage
	imageErr  error
)

// imageUnderTest takes the image from the Docker engine, where the suite's
// setup built it, and saves it once per image id into the cache directory.
// It is the one place that names the image the other runtimes run.
func imageUnderTest() (testImage, error) {
	imageOnce.Do(func() {
		name := suiteImage(nil)
		out, err := exec.Command("docker", "image", "inspect", "-f", "{{.Id}} {{json .Config.Entrypoint}}", name).Output()
		if err != nil {
			imageErr = fmt.Errorf("docker image inspect %s: %v", name, err)
			return
		}
		id, entry, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
		var ep []string
		if err := json.Unmarshal([]byte(entry), &ep); err != nil {
			imageErr = fmt.Errorf("entrypoint of %s: %v", name, err)
			return
		}
		dir := cacheDir()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			imageErr = err
			return
		}
		archive := filepath.Join(dir, "image-"+strings.TrimPrefix(id, "sha256:")[:12]+".tar")
		if _, err := os.Stat(archive); err != nil {
			old, _ := filepath.Glob(filepath.Join(dir, "image-*.tar"))
			for _, f := range old {
				os.Remove(f)
			}
			if out, err := exec.Command("docker", "save", "-o", archive+".tmp", name).CombinedOutput(); err != nil {
				imageErr = fmt.Errorf("docker save %s: %v: %s", name, err, out)
				return
			}
			if err := os.Chmod(archive+".tmp", 0o644); err != nil {
				imageErr = err
				return
			}
			if err := os.Rename(archive+".tmp", archive); err != nil {
				imageErr = err
				return
			}
		}
		image = testImage{Archive: archive, Name: name, Entrypoint: ep}
	})
	return image, imageErr
}

func cacheDir() string {
	if c := os.Getenv("NSS_E2E_CACHE"); c != "" {
		return c
	}
	return filepath.Join(testbuild.RepoRoot(), "e2e", ".work")
}

// needTools skips the test when a runtime's programs are missing, saying how
// to get them; under CI (CI set) it fails instead, since .ci/run installs them.
func needTools(t *testing.T, why string, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("%s not found on PATH (%s); .ci/run installs it", strings.Join(missing, ", "), why)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// privateDir is a temporary directory for a daemon's state that other users
// may traverse (rootless runtimes and Slurm jobs read below it). Unix socket
// paths must stay short, so it lives in /tmp rather than t.TempDir's longer path.
func privateDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() {
		// Container layers can hold read-only directories and mounts.
		exec.Command("umount", "-R", "-l", dir).Run()
		if err := os.RemoveAll(dir); err != nil {
			exec.Command("chmod", "-R", "u+w", dir).Run()
			os.RemoveAll(dir)
		}
	})
	return dir
}

// closedDir is a folder owned by uid with one file, closed to everybody
// else (mode 0700): the image's appuser cannot read it.
func closedDir(t *testing.T, uid, gid int) string {
	t.Helper()
	dir := privateDir(t, "nss-e2e-closed-")
	f := filepath.Join(dir, "train.csv")
	if err := os.WriteFile(f, []byte("a,b\n1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f, dir} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o700)
	return dir
}

// freePort returns a TCP port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// daemon starts a long-running program with its output in log, and stops it
// (SIGTERM, then SIGKILL after 10 s) when the test ends.
func daemon(t *testing.T, log string, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return cmd
}

// waitUntil polls ok every 100 ms for up to d.
func waitUntil(d time.Duration, ok func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return ok()
}

func fileTail(path string) string {
	b, _ := os.ReadFile(path)
	return tail(b)
}

// command runs a program to its end and returns what it wrote and its exit
// status; it fails the test only when the program cannot be started.
func command(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return r
}

// syncBuffer is a bytes.Buffer that a running program writes to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// foreground is a runtime's start command running in the foreground, as a
// user types it, with FAKE_TARGET_WAIT=1 so that the target waits for signals.
type foreground struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	done   chan struct{}
	code   int
}

func startForeground(t *testing.T, cmd *exec.Cmd) *foreground {
	t.Helper()
	f := &foreground{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &f.stderr
	cmd.Stderr = &f.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			f.code = ee.ExitCode()
		}
		close(f.done)
	}()
	t.Cleanup(func() {
		select {
		case <-f.done:
		default:
			cmd.Process.Kill()
			<-f.done
		}
	})
	f.waitLog(t, "ready")
	return f
}

// waitLog waits up to 30 s for s to appear in the output.
func (f *foreground) waitLog(t *testing.T, s string) {
	t.Helper()
	if !waitUntil(30*time.Second, func() bool { return strings.Contains(f.stderr.String(), s) }) {
		t.Fatalf("%v never wrote %q:\n%s", f.cmd.Args, s, f.stderr.String())
	}
}

// exit waits up to 60 s for the start command to end and returns its status.
func (f *foreground) exit(t *testing.T) int {
	t.Helper()
	select {
	case <-f.done:
		return f.code
	case <-time.After(60 * time.Second):
		t.Fatalf("%v did not end:\n%s", f.cmd.Args, f.stderr.String())
		return -1
	}
}

// runtimeUnderTest is one runtime's command line for the image under test.
type runtimeUnderTest struct {
	// command is the start command as hints print it, such as "podman run".
	command string
	// run runs the image to its end with the runtime's own flags, the
	// target's arguments, and extra environment for the start command
	// itself (a token that a flag passes on).
	run func(t *testing.T, cliEnv, flags []string, args ...string) result
	// start runs it in the foreground, waiting for signals; name is unique.
	start func(t *testing.T, name string, flags ...string) *foreground
	// stop stops it the runtime's way (SIGTERM first).
	stop func(t *testing.T, name string)
	// signal sends a signal (USR1, HUP) to the target the runtime's way.
	signal func(t *testing.T, name, sig string)
	// setenv is the flags that set a variable in the container.
	setenv func(kv string) []string
	// evalUser is the user a fix's shell words ($(id -u), $HOME) are
	// evaluated as; nil means the test's own.
	evalUser *syscall.Credential
}

// diagnoseChecks runs --diagnose --format json and returns each check's
// "status: message".
func diagnoseChecks(t *testing.T, r result) map[string]string {
	t.Helper()
	var doc struct {
		Checks []struct{ ID, Status, Message string } `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("--diagnose --format json (exit %d): %v\nstdout %s\nstderr %s", r.code, err, r.stdout, r.stderr)
	}
	got := map[string]string{}
	for _, c := range doc.Checks {
		got[c.ID] = c.Status + ": " + c.Message
	}
	return got
}

// checkDetected asserts the runtime check's verdict: the runtime and the
// evidence it names.
func checkDetected(t *testing.T, rt runtimeUnderTest, flags []string, want ...string) {
	t.Helper()
	r := rt.run(t, nil, flags, "--diagnose", "--format", "json")
	got := diagnoseChecks(t, r)["runtime"]
	for _, w := range want {
		contains(t, "runtime check", got, w)
	}
}

// fixes returns the fix lines of stderr, each after the warning it fixes:
// warning text -> fix text.
func fixes(stderr string) map[string]string {
	out := map[string]string{}
	lines := hintLines(stderr)
	for i, l := range lines {
		if fix, ok := strings.CutPrefix(l, "nss-entrypoint:   fix: "); ok && i > 0 {
			out[strings.TrimPrefix(lines[i-1], "nss-entrypoint: ")] = fix
		}
	}
	return out
}

// checkHints runs the image bare and asserts that every fix is phrased for
// this runtime: each names want[i] (a substring of the fix for the warning
// that contains key i), and none names another runtime's command.
func checkHints(t *testing.T, rt runtimeUnderTest, flags []string, want map[string]string) {
	t.Helper()
	r := rt.run(t, nil, flags, "run")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got := fixes(r.stderr)
	for warning, fix := range want {
		found := false
		for w, f := range got {
			if strings.Contains(w, warning) {
				found = true
				contains(t, "fix for "+w, f, fix)
			}
		}
		if !found {
			t.Errorf("no warning with %q:\n%s", warning, r.stderr)
		}
	}
	for w, f := range got {
		for _, other := range []string{"docker run", "podman run", "nerdctl run", "ctr run", "srun", "apptainer", "kubectl", "emptyDir"} {
			if other != rt.command && strings.Contains(f, other) && !strings.Contains(rt.command, other) {
				t.Errorf("fix for %q names %q, not %q: %s", w, other, rt.command, f)
			}
		}
	}
}

// fixFlags cuts the flags out of a fix such as `podman run -e HF_TOKEN ...`
// and evaluates them as a shell would, in dir with the given environment:
// what a user gets who pastes the fix.
func fixFlags(t *testing.T, rt runtimeUnderTest, fix, dir string, env []string) []string {
	t.Helper()
	_, after, ok := strings.Cut(fix, rt.command+" ")
	if !ok {
		t.Fatalf("fix %q does not start with %q", fix, rt.command)
	}
	words, _, ok := strings.Cut(after, " ...")
	if !ok {
		t.Fatalf("fix %q has no \" ...\" after its flags", fix)
	}
	cmd := exec.Command("sh", "-c", `printf '%s\0' `+words)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	if rt.evalUser != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: rt.evalUser}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh cannot evaluate the fix's flags %q: %v", words, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// fixCase is a warning a runtime's user meets, and what makes it appear.
type fixCase struct {
	name    string
	flags   []string // start flags that provoke the warning
	warning string   // a substring of the warning line
}

// checkFixes provokes each warning, takes the fix the entrypoint prints for
// it, evaluates its flags the way a shell would (in a folder with data/ and
// a HOME with a Hugging Face cache, HF_TOKEN exported), starts again with
// them added and asserts that the runtime accepts them and the warning is
// gone.
func checkFixes(t *testing.T, rt runtimeUnderTest, base []string, cases []fixCase) {
	t.Helper()
	uid, gid := 1000, 1000
	if rt.evalUser != nil {
		uid, gid = int(rt.evalUser.Uid), int(rt.evalUser.Gid)
	}
	work := privateDir(t, "nss-e2e-fix-")
	for p, content := range map[string]string{"data/train.csv": "a,b\n1,2\n", "home/.cache/huggingface/hub/.keep": ""} {
		full := filepath.Join(work, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	filepath.Walk(work, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != work {
			os.Lchown(p, uid, gid)
		}
		return nil
	})
	env := []string{"HOME=" + filepath.Join(work, "home"), "HF_TOKEN=" + e2eToken}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flags := append(slices.Clone(base), tc.flags...)
			r := rt.run(t, nil, flags, "run")
			var fix string
			for w, f := range fixes(r.stderr) {
				if strings.Contains(w, tc.warning) {
					fix = f
				}
			}
			if fix == "" {
				t.Fatalf("no warning with %q (exit %d):\n%s", tc.warning, r.code, r.stderr)
			}
			add := fixFlags(t, rt, fix, work, env)
			r = rt.run(t, env, append(flags, add...), "run")
			if r.code != 0 {
				t.Fatalf("with the fix %q (%q): exit %d:\n%s", fix, add, r.code, r.stderr)
			}
			report(t, r)
			lacks(t, fmt.Sprintf("stderr with the fix %q", add), r.stderr, tc.warning)
		})
	}
}

// checkExitAndSignals asserts that the target's exit status comes back
// through the runtime, that the runtime's stop ends it with SIGTERM (143),
// that a target that handles SIGTERM gets it, and that USR1 and HUP arrive.
func checkExitAndSignals(t *testing.T, rt runtimeUnderTest, base []string) {
	t.Helper()
	for _, code := range []int{0, 42} {
		r := rt.run(t, nil, append(slices.Clone(base), rt.setenv("FAKE_TARGET_EXIT="+strconv.Itoa(code))...), "run")
		if r.code != code {
			t.Errorf("exit %d, want the target's %d: %s", r.code, code, r.stderr)
		}
	}
	unique := func(s string) string { return fmt.Sprintf("nss-e2e-%s-%d", s, time.Now().UnixNano()) }
	t.Run("stop sends SIGTERM", func(t *testing.T) {
		name := unique("stop")
		f := rt.start(t, name, base...)
		rt.stop(t, name)
		if code := f.exit(t); code != 143 {
			t.Errorf("exit %d after stop, want 143:\n%s", code, f.stderr.String())
		}
	})
	t.Run("a target that handles SIGTERM", func(t *testing.T) {
		name := unique("term")
		f := rt.start(t, name, append(slices.Clone(base), rt.setenv("FAKE_TARGET_CATCH_TERM=1")...)...)
		rt.stop(t, name)
		if code := f.exit(t); code != 0 {
			t.Errorf("exit %d, want 0 from a target that handles SIGTERM:\n%s", code, f.stderr.String())
		}
		contains(t, "output", f.stderr.String(), "signal TERM")
	})
	t.Run("signals reach the target", func(t *testing.T) {
		name := unique("sig")
		f := rt.start(t, name, base...)
		for _, sig := range []string{"USR1", "HUP"} {
			rt.signal(t, name, sig)
			f.waitLog(t, "signal "+sig)
		}
		rt.stop(t, name)
		f.exit(t)
	})
}
