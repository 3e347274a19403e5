// Package testbuild builds the project's real binaries and test fakes for
// tests that run them: the static nss-entrypoint and nss-diagnose, the cgo nss-gpu-probe with
// lazy binding, the static C fake target, the fake libnvidia-ml builds and
// the fake libcuda builds.
package testbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/nvidia-nemo/nss-entrypoint/internal/procstate"
)

// Set is a directory of built binaries.
type Set struct {
	Dir string
	// Entrypoint, Diagnose and Probe sit side by side in Dir, as in the image.
	Entrypoint, Diagnose, Probe string
	// Target is the fake safe-synthesizer, static C.
	Target string
	// NVMLDir holds libnvidia-ml.so.1 built from testdata/fakenvml and
	// libcuda.so.1 built from testdata/fakecuda: a whole fake driver;
	// NVMLOldDir holds the NVML build that exports only the oldest symbols.
	NVMLDir, NVMLOldDir string
	// CUDAOldDir holds a libcuda.so.1 that lacks the newer CUDA symbols.
	CUDAOldDir string
	// StubDir is a CUDA toolkit's stubs folder: libcuda.so and
	// libcuda.so.1 whose cuInit answers CUDA_ERROR_STUB_LIBRARY.
	StubDir string
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	once   sync.Once
	shared *Set
	err    error
)

// Build builds everything once per test process into a temporary directory
// and returns it. The caller removes nothing; the directory lives in
// os.TempDir and is cleaned by Cleanup.
func Build() (*Set, error) {
	once.Do(func() {
		var dir string
		dir, err = os.MkdirTemp("", "nss-testbuild-")
		if err != nil {
			return
		}
		shared, err = BuildInto(dir)
	})
	return shared, err
}

// Cleanup removes what Build made.
func Cleanup() {
	if shared != nil {
		os.RemoveAll(shared.Dir)
	}
}

// BuildInto builds everything into dir.
func BuildInto(dir string) (*Set, error) {
	root := RepoRoot()
	s := &Set{
		Dir:        dir,
		Entrypoint: filepath.Join(dir, "nss-entrypoint"),
		Diagnose:   filepath.Join(dir, "nss-diagnose"),
		Probe:      filepath.Join(dir, "nss-gpu-probe"),
		Target:     filepath.Join(dir, "target", "safe-synthesizer"),
		NVMLDir:    filepath.Join(dir, "nvml"),
		NVMLOldDir: filepath.Join(dir, "nvml-old"),
		CUDAOldDir: filepath.Join(dir, "cuda-old"),
		StubDir:    filepath.Join(dir, "cuda", "lib64", "stubs"),
	}
	for _, d := range []string{filepath.Dir(s.Target), s.NVMLDir, s.NVMLOldDir, s.CUDAOldDir, s.StubDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	gobin := goBinary()
	steps := []struct {
		env  []string
		args []string
	}{
		{[]string{"CGO_ENABLED=0"}, append([]string{gobin}, EntrypointBuild(s.Entrypoint)...)},
		{[]string{"CGO_ENABLED=0"}, []string{gobin, "build", "-trimpath", "-ldflags=-E=" + procstate.EntrySymbol, "-o", s.Diagnose, "./cmd/nss-diagnose"}},
		{[]string{"CGO_ENABLED=1", "CGO_CFLAGS=-O2 -g -Wno-deprecated-declarations"},
			[]string{gobin, "build", "-trimpath", "-ldflags=-extldflags=-Wl,-z,lazy", "-o", s.Probe, "./cmd/nss-gpu-probe"}},
		{nil, []string{"gcc", "-static", "-O2", "-Wall", "-o", s.Target, "testdata/faketarget/faketarget.c"}},
		{nil, []string{"gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", filepath.Join(s.NVMLDir, "libnvidia-ml.so.1"), "testdata/fakenvml/fakenvml.c"}},
		{nil, []string{"gcc", "-shared", "-fPIC", "-O2", "-Wall", "-DFAKE_NVML_OLD", "-o", filepath.Join(s.NVMLOldDir, "libnvidia-ml.so.1"), "testdata/fakenvml/fakenvml.c"}},
		{nil, []string{"gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", filepath.Join(s.NVMLDir, "libcuda.so.1"), "testdata/fakecuda/fakecuda.c"}},
		{nil, []string{"gcc", "-shared", "-fPIC", "-O2", "-Wall", "-DFAKE_CUDA_OLD", "-o", filepath.Join(s.CUDAOldDir, "libcuda.so.1"), "testdata/fakecuda/fakecuda.c"}},
		{nil, []string{"gcc", "-shared", "-fPIC", "-O2", "-Wall", "-DFAKE_CUDA_STUB", "-o", filepath.Join(s.StubDir, "libcuda.so"), "testdata/fakecuda/fakecuda.c"}},
		{nil, []string{"ln", "-s", "libcuda.so", filepath.Join(s.StubDir, "libcuda.so.1")}},
	}
	for _, st := range steps {
		cmd := exec.Command(st.args[0], st.args[1:]...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), st.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", strings.Join(st.args, " "), err, out)
		}
	}
	return s, nil
}

// EntrypointBuild is the go command's arguments that build nss-entrypoint
// at out as the Makefile does: static (run with CGO_ENABLED=0) and linked
// with the entry stub.
func EntrypointBuild(out string) []string {
	return []string{"build", "-trimpath", "-ldflags=-E=" + procstate.EntrySymbol, "-o", out, "./cmd/nss-entrypoint"}
}

// goBinary is the go command that runs these tests: $GOROOT/bin/go when the
// go command set GOROOT for the test, else go from PATH.
func goBinary() string {
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// Go returns the go command to run from tests.
func Go() string { return goBinary() }

// Main is a TestMain for packages that run the built binaries: it builds
// them into *set, runs the tests, removes the build and exits.
func Main(m interface{ Run() int }, set **Set) {
	var err error
	if *set, err = Build(); err != nil {
		fmt.Fprintln(os.Stderr, "testbuild:", err)
		os.Exit(1)
	}
	code := m.Run()
	Cleanup()
	os.Exit(code)
}
