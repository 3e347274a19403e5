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
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

type variant struct {
	name string
	path string
	// paths are path's copies (see run): each run takes the next.
	paths []string
	next  int
	env   []string
	runs  []time.Duration
	// peak is the largest peak RSS (wait4's ru_maxrss, which covers the
	// process before and after its exec) of any run, in KiB.
	peak int64
	// rss is the peak RSS of one run started through testdata/bench/rss.c,
	// in KiB: the process's own, without the benchmark's pages.
	rss int64
	// extra variants are measured but not part of the start-time table's
	// claim (a probe that floods, a token file that never ends).
	extra bool
}

func main() {
	rounds := flag.Int("rounds", 300, "runs of each variant")
	copies := flag.Int("copies", 3, "copies of each program, taken in turn")
	flag.Parse()
	if err := run(*rounds, max(*copies, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "startbench:", err)
		os.Exit(1)
	}
}

func run(rounds, copies int) error {
	dir, err := os.MkdirTemp("", "startbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	defer func() {
		for _, m := range unmount {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}()
	bins, err := testbuild.BuildInto(dir)
	if err != nil {
		return err
	}
	trueBin := filepath.Join(dir, "tbin", "safe-synthesizer")
	minexec := filepath.Join(dir, "minexec")
	if err := build(dir, trueBin, minexec); err != nil {
		return err
	}
	// Every program measured is run from a copy written the way an image
	// layer's extraction writes it (containerd and dockerd copy each file
	// out of the tar stream with io.Copy: write(2) calls of 32 KiB). How a
	// file was written decides the page cache's folios that hold it, and so
	// what mapping it costs at each start: on this machine (kernel 6.18,
	// ext4) the same two programs compared 1.21x freshly linked (the Go
	// linker writes through mmap), 1.16x to 1.18x written in 32 KiB pieces,
	// 1.16x in one write and 1.14x in 128 KiB pieces (README, "Start-time
	// cost"). The benchmark fixes the layout a pulled image has.
	// Which pages of the page cache one copy lands on still moves its
	// figure by about 1% (two copies of one binary, 2400 interleaved
	// rounds: 1.136x against 1.150x): each program is copied several
	// times, and the runs of a variant take its copies in turn.
	for k := copies - 1; k >= 0; k-- {
		image := filepath.Join(dir, "image", strconv.Itoa(k))
		for _, p := range []*string{&bins.Entrypoint, &bins.Probe, &bins.Diagnose, &minexec, &trueBin} {
			// The copies keep their folder's name: nss-gpu-probe stays
			// the entrypoint's sibling.
			dst := filepath.Join(image, filepath.Base(filepath.Dir(*p)), filepath.Base(*p))
			if err := copyFile(*p, dst); err != nil {
				return err
			}
			if k == 0 {
				*p = dst
			}
		}
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
	flood := filepath.Join(dir, "flood-probe")
	if err := os.WriteFile(flood, []byte("#!/bin/sh\nexec yes\n"), 0o755); err != nil {
		return err
	}
	vs := []*variant{
		{name: "target directly", path: trueBin, env: common},
		{name: "minimal Go exec", path: minexec, env: with("MINEXEC_TARGET=safe-synthesizer")},
		// The minimal program with one P, as nss-entrypoint runs (its entry
		// stub sets GOMAXPROCS=1 for its own runtime): the like-for-like
		// reference. The ratios stay against the program as Go starts it.
		{name: "minimal Go exec, GOMAXPROCS=1", path: minexec, env: with("MINEXEC_TARGET=safe-synthesizer", "GOMAXPROCS=1")},
		{name: "nss-entrypoint, checks off", path: bins.Entrypoint, env: with("NSS_ENTRYPOINT_CHECKS=off")},
		{name: "nss-entrypoint, all checks, no GPU", path: bins.Entrypoint, env: common},
		{name: "nss-entrypoint, all checks, fake GPU", path: bins.Entrypoint,
			env: append(with("LD_LIBRARY_PATH="+bins.NVMLDir, "NSS_FAKE_NVML=devices=1"), "NSS_ENTRYPOINT_ROOT="+gpuRoot)},
		{name: "nss-entrypoint, GPU probe floods stdout", path: bins.Entrypoint, extra: true,
			env: append(with("NSS_GPU_PROBE="+flood), "NSS_ENTRYPOINT_ROOT="+gpuRoot)},
		{name: "nss-entrypoint, token file is /dev/zero", path: bins.Entrypoint, extra: true,
			env: with("HF_TOKEN=", "HF_TOKEN_PATH=/dev/zero")},
	}
	first := filepath.Join(dir, "image", "0") + "/"
	for _, v := range vs {
		v.paths = []string{v.path}
		if rest, ok := strings.CutPrefix(v.path, first); ok {
			for k := 1; k < copies; k++ {
				v.paths = append(v.paths, filepath.Join(dir, "image", strconv.Itoa(k), rest))
			}
		}
	}
	for _, v := range vs { // warm the page cache, and check each variant works
		for range v.paths {
			if _, err := once(v); err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
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
			if v.extra && i%10 != 0 {
				continue // a tenth of the rounds is enough for these
			}
			d, err := once(v)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			v.runs = append(v.runs, d)
		}
	}
	// Peak memory: each variant once more, through the small launcher.
	for _, v := range vs {
		kib, err := peakRSS(filepath.Join(dir, "rss"), v)
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		v.rss = kib
	}
	base := median(vs[1].runs)
	host, _ := os.Hostname()
	fmt.Printf("start time, %d interleaved runs each (random order per round), %s, %d CPUs, %s, %s\n\n", rounds, runtime.Version(), runtime.NumCPU(), host, time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("| %-40s | %10s | %10s | %14s | %13s |\n", "variant", "median", "p90", "vs minimal Go", "peak RSS")
	fmt.Printf("|%s|%s|%s|%s|%s|\n", dashes(42), dashes(12), dashes(12), dashes(16), dashes(15))
	for _, v := range vs {
		m := median(v.runs)
		fmt.Printf("| %-40s | %10s | %10s | %13.2fx | %9.1f MiB |\n", v.name, round(m), round(pct(v.runs, 0.9)), float64(m)/float64(base), float64(v.rss)/1024)
	}
	fmt.Println("\npeak RSS: wait4's ru_maxrss of one run started by testdata/bench/rss.c, the entrypoint's and its target's together")
	return nil
}

// peakRSS runs v once through the rss launcher and returns its peak RSS.
func peakRSS(launcher string, v *variant) (int64, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cmd := exec.Command(launcher, v.path)
	cmd.Env = v.env
	cmd.ExtraFiles = []*os.File{w}
	err = cmd.Run()
	w.Close()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 0) {
		return 0, err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	var kib int64
	_, err = fmt.Sscan(string(b), &kib)
	return kib, err
}

// once runs v's next copy once and records its peak RSS.
func once(v *variant) (time.Duration, error) {
	v.next++
	cmd := exec.Command(v.paths[v.next%len(v.paths)])
	cmd.Env = v.env
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			v.peak = max(v.peak, ru.Maxrss)
		}
	}
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
		{"gcc", "-static", "-O2", "-o", filepath.Join(dir, "rss"), "testdata/bench/rss.c"},
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
	for _, d := range []string{"workspace/data", "hf", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	// /dev/shm is a tmpfs, as in a container: mounted when running as
	// root, else a link to this machine's.
	shm := filepath.Join(root, "dev/shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return "", err
	}
	if os.Geteuid() != 0 || syscall.Mount("tmpfs", shm, "tmpfs", 0, "size=1g") != nil {
		os.Remove(shm)
		if err := os.Symlink("/dev/shm", shm); err != nil {
			return "", err
		}
	} else {
		unmount = append(unmount, shm)
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

// copyFile writes a copy of src at dst as an image extraction does: the
// bytes come through io.Copy's 32 KiB buffer (the source is hidden behind a
// plain io.Reader, as a tar stream is, so that no copy_file_range or
// sendfile shortcut applies), and the mode is kept.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, struct{ io.Reader }{in}); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// unmount lists the tmpfs mounts to undo at the end.
var unmount []string

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
