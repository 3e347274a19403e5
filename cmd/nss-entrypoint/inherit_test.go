package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/faketarget"
)

// startLaunched starts bin through the launcher with spec's process state
// and returns the fake target's report, written to a file so that closed
// standard descriptors do not matter.
func startLaunched(t *testing.T, spec, bin string, env []string) faketarget.Report {
	t.Helper()
	file := filepath.Join(t.TempDir(), "report.json")
	argv, env := launched(spec, []string{bin}, append(env, "FAKE_TARGET_REPORT="+file))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no report: %v; stderr %s", err, errb.String())
	}
	r, err := faketarget.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sigset(t *testing.T, hex string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		t.Fatalf("signal set %q: %v", hex, err)
	}
	return v
}

func bit(sig int) uint64 { return 1 << (sig - 1) }

// The target gets the signal mask, the ignored signals and the closed
// standard descriptors the entrypoint was started with, as a direct start
// would; the Go runtime changes all three before main.
func TestSignalStateAndClosedDescriptorsAreInherited(t *testing.T) {
	tests := []struct {
		name, spec string
		blocked    []int
		ignored    []int
		closed     []string
	}{
		{"blocked SIGTERM, SIGCHLD, SIGUSR1, SIGHUP", "block=15,17,10,1", []int{15, 17, 10, 1}, nil, nil},
		{"ignored SIGUSR2, SIGQUIT, SIGTERM, SIGSEGV, SIGCHLD, SIGURG, SIGPROF, SIGRTMIN+6", "ignore=12,3,15,11,17,23,27,40", nil, []int{12, 3, 15, 11, 17, 23, 27, 40}, nil},
		{"stdin closed", "close=0", nil, nil, []string{"0"}},
		{"stdout and stderr closed", "close=1,2", nil, nil, []string{"1", "2"}},
		{"all three closed, SIGINT blocked and ignored", "close=0,1,2;block=2;ignore=2", []int{2}, []int{2}, []string{"0", "1", "2"}},
	}
	for _, withChecks := range []bool{true, false} {
		for _, tc := range tests {
			t.Run(tc.name+map[bool]string{true: ", checks on", false: ", checks off"}[withChecks], func(t *testing.T) {
				env := baseEnv(root(t, true), "NSS_FAKE_NVML=devices=1")
				if !withChecks {
					env = append(env, "NSS_ENTRYPOINT_CHECKS=off")
				}
				direct := startLaunched(t, tc.spec, bins.Target, env)
				via := startLaunched(t, tc.spec, bins.Entrypoint, env)
				blk, ign := sigset(t, via.SigBlk), sigset(t, via.SigIgn)
				for _, s := range tc.blocked {
					if blk&bit(s) == 0 {
						t.Errorf("signal %d blocked at start is not blocked in the target (SigBlk %s)", s, via.SigBlk)
					}
				}
				for _, s := range tc.ignored {
					if ign&bit(s) == 0 {
						t.Errorf("signal %d ignored at start is not ignored in the target (SigIgn %s)", s, via.SigIgn)
					}
				}
				if via.SigBlk != direct.SigBlk || via.SigIgn != direct.SigIgn || via.SigCgt != direct.SigCgt {
					t.Errorf("blocked/ignored/caught %s/%s/%s, direct start %s/%s/%s", via.SigBlk, via.SigIgn, via.SigCgt, direct.SigBlk, direct.SigIgn, direct.SigCgt)
				}
				// A closed descriptor is free in the target: the first file it
				// opens (its report) takes the lowest one.
				for _, fd := range tc.closed {
					if name, open := via.FDs[fd]; open && !strings.HasSuffix(name, "/report.json") {
						t.Errorf("descriptor %s closed at start is open in the target: %s", fd, name)
					}
				}
				if !slices.Equal(via.FDNumbers(), direct.FDNumbers()) {
					t.Errorf("descriptors %v, direct start %v", via.FDs, direct.FDs)
				}
				if via.Rlimit != direct.Rlimit {
					t.Errorf("RLIMIT_NOFILE %v, direct %v", via.Rlimit, direct.Rlimit)
				}
			})
		}
	}
}

// Signals blocked and already pending when the entrypoint starts (a
// supervisor that blocks signals around fork and exec, a docker stop in that
// window) do not end it before main, though the Go runtime unblocks SIGTERM,
// SIGHUP, SIGINT, SIGQUIT and SIGCHLD: they are pending in the target, as in
// a direct start.
func TestSignalsPendingAtEntryReachTheTarget(t *testing.T) {
	sigs := []int{15, 1, 2, 3, 10, 17, 40}
	var list []string
	var want uint64
	for _, s := range sigs {
		list = append(list, strconv.Itoa(s))
		want |= bit(s)
	}
	spec := "block=" + strings.Join(list, ",") + ";tkill=" + strings.Join(list, ",")
	for _, withChecks := range []bool{true, false} {
		env := baseEnv(root(t, true), "NSS_FAKE_NVML=devices=1")
		if !withChecks {
			env = append(env, "NSS_ENTRYPOINT_CHECKS=off")
		}
		direct := startLaunched(t, spec, bins.Target, env)
		via := startLaunched(t, spec, bins.Entrypoint, env)
		got := sigset(t, via.SigPnd) | sigset(t, via.ShdPnd)
		if got != want || sigset(t, direct.SigPnd)|sigset(t, direct.ShdPnd) != want {
			t.Errorf("checks %v: pending in the target %x (thread %s, process %s), direct start %s/%s, want %x",
				withChecks, got, via.SigPnd, via.ShdPnd, direct.SigPnd, direct.ShdPnd, want)
		}
		if via.SigBlk != direct.SigBlk {
			t.Errorf("checks %v: blocked %s, direct start %s", withChecks, via.SigBlk, direct.SigBlk)
		}
	}
}

// The environment reaches the target byte for byte, a name defined twice
// and an entry without "=" included; the checks read the first
// definition, the one getenv(3) and Python return.
func TestDuplicateEnvironmentEntriesPassAndTheFirstWins(t *testing.T) {
	r := root(t, false)
	env := append(baseEnv(r), "HF_TOKEN=second-token", "HF_HOME=/hf", "NO_EQUALS_SIGN", "HF_TOKEN=")
	// baseEnv sets HF_HOME=/hf first; put a missing one before it.
	env = append([]string{"HF_HOME=/not-mounted"}, env...)
	res := runRaw(t, env)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if got := report(t, res).Env(); !slices.Equal(got, env) {
		t.Errorf("environment differs:\n got %q\nwant %q", got, env)
	}
	if !strings.Contains(res.stderr, "HF_HOME=/not-mounted does not exist") {
		t.Errorf("the check did not read the first HF_HOME:\n%s", res.stderr)
	}
}

// runRaw is runEP through os.StartProcess, which passes the environment as
// it is given (os/exec drops duplicate names).
func runRaw(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return startRaw(t, bins.Entrypoint, append([]string{bins.Entrypoint}, args...), env)
}

// startRaw runs the program at path with argv and env, as runRaw does.
func startRaw(t *testing.T, path string, argv, env []string) result {
	t.Helper()
	or, ow, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Env: env, Files: []*os.File{nil, ow, ew}})
	ow.Close()
	ew.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	done := make(chan struct{})
	go func() { errb.ReadFrom(er); close(done) }()
	out.ReadFrom(or)
	<-done
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return result{code: st.ExitCode(), stdout: out.String(), stderr: errb.String(), pid: p.Pid}
}

// State the kernel keeps per thread and does not give a new thread reaches
// the target as a direct start gives it, whichever thread runs the exec:
// the parent-death signal (setpriv --pdeathsig, a supervisor's prctl), and
// a real-time policy with SCHED_RESET_ON_FORK and its nice value (chrt -R),
// which a new thread gets reset to SCHED_OTHER and 0. Before, with a helper
// running (a GPU), the exec ran on another thread in every start and the
// target had none of them.
func TestPerThreadStateReachesTheTarget(t *testing.T) {
	type want struct{ pdeath, policy, prio, nice int }
	type wrapper struct {
		name string
		argv []string
		want want
	}
	wrappers := []wrapper{
		{"setpriv --pdeathsig SIGTERM", []string{"setpriv", "--pdeathsig", "SIGTERM"}, want{15, 0, 0, 0}},
	}
	if os.Geteuid() == 0 && exec.Command("chrt", "-R", "-f", "10", "true").Run() == nil {
		wrappers = append(wrappers, wrapper{"chrt -R -f 10 nice -n -5", []string{"chrt", "-R", "-f", "10", "nice", "-n", "-5"}, want{0, 0x40000000 | 1, 10, -5}})
	} else {
		t.Log("no SCHED_FIFO here (not root, or no real-time budget): only the parent-death signal is checked")
	}
	for _, gpu := range []bool{false, true} {
		env := baseEnv(root(t, gpu), "NSS_FAKE_NVML=devices=1")
		for _, w := range wrappers {
			for try := 0; try < 5; try++ {
				cmd := exec.Command(w.argv[0], append(w.argv[1:], bins.Entrypoint)...)
				cmd.Env = env
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s: %v", w.name, err)
				}
				r, err := faketarget.Parse(out)
				if err != nil {
					t.Fatal(err)
				}
				if got := (want{r.PDeathSig, r.SchedPolicy, r.SchedPriority, r.Nice}); got != w.want {
					t.Errorf("GPU %v, %s: the target had %+v, want %+v", gpu, w.name, got, w.want)
				}
			}
		}
	}
}
