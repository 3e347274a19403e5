package archtest

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/procstate"
	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

const module = "github.com/nvidia-nemo/nss-entrypoint"

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command(testbuild.Go(), append([]string{"list"}, args...)...)
	cmd.Dir = testbuild.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// entrypointLinks is every package nss-entrypoint may link besides the Go
// runtime's own internal packages: the start path. Anything else that
// appears in its graph fails TestEntrypointLinksOnlyTheStartPath, whatever
// it is (go-nvml, fatih/color, regexp, net, gopsutil, the report's
// packages, a YAML decoder). A package that leaves the graph is fine; one
// that joins it must be added here, on purpose, with make bench run.
var entrypointLinks = []string{
	// This module: the start path.
	module + "/cmd/nss-entrypoint",
	module + "/internal/cli",
	module + "/internal/check",
	module + "/internal/hints",
	module + "/internal/target",
	module + "/internal/textpath",
	module + "/internal/gpuhelper",
	module + "/internal/gpureport",
	module + "/internal/child",
	module + "/internal/procstate",
	module + "/internal/secret",
	// Other modules.
	"golang.org/x/sys/unix",
	// The standard library.
	"bufio", "bytes", "cmp", "context", "encoding/binary", "errors", "fmt", "io",
	"io/fs", "iter", "math", "math/bits", "os", "os/exec", "os/signal", "path",
	"path/filepath", "reflect", "runtime", "runtime/debug", "slices", "sort",
	"strconv", "strings", "sync", "sync/atomic", "syscall", "time", "unicode",
	"unicode/utf8", "unsafe",
}

func TestEntrypointLinksOnlyTheStartPath(t *testing.T) {
	allowed := map[string]bool{}
	for _, p := range entrypointLinks {
		allowed[p] = true
	}
	deps := goList(t, "-deps", "./cmd/nss-entrypoint")
	if len(deps) < 10 {
		t.Fatalf("suspiciously few dependencies: %v", deps)
	}
	seen := map[string]bool{}
	for _, d := range deps {
		seen[d] = true
		if strings.HasPrefix(d, "internal/") || strings.HasPrefix(d, "vendor/") {
			continue // the standard library's own internals
		}
		if !allowed[d] {
			t.Errorf("nss-entrypoint links %s, which is not on the start path's list", d)
		}
	}
	// The list names the start path as it is, not a wish: each of this
	// module's packages on it is really linked.
	for _, p := range entrypointLinks {
		if strings.HasPrefix(p, module+"/") && !seen[p] {
			t.Errorf("%s is on the list but nss-entrypoint no longer links it: take it off", p)
		}
	}
	// The report program does have what the start path must not: the
	// split is real.
	report := " " + strings.Join(goList(t, "-deps", "./cmd/nss-diagnose"), " ") + " "
	for _, want := range []string{"github.com/shirou/gopsutil/v4/mem", "github.com/fatih/color",
		module + "/internal/diagnose/online", module + "/internal/diagnose/redact", "net"} {
		if !strings.Contains(report, " "+want+" ") {
			t.Errorf("nss-diagnose does not import %s", want)
		}
	}
}

func TestLayering(t *testing.T) {
	// Direct imports that would break the layering.
	forbidden := map[string][]string{
		// Checks return values; they never render or reach the CLI.
		module + "/internal/check":           {module + "/internal/hints", module + "/internal/diagnose", module + "/internal/cli", "github.com/fatih/color"},
		module + "/internal/diagnose/checks": {module + "/internal/diagnose/report", module + "/internal/cli"},
		// Renderers render; they never run the GPU helper or NVML.
		module + "/internal/hints":           {module + "/internal/gpuhelper", module + "/internal/nvmlprobe", module + "/internal/cli", module + "/internal/diagnose"},
		module + "/internal/diagnose/report": {module + "/internal/gpuhelper", module + "/internal/nvmlprobe", module + "/internal/cli"},
	}
	for pkg, bad := range forbidden {
		for _, d := range goList(t, "-f", "{{join .Imports \" \"}}", pkg) {
			for _, b := range bad {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s imports %s", pkg, d)
				}
			}
		}
	}
	// The probe's report format is shared by all three binaries: standard
	// library only.
	nonStd := goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+"/internal/gpureport")
	if len(nonStd) != 1 || nonStd[0] != module+"/internal/gpureport" {
		t.Errorf("gpureport depends on %v", nonStd)
	}
}

// TestPackagesAreInternal: every library package is under internal/, but
// for the ones deliberately left importable, each named here with why.
func TestPackagesAreInternal(t *testing.T) {
	public := map[string]string{
		// Reads containers/Dockerfile.cuda for the tests and the e2e suite;
		// it sits beside the file it reads.
		module + "/containers": "the Dockerfile's reader",
		// Test files only: the documentation's examples checked against
		// the schemas they are written for; nothing to import.
		module + "/docs": "the documentation's tests",
	}
	for _, line := range goList(t, "-f", "{{.ImportPath}}:{{.Name}}", "./...") {
		path, name, _ := strings.Cut(line, ":")
		if name == "main" || strings.Contains(path, "/internal/") || path == module+"/e2e" {
			continue
		}
		if _, ok := public[path]; !ok {
			t.Errorf("%s is importable by other modules; move it under internal/ or say why here", path)
		}
	}
}

func TestBinariesAreBuiltAsDesigned(t *testing.T) {
	// A build of its own: testbuild.Build's is shared by the process and
	// would be gone on a second run (go test -count=2).
	bins, err := testbuild.BuildInto(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{bins.Entrypoint, bins.Diagnose} {
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if s := f.Section(".dynamic"); s != nil {
			t.Errorf("%s has a dynamic section: it is not static", path)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s asks for a dynamic loader", path)
			}
		}
		f.Close()
	}

	// nss-entrypoint starts at procstate's stub, which records what the Go
	// runtime changes before main (package procstate); every build of it
	// (the Makefile, the image, the tests) must say so with -E.
	ep, err := elf.Open(bins.Entrypoint)
	if err != nil {
		t.Fatal(err)
	}
	syms, err := ep.Symbols()
	ep.Close()
	if err != nil {
		t.Fatal(err)
	}
	// (The assembly function is named with ".abi0" in the symbol table.)
	atStub := false
	for _, s := range syms {
		atStub = atStub || (s.Name == procstate.EntrySymbol || s.Name == procstate.EntrySymbol+".abi0") && s.Value == ep.Entry
	}
	if !atStub {
		t.Errorf("nss-entrypoint's entry point %#x is not %s", ep.Entry, procstate.EntrySymbol)
	}
	for _, file := range []string{"Makefile", "containers/Dockerfile.cuda"} {
		b, err := os.ReadFile(filepath.Join(testbuild.RepoRoot(), file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "-E "+procstate.EntrySymbol) && !strings.Contains(string(b), "-E $(PKG)/internal/procstate.entry") {
			t.Errorf("%s does not link nss-entrypoint with -E %s", file, procstate.EntrySymbol)
		}
	}

	probe, err := elf.Open(bins.Probe)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	libs, err := probe.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if !strings.HasPrefix(l, "libc.so") && !strings.HasPrefix(l, "ld-linux") {
			t.Errorf("nss-gpu-probe needs %s; glibc must be its only dependency", l)
		}
	}
	if flags, _ := probe.DynValue(elf.DT_FLAGS); len(flags) > 0 && flags[0]&uint64(elf.DF_BIND_NOW) != 0 {
		t.Error("nss-gpu-probe has DF_BIND_NOW")
	}
	if flags, _ := probe.DynValue(elf.DT_FLAGS_1); len(flags) > 0 && flags[0]&uint64(elf.DF_1_NOW) != 0 {
		t.Error("nss-gpu-probe has DF_1_NOW")
	}
	if bn, _ := probe.DynValue(elf.DT_BIND_NOW); len(bn) > 0 {
		t.Error("nss-gpu-probe has DT_BIND_NOW")
	}
	imported, err := probe.ImportedSymbols()
	if err != nil {
		t.Fatal(err)
	}
	nvml := 0
	for _, s := range imported {
		if strings.HasPrefix(s.Name, "nvml") {
			nvml++
		}
	}
	if nvml == 0 {
		t.Error("nss-gpu-probe imports no nvml* symbols: is it really built on go-nvml?")
	}
}

// TestKubernetesTypesAreTestOnly: docs/ decodes its Pod example into
// k8s.io/api's types in a test; no binary may link Kubernetes' API
// packages. (sigs.k8s.io/yaml, a small YAML decoder, is nss-diagnose's
// reader of NSS_CONFIG, and nss-entrypoint's list forbids it anyway.)
func TestKubernetesTypesAreTestOnly(t *testing.T) {
	for _, cmd := range []string{"./cmd/nss-entrypoint", "./cmd/nss-diagnose", "./cmd/nss-gpu-probe"} {
		for _, d := range goList(t, "-deps", cmd) {
			if strings.HasPrefix(d, "k8s.io/") || (strings.HasPrefix(d, "sigs.k8s.io/") && d != "sigs.k8s.io/yaml" && !strings.HasPrefix(d, "sigs.k8s.io/yaml/")) {
				t.Errorf("%s links %s", cmd, d)
			}
		}
	}
	// The check above looks for something that exists: the docs test does
	// use Kubernetes' types.
	testDeps := " " + strings.Join(goList(t, "-deps", "-test", "./docs"), " ") + " "
	if !strings.Contains(testDeps, " k8s.io/api/core/v1 ") {
		t.Error("the docs test no longer decodes into k8s.io/api/core/v1; update this test")
	}
}
