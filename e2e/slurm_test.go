//go:build e2e

package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// slurm is a one-node cluster from Debian's slurm-wlm: slurmctld and slurmd
// with their config, spool, state, logs and a munge daemon (own key and
// socket) under a private directory, on ports nobody else uses.
type slurm struct {
	dir, conf string
}

func startSlurm(t *testing.T) *slurm {
	t.Helper()
	needTools(t, "Debian's slurm-wlm and munge", "slurmctld", "slurmd", "srun", "scancel", "sinfo", "munged")
	dir := privateDir(t, "nss-slurm-")
	for _, d := range []string{"munge", "state", "spool", "log", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "munge"), 0o700)
	key := make([]byte, 1024)
	rand.Read(key)
	keyFile := filepath.Join(dir, "munge", "munge.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "munge.socket")
	mungeLog := filepath.Join(dir, "log", "munged.log")
	daemon(t, mungeLog, nil, "munged", "--foreground", "--force", "--socket="+sock, "--key-file="+keyFile,
		"--pid-file="+filepath.Join(dir, "run", "munged.pid"), "--seed-file="+filepath.Join(dir, "munge", "seed"),
		"--log-file="+filepath.Join(dir, "log", "munged.file.log"))
	if !waitUntil(20*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
		t.Fatalf("munged made no socket:\n%s", fileTail(mungeLog))
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	s := &slurm{dir: dir, conf: filepath.Join(dir, "slurm.conf")}
	conf := fmt.Sprintf(`ClusterName=nsse2e
SlurmctldHost=%[1]s(127.0.0.1)
SlurmctldPort=%[2]d
SlurmdPort=%[3]d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=%[4]s
StateSaveLocation=%[5]s/state
SlurmdSpoolDir=%[5]s/spool
SlurmctldPidFile=%[5]s/run/slurmctld.pid
SlurmdPidFile=%[5]s/run/slurmd.pid
SlurmctldLogFile=%[5]s/log/slurmctld.log
SlurmdLogFile=%[5]s/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=10
NodeName=%[1]s NodeAddr=127.0.0.1 CPUs=%[6]d State=UNKNOWN
PartitionName=e2e Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`, host, freePort(t), freePort(t), sock, dir, runtime.NumCPU())
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"SLURM_CONF=" + s.conf}
	daemon(t, filepath.Join(dir, "log", "slurmctld.out"), env, "slurmctld", "-D", "-f", s.conf)
	daemon(t, filepath.Join(dir, "log", "slurmd.out"), env, "slurmd", "-D", "-f", s.conf)
	t.Cleanup(func() { s.cmd(nil, "scancel", "--partition=e2e").Run() })
	if !waitUntil(60*time.Second, func() bool {
		out, _ := s.cmd(nil, "sinfo", "-h", "-o", "%T").Output()
		return strings.TrimSpace(string(out)) == "idle"
	}) {
		out, _ := s.cmd(nil, "sinfo").CombinedOutput()
		t.Fatalf("the node never became idle: %s\nslurmctld:\n%s\nslurmd:\n%s", out,
			fileTail(filepath.Join(dir, "log", "slurmctld.log")), fileTail(filepath.Join(dir, "log", "slurmd.log")))
	}
	return s
}

// cmd is a Slurm client command with this cluster's config and exactly the
// environment given (plus PATH), so that nothing from the test's own
// environment leaks into a job.
func (s *slurm) cmd(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "SLURM_CONF=" + s.conf}, env...)
	return cmd
}

// mergeExports folds every --export=ALL,... flag into one, as a user would
// write it: srun keeps only the last --export.
func mergeExports(flags []string) []string {
	var out, vars []string
	for _, f := range flags {
		if rest, ok := strings.CutPrefix(f, "--export=ALL,"); ok {
			vars = append(vars, rest)
			continue
		}
		out = append(out, f)
	}
	if len(vars) > 0 {
		out = append(out, "--export=ALL,"+strings.Join(vars, ","))
	}
	return out
}

// plainRuntime runs nss-entrypoint on the node with no container, as
// `srun nss-entrypoint run` does on a cluster where the tools are installed:
// the target is the fake safe-synthesizer, home a fresh folder.
func (s *slurm) plainRuntime(t *testing.T) runtimeUnderTest {
	home := privateDir(t, "nss-slurm-home-")
	jobEnv := []string{"HOME=" + home, "NSS_ENTRYPOINT_TARGET=" + bins.Target}
	srun := func(cliEnv []string, flags []string, args ...string) *exec.Cmd {
		all := append(append(mergeExports(flags), bins.Entrypoint), args...)
		return s.cmd(append(slices.Clone(jobEnv), cliEnv...), "srun", all...)
	}
	return runtimeUnderTest{
		command: "srun",
		run: func(t *testing.T, cliEnv, flags []string, args ...string) result {
			t.Helper()
			return command(t, srun(cliEnv, flags, args...))
		},
		setenv: func(kv string) []string { return []string{"--export=ALL," + kv} },
		start: func(t *testing.T, name string, flags ...string) *foreground {
			return startForeground(t, srun(nil, append([]string{"--job-name=" + name, "--export=ALL,FAKE_TARGET_WAIT=1"}, flags...), "run"))
		},
		stop: func(t *testing.T, name string) {
			if r := command(t, s.cmd(nil, "scancel", "--name="+name)); r.code != 0 {
				t.Errorf("scancel: %s", r.stderr)
			}
		},
		signal: func(t *testing.T, name, sig string) {
			if r := command(t, s.cmd(nil, "scancel", "--signal="+sig, "--name="+name)); r.code != 0 {
				t.Errorf("scancel --signal=%s: %s", sig, r.stderr)
			}
		},
	}
}

// podmanInJobRuntime runs `srun podman run ...`: a Slurm step that starts
// a rootful Podman container, with SLURM_JOB_ID passed in. scancel stops
// and signals the step; podman run passes the signals on.
func (s *slurm) podmanInJobRuntime(t *testing.T, p *podman, base []string) runtimeUnderTest {
	srun := func(cliEnv, srunFlags, podmanArgs []string) *exec.Cmd {
		args := append(append(slices.Clone(srunFlags), "podman"), p.global...)
		env := append([]string{"HOME=" + os.Getenv("HOME")}, cliEnv...)
		return s.cmd(env, "srun", append(args, podmanArgs...)...)
	}
	podmanRun := func(flags []string, args ...string) []string {
		all := append(append(append([]string{"run", "--rm", "-e", "SLURM_JOB_ID"}, base...), flags...), p.image)
		return append(all, args...)
	}
	return runtimeUnderTest{
		command: "podman run",
		run: func(t *testing.T, cliEnv, flags []string, args ...string) result {
			t.Helper()
			return command(t, srun(cliEnv, nil, podmanRun(flags, args...)))
		},
		setenv: func(kv string) []string { return []string{"-e", kv} },
		start: func(t *testing.T, name string, flags ...string) *foreground {
			return startForeground(t, srun(nil, []string{"--job-name=" + name},
				podmanRun(append([]string{"--name", name, "-e", "FAKE_TARGET_WAIT=1"}, flags...), "run")))
		},
		// A plain scancel sends SIGCONT and SIGTERM to the step's whole
		// process group, podman's short-lived `runc kill` helpers that
		// forward the SIGCONT included: the SIGTERM can be lost with them,
		// and Slurm kills the step after KillWait (137). scancel
		// --signal=TERM sends SIGTERM alone, and podman forwards it;
		// docs/running.md says so.
		stop: func(t *testing.T, name string) {
			if r := command(t, s.cmd(nil, "scancel", "--signal=TERM", "--name="+name)); r.code != 0 {
				t.Errorf("scancel --signal=TERM: %s", r.stderr)
			}
		},
		signal: func(t *testing.T, name, sig string) {
			if r := command(t, s.cmd(nil, "scancel", "--signal="+sig, "--name="+name)); r.code != 0 {
				t.Errorf("scancel --signal=%s: %s", sig, r.stderr)
			}
		},
	}
}

func TestSlurm(t *testing.T) {
	s := startSlurm(t)

	t.Run("srun, no container", func(t *testing.T) {
		rt := s.plainRuntime(t)
		t.Run("every SLURM_ variable is real", func(t *testing.T) {
			rep := report(t, rt.run(t, nil, nil, "run"))
			var slurmVars []string
			for _, kv := range rep.Env() {
				if strings.HasPrefix(kv, "SLURM_") {
					slurmVars = append(slurmVars, kv)
				}
			}
			for _, want := range []string{"SLURM_JOB_ID=", "SLURM_STEP_ID=0", "SLURM_CLUSTER_NAME=nsse2e", "SLURM_JOB_PARTITION=e2e"} {
				if !slices.ContainsFunc(slurmVars, func(kv string) bool { return strings.HasPrefix(kv, want) }) {
					t.Errorf("the job's environment lacks %s: %q", want, slurmVars)
				}
			}
		})
		t.Run("detected", func(t *testing.T) {
			checkDetected(t, rt, nil, "ok: slurm", "SLURM_JOB_ID", "no container")
		})
		t.Run("hints in srun's words, none for pyxis", func(t *testing.T) {
			checkHints(t, rt, nil, map[string]string{
				"/workspace does not exist": `srun --export=ALL,NSS_WORKSPACE="$(pwd)/data" ...`,
				"HF_HOME is not set":        `srun --export=ALL,HF_HOME="$HOME/.cache/huggingface" ...`,
				"Hugging Face token":        "srun --export=ALL,HF_TOKEN ...",
				"no GPU is visible":         "srun --gpus=1 ...",
			})
			r := rt.run(t, nil, nil, "run")
			lacks(t, "stderr", r.stderr, "--container-")
		})
		t.Run("fixes work", func(t *testing.T) {
			checkFixes(t, rt, nil, []fixCase{
				{"workspace", nil, "/workspace does not exist"},
				{"hf cache", nil, "HF_HOME is not set"},
				{"token", nil, "no Hugging Face token"},
			})
		})
		t.Run("exit status and signals", func(t *testing.T) {
			checkExitAndSignals(t, rt, nil)
		})
	})

	t.Run("srun podman run", func(t *testing.T) {
		needTools(t, "Debian's podman", "podman", "runc")
		p := newPodman(t, privateDir(t, "nss-slurm-podman-"), nil, nil)
		rt := s.podmanInJobRuntime(t, p, append([]string{"--network", "none"}, podmanLimits(t)...))
		t.Run("detected: the container, not the job", func(t *testing.T) {
			checkDetected(t, rt, nil, "ok: podman", "rootful", "inside Slurm job")
		})
		t.Run("hints in Podman's words", func(t *testing.T) {
			checkHints(t, rt, nil, map[string]string{
				"Hugging Face token": "podman run -e HF_TOKEN ...",
				"/dev/shm is":        "podman run --shm-size=1g ...",
			})
		})
		t.Run("fixes work", func(t *testing.T) {
			checkFixes(t, rt, nil, []fixCase{
				{"shm", nil, "/dev/shm is"},
				{"token", nil, "no Hugging Face token"},
			})
		})
		t.Run("exit status and signals through srun and podman", func(t *testing.T) {
			checkExitAndSignals(t, rt, nil)
		})
	})
}
