//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/faketarget"
	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

var bins *testbuild.Set

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		stopBuilder()
		os.Exit(1)
	}
	code := m.Run()
	stopBuilder()
	testbuild.Cleanup()
	os.Exit(code)
}

func setup() error {
	out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("no Docker engine answers (docker version: %v: %s); start dockerd, or run .ci/run, which installs and starts one", err, bytes.TrimSpace(out))
	}
	cli, _ := exec.Command("docker", "version", "--format", "{{.Client.Version}}").Output()
	fmt.Fprintf(os.Stderr, "e2e: Docker engine %s, CLI %s\n", bytes.TrimSpace(out), bytes.TrimSpace(cli))
	if bins, err = testbuild.Build(); err != nil {
		return err
	}
	return buildSuiteImages(bins.Target)
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func docker(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command("docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return r
}

// run is `docker run --rm [flags...] IMAGE [args...]`; flags end at "--".
func run(t testing.TB, image string, flagsAndArgs ...string) result {
	t.Helper()
	i := slices.Index(flagsAndArgs, "--")
	flags, args := flagsAndArgs, []string(nil)
	if i >= 0 {
		flags, args = flagsAndArgs[:i], flagsAndArgs[i+1:]
	}
	all := append([]string{"run", "--rm"}, flags...)
	all = append(all, image)
	return docker(t, append(all, args...)...)
}

func report(t *testing.T, r result) faketarget.Report {
	t.Helper()
	rep, err := faketarget.Parse([]byte(r.stdout))
	if err != nil {
		t.Fatalf("no target report (exit %d): %v\nstdout %q\nstderr %s", r.code, err, r.stdout, r.stderr)
	}
	return rep
}

// hostDir makes a host folder that appuser (uid 1000) can write.
func hostDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o777)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(p, 1000, 1000)
		}
		return nil
	})
	return dir
}

// hintLines returns the nss-entrypoint lines of stderr.
func hintLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "nss-entrypoint: ") {
			out = append(out, l)
		}
	}
	return out
}

func contains(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s lacks %q:\n%s", what, sub, s)
	}
}

func lacks(t *testing.T, what, s, sub string) {
	t.Helper()
	if strings.Contains(s, sub) {
		t.Errorf("%s has %q:\n%s", what, sub, s)
	}
}

func TestNoArgumentsGivesHelpWithoutHints(t *testing.T) {
	r := run(t, suiteImage(t))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := report(t, r).Args(); !slices.Equal(got, []string{"safe-synthesizer", "--help"}) {
		t.Errorf("argv %q", got)
	}
	if len(hintLines(r.stderr)) != 0 {
		t.Errorf("hints for an info-only start: %s", r.stderr)
	}
}

func TestWorkspaceMounts(t *testing.T) {
	data := hostDir(t, map[string]string{"train.csv": "a,b\n1,2\n"})
	vol := fmt.Sprintf("nss-e2e-data-%d", time.Now().UnixNano())
	defer docker(t, "volume", "rm", "-f", vol)
	tests := []struct {
		name  string
		flags []string
		want  string
		not   string
	}{
		{"no mounts", nil, `warning: /workspace is empty: no data is mounted there`, ""},
		{"absolute bind mount", []string{"-v", data + ":/workspace/data"}, "", "/workspace"},
		{"relative name: a named volume", []string{"-v", vol + ":/workspace/data"},
			`/workspace/data is an empty Docker named volume "` + vol + `", not a host folder`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, suiteImage(t), append(tc.flags, "--", "run")...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if tc.want != "" {
				contains(t, "stderr", r.stderr, tc.want)
				contains(t, "stderr", r.stderr, "fix: ")
			}
			if tc.not != "" {
				lacks(t, "stderr", r.stderr, "warning: "+tc.not)
			}
		})
	}
	// The named-volume hint names the fix with the volume's name.
	r := run(t, suiteImage(t), "-v", vol+":/workspace/data", "--", "run")
	contains(t, "stderr", r.stderr, `fix: use an absolute host path: docker run -v "$(pwd)/`+vol+`:/workspace/data" ...`)
}

func TestShm(t *testing.T) {
	r := run(t, suiteImage(t), "--", "run")
	contains(t, "stderr", r.stderr, "warning: /dev/shm is 64 MiB")
	contains(t, "stderr", r.stderr, "fix: docker run --shm-size=1g ... (or --ipc=host)")
	for _, flag := range []string{"--shm-size=1g", "--ipc=host"} {
		r := run(t, suiteImage(t), flag, "--", "run")
		lacks(t, "stderr with "+flag, r.stderr, "/dev/shm")
		if r.code != 0 {
			t.Errorf("%s: exit %d", flag, r.code)
		}
	}
}

const e2eToken = "hf_e2eSECRETtokenVALUEabcdefghijklm"

func TestHuggingFace(t *testing.T) {
	cache := hostDir(t, map[string]string{"hub/.keep": ""})
	r := run(t, suiteImage(t), "--", "run")
	contains(t, "stderr", r.stderr, "warning: HF_HOME is not set")
	contains(t, "stderr", r.stderr, "warning: no Hugging Face token")
	r = run(t, suiteImage(t), "-e", "HF_HOME=/nope", "--", "run")
	contains(t, "stderr", r.stderr, "warning: HF_HOME=/nope does not exist: the cache is not mounted")
	r = run(t, suiteImage(t), "-v", cache+":/hf", "-e", "HF_HOME=/hf", "--", "run")
	lacks(t, "stderr", r.stderr, "warning: HF_HOME")

	// A token silences the hint and appears nowhere.
	r = run(t, suiteImage(t), "-e", "HF_TOKEN="+e2eToken, "--", "run")
	lacks(t, "stderr", r.stderr, "Hugging Face token")
	lacks(t, "stderr", r.stderr, e2eToken)
	for _, format := range []string{"text", "json", "markdown"} {
		r := run(t, suiteImage(t), "-e", "HF_TOKEN="+e2eToken, "-v", cache+":/hf", "-e", "HF_HOME=/hf",
			"--", "--diagnose", "--format", format, "--verbose")
		if r.code != 0 && r.code != 1 {
			t.Errorf("--diagnose --format %s: exit %d %s", format, r.code, r.stderr)
		}
		lacks(t, "diagnose "+format, r.stdout+r.stderr, e2eToken)
		contains(t, "diagnose "+format, r.stdout, "HF_TOKEN")
	}
	// A token file in the mounted cache counts too.
	withFile := hostDir(t, map[string]string{"token": e2eToken + "\n"})
	r = run(t, suiteImage(t), "-v", withFile+":/hf", "-e", "HF_HOME=/hf", "--", "run")
	lacks(t, "stderr", r.stderr, "Hugging Face token")
}

func TestUnknownUserAndReadOnlyRoot(t *testing.T) {
	r := run(t, suiteImage(t), "--user", "4242:4242", "--", "run")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rep := report(t, r)
	if rep.UID != 4242 || !slices.Contains(rep.Env(), "HOME=/") {
		t.Errorf("uid %d env %q", rep.UID, rep.Env())
	}
	contains(t, "stderr", r.stderr, "warning: /workspace is empty")

	r = run(t, suiteImage(t), "--read-only", "--tmpfs", "/tmp", "--", "run")
	if r.code != 0 {
		t.Fatalf("read-only: exit %d: %s", r.code, r.stderr)
	}
	report(t, r)
	contains(t, "stderr", r.stderr, "warning: HF_HOME is not set")

	// --diagnose says HOME=/ cannot be written by an unknown uid.
	r = run(t, suiteImage(t), "--user", "4242:4242", "--", "--diagnose", "--format", "json")
	contains(t, "diagnose", r.stdout, "uid 4242 cannot write its HOME=/; the uid has no passwd entry")
}

// waitFor polls the container's logs until they contain s.
func waitFor(t *testing.T, id, s string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r := docker(t, "logs", id)
		if strings.Contains(r.stdout+r.stderr, s) {
			return r.stdout + r.stderr
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := docker(t, "logs", id)
	t.Fatalf("container %s never logged %q: %s%s", id, s, r.stdout, r.stderr)
	return ""
}

func start(t *testing.T, image string, flags ...string) string {
	t.Helper()
	r := docker(t, append(append([]string{"run", "-d", "-e", "FAKE_TARGET_WAIT=1"}, flags...), image, "run")...)
	if r.code != 0 {
		t.Fatalf("docker run -d: %s", r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	waitFor(t, id, "ready")
	return id
}

func TestExecNotFork(t *testing.T) {
	id := start(t, suiteImage(t))
	r := docker(t, "top", id, "-o", "pid,ppid,comm")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("docker top shows %d processes, want tini and the target:\n%s", len(lines)-1, r.stdout)
	}
	contains(t, "docker top", lines[1]+lines[2], "tini")
	contains(t, "docker top", lines[1]+lines[2], "safe-synthesiz") // comm is cut at 15 characters
	lacks(t, "docker top", r.stdout, "nss-entrypoint")
	logs := waitFor(t, id, "ready")
	rep, _ := faketarget.Parse([]byte(strings.SplitN(logs, "\n", 2)[0]))
	if rep.PPID != 1 {
		t.Errorf("the target's parent is %d, want tini (1)", rep.PPID)
	}
}

func TestExitCodesAndSignals(t *testing.T) {
	for _, code := range []int{0, 1, 42, 255} {
		r := run(t, suiteImage(t), "-e", "FAKE_TARGET_EXIT="+strconv.Itoa(code), "--", "run")
		if r.code != code {
			t.Errorf("exit %d, want %d", r.code, code)
		}
	}
	t.Run("docker stop sends SIGTERM", func(t *testing.T) {
		id := start(t, suiteImage(t))
		docker(t, "stop", "-t", "10", id)
		r := docker(t, "inspect", "-f", "{{.State.ExitCode}}", id)
		if got := strings.TrimSpace(r.stdout); got != "143" {
			t.Errorf("exit %s after docker stop, want 143", got)
		}
	})
	t.Run("a target that handles SIGTERM", func(t *testing.T) {
		id := start(t, suiteImage(t), "-e", "FAKE_TARGET_CATCH_TERM=1")
		docker(t, "stop", "-t", "10", id)
		if got := strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.ExitCode}}", id).stdout); got != "0" {
			t.Errorf("exit %s", got)
		}
		contains(t, "logs", waitFor(t, id, "signal"), "signal TERM")
	})
	t.Run("docker kill reaches the target", func(t *testing.T) {
		id := start(t, suiteImage(t))
		for _, sig := range []string{"USR1", "HUP"} {
			docker(t, "kill", "-s", sig, id)
			waitFor(t, id, "signal "+sig)
		}
		docker(t, "kill", "-s", "INT", id)
		waitFor(t, id, "signal INT")
		docker(t, "wait", id)
		if got := strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.ExitCode}}", id).stdout); got != "130" {
			t.Errorf("exit %s after SIGINT, want 130", got)
		}
	})
	t.Run("missing target", func(t *testing.T) {
		r := run(t, suiteImage(t), "-e", "NSS_ENTRYPOINT_TARGET=no-such-program", "-e", "NSS_ENTRYPOINT_CHECKS=off", "--", "run")
		if r.code != 127 {
			t.Errorf("exit %d, want 127", r.code)
		}
		if lines := hintLines(r.stderr); len(lines) != 1 || !strings.Contains(lines[0], "cannot run no-such-program: not found in PATH=") {
			t.Errorf("stderr %q", r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("stdout %q", r.stdout)
		}
	})
}

// directArgs returns run's flags and arguments that start the target directly
// under tini, as ENTRYPOINT ["tini", "--", "safe-synthesizer"] would.
func directArgs(flags []string, args ...string) []string {
	entry, prefix := directFlags()
	a := append(slices.Clone(flags), entry...)
	a = append(append(a, "--"), prefix...)
	return append(a, args...)
}

// sameAsDirect runs the target through the entrypoint and directly under
// tini with the same flags and arguments, and returns both reports.
func sameAsDirect(t *testing.T, flags []string, args ...string) (via, direct faketarget.Report, viaRes result) {
	t.Helper()
	a := append(append(slices.Clone(flags), "--"), args...)
	viaRes = run(t, suiteImage(t), a...)
	directRes := run(t, suiteImage(t), directArgs(flags, args...)...)
	return report(t, viaRes), report(t, directRes), viaRes
}

func TestArgvEnvironmentAndProcessStateAreUnchanged(t *testing.T) {
	long := strings.Repeat("y", 100*1024)
	args := []string{"run", "", "two words", "line\nbreak", "tab\t", "\xff\xfe", "ünïcödé", long}
	flags := []string{"-e", "EMPTY=", "-e", "SPACES=a b  c", "-e", "NEWLINE=x\ny", "-e", "NONUTF8=\xc3\x28", "--shm-size=1g"}
	via, direct, _ := sameAsDirect(t, flags, args...)
	gotArgs, directArgs := via.Args(), direct.Args()
	if !slices.Equal(gotArgs, directArgs) {
		t.Errorf("argv differs from a direct start:\n via    %q\n direct %q", faketarget.Abbrev(gotArgs), faketarget.Abbrev(directArgs))
	}
	// Valid UTF-8 arrives exactly as sent; Docker's API itself replaces
	// invalid UTF-8 (JSON), for the direct start just the same.
	for i, a := range args {
		if a == "\xff\xfe" {
			continue
		}
		if gotArgs[i+1] != a {
			t.Errorf("argument %d: %q, sent %q", i, faketarget.Abbrev([]string{gotArgs[i+1]}), faketarget.Abbrev([]string{a}))
		}
	}
	// Docker orders the variables as it likes and names each container
	// differently; the set must be the same, and every -e value exact.
	norm := func(env []string) []string {
		var out []string
		for _, kv := range env {
			if !strings.HasPrefix(kv, "HOSTNAME=") {
				out = append(out, kv)
			}
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(norm(via.Env()), norm(direct.Env())) {
		t.Errorf("environment differs:\n via    %q\n direct %q", via.Env(), direct.Env())
	}
	for _, kv := range []string{"EMPTY=", "SPACES=a b  c", "NEWLINE=x\ny"} {
		if !slices.Contains(via.Env(), kv) {
			t.Errorf("%q did not arrive: %q", kv, via.Env())
		}
	}
	if via.SigBlk != direct.SigBlk || via.SigIgn != direct.SigIgn || via.SigCgt != direct.SigCgt {
		t.Errorf("signal state differs from what tini set up: via %s/%s/%s direct %s/%s/%s",
			via.SigBlk, via.SigIgn, via.SigCgt, direct.SigBlk, direct.SigIgn, direct.SigCgt)
	}
	if via.FDKinds() != direct.FDKinds() {
		t.Errorf("descriptors differ: via %v direct %v", via.FDs, direct.FDs)
	}
	if via.Rlimit != direct.Rlimit || via.Cwd != direct.Cwd || via.PPID != 1 {
		t.Errorf("rlimit %v/%v cwd %q/%q ppid %d", via.Rlimit, direct.Rlimit, via.Cwd, direct.Cwd, via.PPID)
	}
}

func TestStdoutIsTheTargetsOwn(t *testing.T) {
	want := "exact output\n\twith tabs, ünïcödé and no newline at the end"
	r := run(t, suiteImage(t), "-e", "FAKE_TARGET_STDOUT="+want, "--", "run")
	if r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if len(hintLines(r.stderr)) == 0 {
		t.Error("expected hints on stderr in a bare container")
	}
}

func TestLDBindNow(t *testing.T) {
	r := run(t, suiteImage(t), "-e", "LD_BIND_NOW=1", "--", "run")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	report(t, r)
	// With a GPU the helper runs too, lazily bound despite LD_BIND_NOW.
	r = run(t, suiteImage(t), append(fakeGPU("devices=1"), "-e", "LD_BIND_NOW=1", "--", "run")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	report(t, r)
	contains(t, "stderr", r.stderr, "ok: 1 GPU: NVIDIA H200")
}

// fakeGPU mounts the fake libnvidia-ml and stand-in device nodes.
func fakeGPU(mode string) []string {
	return []string{
		"-v", filepath.Join(bins.NVMLDir, "libnvidia-ml.so.1") + ":/usr/local/nvidia/lib64/libnvidia-ml.so.1:ro",
		"-e", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64",
		"--device", "/dev/null:/dev/nvidiactl", "--device", "/dev/null:/dev/nvidia0", "--device", "/dev/null:/dev/nvidia-uvm",
		"-e", "NSS_FAKE_NVML=" + mode,
	}
}

func TestFakeGPU(t *testing.T) {
	r := run(t, suiteImage(t), "--", "run")
	contains(t, "stderr", r.stderr, "error: no GPU is visible in this container")
	contains(t, "stderr", r.stderr, "fix: give the container GPUs: docker run --gpus all ...")

	tests := []struct {
		mode, timeout, want string
	}{
		{"devices=2", "", "2 GPUs: 2x NVIDIA H200 (140.4 GiB), driver 580.159.04, CUDA 13.0"},
		{"init=9", "", "error: the NVIDIA kernel driver is not loaded on the host"},
		{"init=18", "", "versions differ"},
		{"crash", "", "the GPU probe crashed inside the NVIDIA driver library"},
		{"hang", "1s", "the GPU probe did not answer in time"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			flags := append(fakeGPU(tc.mode), "--shm-size=1g", "-e", "FAKE_TARGET_EXIT=3")
			if tc.timeout != "" {
				flags = append(flags, "-e", "NSS_ENTRYPOINT_TIMEOUT="+tc.timeout)
			}
			r := run(t, suiteImage(t), append(flags, "--", "run")...)
			if r.code != 3 {
				t.Fatalf("exit %d, want the target's 3: %s", r.code, r.stderr)
			}
			report(t, r)
			contains(t, "stderr", r.stderr, tc.want)
			if tc.mode == "hang" && r.took > 6*time.Second {
				t.Errorf("a hung probe delayed the start by %v with a 1s deadline", r.took)
			}
		})
	}
	// The report agrees.
	r = run(t, suiteImage(t), append(fakeGPU("devices=1"), "--shm-size=1g", "--", "--diagnose", "--format", "json")...)
	var doc struct {
		Checks []struct{ ID, Status, Message string } `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("--diagnose --format json: %v\n%s", err, r.stdout)
	}
	status := map[string]string{}
	for _, c := range doc.Checks {
		status[c.ID] = c.Status + ": " + c.Message
	}
	for id, want := range map[string]string{"gpu": "ok: 1 GPU: NVIDIA H200", "gpu-uvm": "ok:", "shm": "ok: /dev/shm is 1 GiB",
		"runtime": "ok: docker", "workspace": "warn: /workspace is empty"} {
		if !strings.HasPrefix(status[id], want) {
			t.Errorf("%s: %q, want %q", id, status[id], want)
		}
	}
}

func TestDiagnoseAgreesWithTheContainer(t *testing.T) {
	vol := fmt.Sprintf("nss-e2e-diag-%d", time.Now().UnixNano())
	defer docker(t, "volume", "rm", "-f", vol)
	r := run(t, suiteImage(t), "-v", vol+":/workspace/data", "--", "--diagnose", "--format", "json")
	if r.code != 1 {
		t.Errorf("exit %d, want 1 (no GPU is a failure)", r.code)
	}
	var doc struct {
		Overall string `json:"overall"`
		Checks  []struct {
			ID, Status, Message string
			Data                map[string]any
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	got := map[string]string{}
	for _, c := range doc.Checks {
		got[c.ID] = c.Status + ": " + c.Message
	}
	for id, want := range map[string]string{
		"runtime":   "ok: docker",
		"identity":  "ok: uid 1000 (appuser)",
		"workspace": "warn: /workspace/data is an empty Docker named volume",
		"mounts":    "warn: /workspace/data is the Docker named volume",
		"shm":       "warn: /dev/shm is 64 MiB",
		"gpu":       "fail: no GPU is visible",
	} {
		if !strings.HasPrefix(got[id], want) {
			t.Errorf("%s: %q, want %q", id, got[id], want)
		}
	}
}

func TestOtherInitsAndPIDNamespaces(t *testing.T) {
	for _, flags := range [][]string{{"--init"}, {"--pid=host"}} {
		r := run(t, suiteImage(t), append(flags, "-e", "FAKE_TARGET_EXIT=5", "--", "run")...)
		if r.code != 5 {
			t.Errorf("%v: exit %d: %s", flags, r.code, r.stderr)
		}
		report(t, r)
	}
}

// A container's pids.max (docker run --pids-limit) counts tini, every
// thread of the entrypoint and any helper. The entrypoint reads it (here
// cgroup v1's, which Docker mounts at /sys/fs/cgroup/pids) and, with fewer
// than 32 tasks left, starts no helper and no signal thread: tini and its
// three threads fit in 5. Before, at 5 and 6 the entrypoint's runtime
// aborted (it could not create a thread for os/signal), and at 8 the GPU
// probe did, reported as "a crash inside the NVIDIA driver library".
func TestFewPidsStillStartTheTarget(t *testing.T) {
	for _, limit := range []string{"5", "5", "5", "6", "8"} {
		r := run(t, suiteImage(t), append(fakeGPU("devices=1"), "--pids-limit", limit, "--shm-size=1g", "-e", "FAKE_TARGET_EXIT=5", "--", "run")...)
		if r.code != 5 {
			t.Errorf("--pids-limit %s: exit %d: %s", limit, r.code, r.stderr)
			continue
		}
		report(t, r)
		contains(t, "--pids-limit "+limit, r.stderr, "processes are scarce, so the GPU probe was not started (not started: pids.max is "+limit+" with ")
		contains(t, "--pids-limit "+limit, r.stderr, "fix: raise the process limit: docker run --pids-limit=-1")
	}
}

// BenchmarkDockerStart measures a whole docker run of the image started as
// tini -- nss-entrypoint against the same image started as
// tini -- safe-synthesizer directly: start time is measured, never asserted
// (go test -tags e2e -run '^$' -bench DockerStart ./e2e).
func BenchmarkDockerStart(b *testing.B) {
	flags := []string{"--shm-size=1g", "-e", "FAKE_TARGET_STDOUT="}
	for _, start := range []struct {
		name string
		args []string
	}{{"via-entrypoint", append(append(slices.Clone(flags), "--"), "run")}, {"direct", directArgs(flags, "run")}} {
		b.Run(start.name, func(b *testing.B) {
			for b.Loop() {
				if r := run(b, suiteImage(b), start.args...); r.code != 0 {
					b.Fatalf("%s: exit %d", start.name, r.code)
				}
			}
		})
	}
}
