//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// rootlessUser is the unprivileged account the rootless Podman scenarios run
// as; .ci/run creates it (useradd gives it a subordinate id range).
const rootlessUser = "nss-e2e"

// podman is Debian's podman with its own storage, run root and temporary
// directory under dir, so that nothing touches the host's containers.
type podman struct {
	global []string
	image  string
	cred   *syscall.Credential // nil: run as root
	env    []string
}

func (p *podman) cmd(cliEnv []string, args ...string) *exec.Cmd {
	cmd := exec.Command("podman", append(slices.Clone(p.global), args...)...)
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
		cmd.Env = append(slices.Clone(p.env), cliEnv...)
	} else {
		cmd.Env = append(os.Environ(), cliEnv...)
	}
	return cmd
}

// newPodman prepares private storage under dir and loads the image under test.
func newPodman(t *testing.T, dir string, cred *syscall.Credential, env []string) *podman {
	t.Helper()
	img, err := imageUnderTest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"root", "run", "tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	p := &podman{cred: cred, env: env, global: []string{
		"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		// Kernel overlay, rootless too (rootless Podman 4.3 falls back to
		// vfs, a full copy per container, without fuse-overlayfs).
		"--storage-driver", "overlay",
		// Debian's podman 4.3 on a cgroup v1 host without systemd: runc and
		// cgroupfs; no event log outside dir.
		"--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
	}}
	archive := img.Archive
	if cred != nil {
		// The unprivileged user reads its own copy.
		archive = filepath.Join(dir, "image.tar")
		if err := os.Link(img.Archive, archive); err != nil {
			if out, err := exec.Command("cp", img.Archive, archive).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v: %s", err, out)
			}
		}
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				os.Lchown(p, int(cred.Uid), int(cred.Gid))
			}
			return nil
		})
	}
	r := command(t, p.cmd(nil, "load", "-i", archive))
	if r.code != 0 {
		t.Fatalf("podman load: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if name, ok := strings.CutPrefix(l, "Loaded image: "); ok {
			p.image = strings.TrimSpace(name)
		}
	}
	if p.image == "" {
		t.Fatalf("podman load named no image: %s", r.stdout)
	}
	t.Cleanup(func() { command(t, p.cmd(nil, "rm", "-a", "-f")) })
	return p
}

// runtime returns the scenarios' view of this Podman; base flags go on
// every start.
func (p *podman) runtime(base []string, evalUser *syscall.Credential) runtimeUnderTest {
	run := func(t *testing.T, cliEnv, flags []string, args ...string) result {
		t.Helper()
		all := append(append([]string{"run", "--rm"}, base...), flags...)
		return command(t, p.cmd(cliEnv, append(append(all, p.image), args...)...))
	}
	return runtimeUnderTest{
		command: "podman run",
		run:     run,
		setenv:  func(kv string) []string { return []string{"-e", kv} },
		start: func(t *testing.T, name string, flags ...string) *foreground {
			all := append(append([]string{"run", "--rm", "--name", name, "-e", "FAKE_TARGET_WAIT=1"}, base...), flags...)
			return startForeground(t, p.cmd(nil, append(all, p.image, "run")...))
		},
		stop: func(t *testing.T, name string) {
			if r := command(t, p.cmd(nil, "stop", "-t", "10", name)); r.code != 0 {
				t.Errorf("podman stop: %s", r.stderr)
			}
		},
		signal: func(t *testing.T, name, sig string) {
			if r := command(t, p.cmd(nil, "kill", "-s", sig, name)); r.code != 0 {
				t.Errorf("podman kill -s %s: %s", sig, r.stderr)
			}
		},
		evalUser: evalUser,
	}
}

// podmanLimits are the explicit --ulimit flags that rootful Podman needs on
// a host where the engine cannot raise its limits (no CAP_SYS_RESOURCE):
// Podman's defaults (nofile 1048576) are then refused by runc. The values
// are the test's own hard limit for nofile and 4096 processes, below the
// 32768 that conmon runs with there.
func podmanLimits(t *testing.T) []string {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	n := strconv.FormatUint(rl.Max, 10)
	return []string{"--ulimit", "nofile=" + n + ":" + n, "--ulimit", "nproc=4096:4096"}
}

func podmanFixCases(unreadable string) []fixCase {
	return []fixCase{
		{"shm", nil, "/dev/shm is"},
		{"workspace", nil, "/workspace is empty"},
		{"hf cache", nil, "HF_HOME is not set"},
		{"token", nil, "no Hugging Face token"},
		{"user", []string{"-v", unreadable + ":/workspace"}, "/workspace is not readable by uid"},
	}
}

func TestPodmanRootful(t *testing.T) {
	needTools(t, "Debian's podman", "podman", "runc")
	p := newPodman(t, privateDir(t, "nss-podman-"), nil, nil)
	base := append([]string{"--network", "none"}, podmanLimits(t)...)
	rt := p.runtime(base, nil)

	t.Run("needs explicit ulimits without CAP_SYS_RESOURCE", func(t *testing.T) {
		if hasCap(unix.CAP_SYS_RESOURCE) {
			t.Skip("this host has CAP_SYS_RESOURCE: Podman's default limits work")
		}
		r := command(t, p.cmd(nil, "run", "--rm", "--network", "none", p.image, "run"))
		if r.code == 0 {
			t.Fatalf("podman run without --ulimit started; docs/running.md says it needs them here")
		}
		contains(t, "podman run without --ulimit", r.stderr, "error setting rlimit")
	})
	t.Run("detected", func(t *testing.T) {
		checkDetected(t, rt, nil, "ok: podman", "container=podman", "rootful")
	})
	t.Run("hints in Podman's words", func(t *testing.T) {
		checkHints(t, rt, nil, map[string]string{
			"/workspace is empty": `podman run -v "$(pwd)/data:/workspace/data:Z" ...`,
			"HF_HOME is not set":  `podman run -v "$HOME/.cache/huggingface:`,
			"Hugging Face token":  "podman run -e HF_TOKEN ...",
			"/dev/shm is":         "podman run --shm-size=1g ...",
			"no GPU is visible":   "podman run --device nvidia.com/gpu=all ...",
		})
	})
	t.Run("rootful podman refuses --userns=keep-id, so the user fix is --user", func(t *testing.T) {
		r := rt.run(t, nil, []string{"--userns=keep-id"}, "run")
		if r.code == 0 {
			t.Fatalf("rootful podman took --userns=keep-id:\n%s", r.stderr)
		}
		contains(t, "podman run --userns=keep-id", r.stderr, "keep-id is only supported in rootless mode")
		unreadable := closedDir(t, 0, 0)
		r = rt.run(t, nil, []string{"-v", unreadable + ":/workspace"}, "run")
		contains(t, "stderr", r.stderr, `fix: run the container as the owner of the folder: podman run --user "$(id -u):$(id -g)" ...`)
		lacks(t, "stderr", r.stderr, "keep-id")
	})
	t.Run("fixes work", func(t *testing.T) {
		checkFixes(t, rt, nil, podmanFixCases(closedDir(t, 0, 0)))
	})
	t.Run("exit status and signals", func(t *testing.T) {
		checkExitAndSignals(t, rt, nil)
	})
}

func TestPodmanRootless(t *testing.T) {
	needTools(t, "Debian's podman, uidmap", "podman", "runc", "newuidmap")
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		msg := "no user " + rootlessUser + " for rootless Podman; .ci/run creates it (useradd --create-home " + rootlessUser + ")"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	dir := privateDir(t, "nss-podman-rootless-")
	xdg := filepath.Join(dir, "xdg")
	os.MkdirAll(xdg, 0o700)
	env := []string{"HOME=" + u.HomeDir, "USER=" + u.Username, "XDG_RUNTIME_DIR=" + xdg, "PATH=" + os.Getenv("PATH")}
	// Rootless Podman keeps a pause process that holds its namespaces;
	// registered before newPodman's own clean-up, this runs after it.
	t.Cleanup(func() {
		// With --tmpdir, its pid file is there.
		if b, err := os.ReadFile(filepath.Join(dir, "tmp", "pause.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	p := newPodman(t, dir, cred, env)
	rt := p.runtime([]string{"--network", "none"}, cred)

	t.Run("detected", func(t *testing.T) {
		checkDetected(t, rt, nil, "ok: podman", "container=podman", "rootless")
	})
	t.Run("hints in Podman's words", func(t *testing.T) {
		checkHints(t, rt, nil, map[string]string{
			"/workspace is empty": `podman run -v "$(pwd)/data:/workspace/data:Z" ...`,
			"Hugging Face token":  "podman run -e HF_TOKEN ...",
			"/dev/shm is":         "podman run --shm-size=1g ...",
		})
	})
	t.Run("fixes work", func(t *testing.T) {
		// The user's own folder, closed to others: the image's appuser is
		// one of the user's subordinate ids and cannot read it.
		unreadable := closedDir(t, uid, gid)
		r := rt.run(t, nil, []string{"-v", unreadable + ":/workspace"}, "run")
		contains(t, "stderr", r.stderr, "fix: run the container as the owner of the folder: podman run --userns=keep-id:uid=1000,gid=1000 ...")
		checkFixes(t, rt, nil, podmanFixCases(unreadable))
	})
	t.Run("exit status and signals", func(t *testing.T) {
		checkExitAndSignals(t, rt, nil)
	})
}

// hasCap reports whether the test process has capability c in its
// effective set.
func hasCap(c int) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<uint(c)) != 0
		}
	}
	return false
}
