// Command startbench measures the whole-process start time of nss-entrypoint
// execing a trivial target, against the target started directly and against
// a minimal static Go program that only looks up and execs the same target.
// Runs of the variants are interleaved, in a random order each round, so that
// machine noise hits all of them alike; it prints medians and ratios from one
// run as a table.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

type variant struct {
	name string
	path string
	env  []string
	runs []time.Duration
}

func main() {
	rounds := flag.Int("rounds", 300, "runs of each variant")
	flag.Parse()
	if err := run(*rounds); err != nil {
		fmt.Fprintln(os.Stderr, "startbench:", err)
		os.Exit(1)
	}
}

func run(rounds int) error {
	dir, err := os.MkdirTemp("", "startbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins, err := testbuild.BuildInto(dir)
	if err != nil {
		return err
	}
	trueBin := filepath.Join(dir, "tbin", "safe-synthesizer")
	minexec := filepath.Join(dir, "minexec")
	if err := build(dir, trueBin, minexec); err != nil {
		return err
	}
	root, err := containerRoot(dir)
	if err != nil {
		return err
	}
	common := []string{"PATH=" + filepath.Dir(trueBin) + ":/usr/bin:/bin", "HOME=/home/appuser",
		"NSS_ENTRYPOINT_ROOT=" + root, "HF_HOME=/hf", "HF_TOKEN=hf_benchmark"}
	gpuRoot, err := containerRoot(filepath.Join(dir, "gpu"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(gpuRoot, "dev", "nvidiactl"), nil, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(gpuRoot, "proc", "driver", "nvidia"), 0o755); err != nil {
		return err
	}
	with := func(env ...string) []string { return append(slices.Clone(common), env...) }
	vs := []*variant{
		{name: "target directly", path: trueBin, env: common},
		{name: "minimal Go exec", path: minexec, env: with("MINEXEC_TARGET=safe-synthesizer")},
		{name: "nss-entrypoint, checks off", path: bins.Entrypoint, env: with("NSS_ENTRYPOINT_CHECKS=off")},
		{name: "nss-entrypoint, all checks, no GPU", path: bins.Entrypoint, env: common},
		{name: "nss-entrypoint, all checks, fake GPU", path: bins.Entrypoint,
			env: append(with("LD_LIBRARY_PATH="+bins.NVMLDir, "NSS_FAKE_NVML=devices=1"), "NSS_ENTRYPOINT_ROOT="+gpuRoot)},
	}
	for _, v := range vs { // warm the page cache, and check each variant works
		if _, err := once(v); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	// Each round runs every variant once, in a fresh random order, so that
	// no variant always follows the same one (cache and frequency effects).
	rng := rand.New(rand.NewPCG(1, 2))
	order := make([]*variant, len(vs))
	copy(order, vs)
	for i := 0; i < rounds; i++ {
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, v := range order {
			d, err := once(v)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			v.runs = append(v.runs, d)
		}
	}
	base := median(vs[1].runs)
	host, _ := os.Hostname()
	fmt.Printf("start time, %d interleaved runs each (random order per round), %s, %d CPUs, %s, %s\n\n", rounds, runtime.Version(), runtime.NumCPU(), host, time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("| %-38s | %10s | %10s | %14s |\n", "variant", "median", "p90", "vs minimal Go")
	fmt.Printf("|%s|%s|%s|%s|\n", dashes(40), dashes(12), dashes(12), dashes(16))
	for _, v := range vs {
		m := median(v.runs)
		fmt.Printf("| %-38s | %10s | %10s | %13.2fx |\n", v.name, round(m), round(pct(v.runs, 0.9)), float64(m)/float64(base))
	}
	return nil
}

func once(v *variant) (time.Duration, error) {
	cmd := exec.Command(v.path)
	cmd.Env = v.env
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 0 {
			return 0, err
		}
	}
	return d, nil
}

func build(dir, trueBin, minexec string) error {
	if err := os.MkdirAll(filepath.Dir(trueBin), 0o755); err != nil {
		return err
	}
	root := testbuild.RepoRoot()
	for _, args := range [][]string{
		{"gcc", "-static", "-O2", "-o", trueBin, "testdata/bench/true.c"},
		{testbuild.Go(), "build", "-trimpath", "-o", minexec, "./testdata/bench/minexec"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %v: %s", args, err, out)
		}
	}
	return nil
}

// containerRoot makes a root in which every check but the GPU passes.
func containerRoot(dir string) (string, error) {
	root := filepath.Join(dir, "root")
	for _, d := range []string{"workspace/data", "hf", "dev/shm"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	// The workspace check reads mountinfo; give it this machine's, so the
	// bench pays for a real one.
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(root, "proc/self"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), info, 0o644); err != nil {
		return "", err
	}
	return root, os.WriteFile(filepath.Join(root, "workspace/data/train.csv"), []byte("a,b\n1,2\n"), 0o644)
}

func median(d []time.Duration) time.Duration { return pct(d, 0.5) }

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func round(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }

func dashes(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '-'
	}
	return string(b)
}
