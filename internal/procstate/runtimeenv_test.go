package procstate_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/procstate"
	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

// The entry stub hands the Go runtime GOMAXPROCS=1 and the defaults of
// GOGC, GOMEMLIMIT, GOTRACEBACK and GODEBUG ahead of the environment
// (runtimeEnv), and Environ still returns the kernel's environment byte for
// byte. runtimeview, linked with the stub, prints what its runtime applied:
// with the user's GOMAXPROCS=7, GOGC=off, GOMEMLIMIT=4G (which the runtime
// cannot parse: it would abort before main) and GODEBUG=panicnil=1, a
// runtime that read the user's values would say so, on any machine. The
// stub is written twice, so it runs on amd64 and, under qemu-user, arm64.
func TestTheStubHandsTheRuntimeItsOwnSettings(t *testing.T) {
	arches := map[string]string{}
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		arches[runtime.GOARCH] = ""
	}
	if qemu, err := exec.LookPath("qemu-aarch64"); err == nil && runtime.GOARCH != "arm64" {
		arches["arm64"] = qemu
	} else if err != nil && os.Getenv("CI") != "" {
		t.Error("no qemu-aarch64 (Debian's qemu-user): the arm64 entry stub is not checked")
	}
	env := []string{"GOMAXPROCS=7", "GOGC=off", "GOMEMLIMIT=4G", "GODEBUG=panicnil=1", "DUP=1", "DUP=2", "PATH=/usr/bin:/bin"}
	for arch, qemu := range arches {
		t.Run(arch, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "runtimeview")
			build := exec.Command(testbuild.Go(), "build", "-trimpath", "-ldflags=-E="+procstate.EntrySymbol, "-o", bin, "./internal/procstate/testdata/runtimeview")
			build.Dir = testbuild.RepoRoot()
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+arch)
			if b, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, b)
			}
			argv := []string{bin}
			if qemu != "" {
				argv = []string{qemu, bin}
			}
			// os.StartProcess, not os/exec, which would drop DUP=1.
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			proc, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Env: env, Files: []*os.File{nil, w, w}})
			w.Close()
			if err != nil {
				r.Close()
				t.Fatal(err)
			}
			out, _ := io.ReadAll(r)
			r.Close()
			if st, err := proc.Wait(); err != nil || !st.Success() {
				t.Fatalf("runtimeview: %v %v\n%s", st, err, out)
			}
			var gotEnv []string
			settings := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				k, v, _ := strings.Cut(line, "=")
				if k == "env" {
					gotEnv = append(gotEnv, v)
				} else {
					settings[k] = v
				}
			}
			for k, want := range map[string]string{
				"captured":           "true",
				"gomaxprocs":         "1",
				"gogc":               "100",
				"gomemlimit-default": "true",
				"panicnil-default":   "true",
			} {
				if settings[k] != want {
					t.Errorf("%s=%q, want %q\n%s", k, settings[k], want, out)
				}
			}
			wantEnv := env
			if qemu != "" {
				// qemu-user hands the program its own copy of the
				// environment: one entry a name, in another order.
				gotEnv = slices.Sorted(slices.Values(gotEnv))
				wantEnv = slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(env), func(s string) bool { return s == "DUP=1" })))
			}
			if !slices.Equal(gotEnv, wantEnv) {
				t.Errorf("Environ:\n got %q\nwant %q", gotEnv, wantEnv)
			}
		})
	}
}
