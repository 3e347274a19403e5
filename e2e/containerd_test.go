//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// containerdNamespace keeps the suite's images and containers apart from
// anything else a containerd might hold.
const containerdNamespace = "nss-e2e"

// containerd is Debian's containerd with its own config, root, state and
// socket under a private directory (the CRI plugin off), never the one
// behind dockerd.
type containerd struct {
	sock  string
	dir   string
	image string
	entry []string
}

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	needTools(t, "Debian's containerd", "containerd", "ctr", "containerd-shim-runc-v2", "runc")
	img, err := imageUnderTest()
	if err != nil {
		t.Fatal(err)
	}
	dir := privateDir(t, "nss-containerd-")
	c := &containerd{sock: filepath.Join(dir, "containerd.sock"), dir: dir, entry: img.Entrypoint}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc", filepath.Join(dir, "debug.sock"))
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "containerd.log")
	daemon(t, log, nil, "containerd", "--config", conf)
	if !waitUntil(30*time.Second, func() bool { return c.ctr("version").Run() == nil }) {
		t.Fatalf("containerd did not answer on %s:\n%s", c.sock, fileTail(log))
	}
	r := command(t, c.ctr("images", "import", img.Archive))
	if r.code != 0 {
		t.Fatalf("ctr images import: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if rest, ok := strings.CutPrefix(l, "unpacking "); ok {
			c.image, _, _ = strings.Cut(rest, " ")
		}
	}
	if c.image == "" {
		t.Fatalf("ctr images import named no image: %s", r.stdout)
	}
	return c
}

func (c *containerd) ctr(args ...string) *exec.Cmd {
	return exec.Command("ctr", append([]string{"--address", c.sock, "--namespace", containerdNamespace}, args...)...)
}

var ctrSeq atomic.Int64

// ctrRuntime runs the image with ctr run. ctr replaces the image's
// ENTRYPOINT and CMD with whatever command it is given, so the command
// starts with the ENTRYPOINT, as docs/running.md tells ctr users.
func (c *containerd) ctrRuntime() runtimeUnderTest {
	argv := func(args []string) []string { return append(slices.Clone(c.entry), args...) }
	return runtimeUnderTest{
		command: "ctr run",
		run: func(t *testing.T, cliEnv, flags []string, args ...string) result {
			t.Helper()
			id := fmt.Sprintf("nss-e2e-%d-%d", os.Getpid(), ctrSeq.Add(1))
			all := append(append([]string{"run", "--rm"}, flags...), c.image, id)
			cmd := c.ctr(append(all, argv(args)...)...)
			cmd.Env = append(os.Environ(), cliEnv...)
			return command(t, cmd)
		},
		setenv: func(kv string) []string { return []string{"--env", kv} },
		start: func(t *testing.T, name string, flags ...string) *foreground {
			all := append(append([]string{"run", "--rm", "--env", "FAKE_TARGET_WAIT=1"}, flags...), c.image, name)
			return startForeground(t, c.ctr(append(all, argv([]string{"run"})...)...))
		},
		stop: func(t *testing.T, name string) {
			if r := command(t, c.ctr("task", "kill", "--signal", "SIGTERM", name)); r.code != 0 {
				t.Errorf("ctr task kill: %s", r.stderr)
			}
		},
		signal: func(t *testing.T, name, sig string) {
			if r := command(t, c.ctr("task", "kill", "--signal", "SIG"+sig, name)); r.code != 0 {
				t.Errorf("ctr task kill --signal SIG%s: %s", sig, r.stderr)
			}
		},
	}
}

// nerdctlRuntime runs the image with nerdctl run against the same
// containerd, with no network (no CNI plugins needed).
func (c *containerd) nerdctlRuntime(t *testing.T) runtimeUnderTest {
	needTools(t, "nerdctl built from the Go module proxy by e2e/install-runtimes.sh", "nerdctl")
	cmd := func(cliEnv []string, args ...string) *exec.Cmd {
		global := []string{"--address", c.sock, "--namespace", containerdNamespace,
			"--data-root", filepath.Join(c.dir, "nerdctl"), "--cni-netconfpath", filepath.Join(c.dir, "cni")}
		cmd := exec.Command("nerdctl", append(global, args...)...)
		cmd.Env = append(os.Environ(), cliEnv...)
		return cmd
	}
	base := []string{"--net", "none"}
	return runtimeUnderTest{
		command: "nerdctl run",
		run: func(t *testing.T, cliEnv, flags []string, args ...string) result {
			t.Helper()
			all := append(append(append([]string{"run", "--rm"}, base...), flags...), c.image)
			return command(t, cmd(cliEnv, append(all, args...)...))
		},
		setenv: func(kv string) []string { return []string{"-e", kv} },
		start: func(t *testing.T, name string, flags ...string) *foreground {
			all := append(append(append([]string{"run", "--rm", "--name", name, "-e", "FAKE_TARGET_WAIT=1"}, base...), flags...), c.image, "run")
			return startForeground(t, cmd(nil, all...))
		},
		stop: func(t *testing.T, name string) {
			if r := command(t, cmd(nil, "stop", "-t", "10", name)); r.code != 0 {
				t.Errorf("nerdctl stop: %s", r.stderr)
			}
		},
		signal: func(t *testing.T, name, sig string) {
			if r := command(t, cmd(nil, "kill", "-s", sig, name)); r.code != 0 {
				t.Errorf("nerdctl kill -s %s: %s", sig, r.stderr)
			}
		},
	}
}

func TestContainerd(t *testing.T) {
	c := startContainerd(t)

	t.Run("ctr", func(t *testing.T) {
		rt := c.ctrRuntime()
		t.Run("detected", func(t *testing.T) {
			checkDetected(t, rt, nil, "ok: containerd", "io.containerd.snapshotter", "ctr")
		})
		t.Run("hints in ctr's words", func(t *testing.T) {
			checkHints(t, rt, nil, map[string]string{
				"/workspace is empty": `ctr run --mount type=bind,src="$(pwd)/data",dst=/workspace/data,options=rbind ...`,
				"HF_HOME is not set":  `ctr run --mount type=bind,src="$HOME/.cache/huggingface",dst=`,
				"Hugging Face token":  `ctr run --env HF_TOKEN="$HF_TOKEN" ...`,
				"/dev/shm is":         "ctr run --mount type=tmpfs,src=tmpfs,dst=/dev/shm,options=size=1g ...",
				"no GPU is visible":   "ctr run --gpus 0 ...",
			})
			r := rt.run(t, nil, []string{"--mount", "type=bind,src=" + closedDir(t, 0, 0) + ",dst=/workspace,options=rbind:ro"}, "run")
			contains(t, "stderr", r.stderr, "fix: run the container as the owner of the folder: ctr run has no user flag")
		})
		t.Run("fixes work", func(t *testing.T) {
			checkFixes(t, rt, nil, []fixCase{
				{"shm", nil, "/dev/shm is"},
				{"workspace", nil, "/workspace is empty"},
				{"hf cache", nil, "HF_HOME is not set"},
				{"token", nil, "no Hugging Face token"},
			})
		})
		t.Run("exit status and signals", func(t *testing.T) {
			checkExitAndSignals(t, rt, nil)
		})
	})

	t.Run("nerdctl", func(t *testing.T) {
		rt := c.nerdctlRuntime(t)
		t.Run("detected", func(t *testing.T) {
			checkDetected(t, rt, nil, "ok: nerdctl", "/etc/hosts")
		})
		t.Run("hints in nerdctl's words", func(t *testing.T) {
			checkHints(t, rt, nil, map[string]string{
				"/workspace is empty": `nerdctl run -v "$(pwd)/data:/workspace/data" ...`,
				"HF_HOME is not set":  `nerdctl run -v "$HOME/.cache/huggingface:`,
				"Hugging Face token":  "nerdctl run -e HF_TOKEN ...",
				"/dev/shm is":         "nerdctl run --shm-size=1g ...",
				"no GPU is visible":   "nerdctl run --gpus all ...",
			})
		})
		t.Run("fixes work", func(t *testing.T) {
			checkFixes(t, rt, nil, []fixCase{
				{"shm", nil, "/dev/shm is"},
				{"workspace", nil, "/workspace is empty"},
				{"hf cache", nil, "HF_HOME is not set"},
				{"token", nil, "no Hugging Face token"},
				{"user", []string{"-v", closedDir(t, 0, 0) + ":/workspace"}, "/workspace is not readable by uid"},
			})
		})
		t.Run("exit status and signals", func(t *testing.T) {
			checkExitAndSignals(t, rt, nil)
		})
	})
}
