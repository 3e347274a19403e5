package archtest

import (
	"debug/elf"
	"os"
	"os/exec"
	"strings"
	"testing"

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

func TestEntrypointNeverDependsOnNVML(t *testing.T) {
	deps := goList(t, "-deps", "./cmd/nss-entrypoint")
	if len(deps) < 10 {
		t.Fatalf("suspiciously few dependencies: %v", deps)
	}
	for _, d := range deps {
		if strings.Contains(d, "go-nvml") || d == module+"/internal/nvmlprobe" || d == "runtime/cgo" {
			t.Errorf("nss-entrypoint depends on %s", d)
		}
	}
}

// TestStartPathImportsNothingHeavy: every imported package initialises
// itself before main, on every container start. The report's packages live
// in nss-diagnose; these must stay out of nss-entrypoint.
func TestStartPathImportsNothingHeavy(t *testing.T) {
	heavy := []string{"net", "net/http", "crypto/tls", "regexp", "github.com/shirou/gopsutil",
		module + "/internal/diagnose", module + "/diag/online"}
	for _, d := range goList(t, "-deps", "./cmd/nss-entrypoint") {
		for _, h := range heavy {
			if d == h || strings.HasPrefix(d, h+"/") {
				t.Errorf("nss-entrypoint imports %s", d)
			}
		}
	}
	// The report program does have them: the split is real.
	deps := strings.Join(goList(t, "-deps", "./cmd/nss-diagnose"), " ")
	for _, want := range []string{"github.com/shirou/gopsutil/v4/mem", module + "/diag/online", " net "} {
		if !strings.Contains(" "+deps+" ", want) {
			t.Errorf("nss-diagnose does not import %s", strings.TrimSpace(want))
		}
	}
}

func TestLayering(t *testing.T) {
	// Direct imports that would break the layering.
	forbidden := map[string][]string{
		// Checks return values; they never render or reach the CLI.
		module + "/diag": {module + "/report", module + "/internal/cli", "github.com/fatih/color"},
		// Renderers render; they never run the GPU helper or NVML.
		module + "/report": {module + "/gpuhelper", module + "/internal/nvmlprobe", module + "/internal/cli"},
	}
	for pkg, bad := range forbidden {
		for _, d := range goList(t, "-f", "{{join .Imports \" \"}}", pkg) {
			for _, b := range bad {
				if strings.HasPrefix(d, b) {
					t.Errorf("%s imports %s", pkg, d)
				}
			}
		}
	}
	// The report format is shared by both binaries: standard library only.
	nonStd := goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+"/gpureport")
	if len(nonStd) != 1 || nonStd[0] != module+"/gpureport" {
		t.Errorf("gpureport depends on %v", nonStd)
	}
}

func TestBinariesAreBuiltAsDesigned(t *testing.T) {
	bins, err := testbuild.Build()
	if err != nil {
		t.Fatal(err)
	}
	defer testbuild.Cleanup()

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
	syms, err := probe.ImportedSymbols()
	if err != nil {
		t.Fatal(err)
	}
	nvml := 0
	for _, s := range syms {
		if strings.HasPrefix(s.Name, "nvml") {
			nvml++
		}
	}
	if nvml == 0 {
		t.Error("nss-gpu-probe imports no nvml* symbols: is it really built on go-nvml?")
	}
}
