package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

// The Go runtime in nss-entrypoint runs with one P, whatever the machine
// and whatever GOMAXPROCS the user set (procstate's runtimeEnv): the runtime's
// scheduler trace says gomaxprocs=1. The user's GOMAXPROCS is 7 here, so a
// runtime that missed the stub's entry would say 7, on any machine; and it
// reaches the target as given, with argv and the rest of the environment
// byte for byte. The entry stub is written twice, so it is checked on
// amd64 and, under qemu-user, on arm64.
func TestTheRuntimeRunsWithOneP(t *testing.T) {
	binaries := map[string][]string{"amd64": {bins.Entrypoint}}
	if qemu, err := exec.LookPath("qemu-aarch64"); err == nil {
		binaries["arm64"] = []string{qemu, buildArm64Entrypoint(t)}
	} else if os.Getenv("CI") != "" {
		t.Error("no qemu-aarch64 (Debian's qemu-user): the arm64 entry stub is not checked")
	}
	// GOMEMLIMIT=4G is not a value the Go runtime can parse (it wants
	// 4GiB): it would abort before main, but the stub hands the runtime
	// the default ahead of it; the target gets it as given.
	env := baseEnv(root(t, false), "GOMAXPROCS=7", "GODEBUG=schedtrace=1", "GOMEMLIMIT=4G", "GOGC=off", "DUP=1", "DUP=2")
	args := []string{"run", "two words", ""}
	trace := regexp.MustCompile(`gomaxprocs=(\d+)`)
	for arch, argv := range binaries {
		t.Run(arch, func(t *testing.T) {
			// The trace is written by the runtime's monitor thread a few
			// microseconds after start; a start that execs first writes
			// none, so a few tries are allowed.
			var seen [][]string
			for try := 0; try < 10 && len(seen) == 0; try++ {
				res := startRaw(t, argv[0], append(argv, args...), env)
				if res.code != 0 {
					t.Fatalf("%v: exit %d\n%s", argv, res.code, res.stderr)
				}
				r := report(t, res)
				if want := append([]string{"safe-synthesizer"}, args...); !slices.Equal(r.Args(), want) {
					t.Errorf("argv %q, want %q", r.Args(), want)
				}
				got, want := r.Env(), env
				if arch == "arm64" {
					// qemu-user hands the program its own copy of the
					// environment: one entry a name, in another order.
					got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(env), func(s string) bool { return s == "DUP=1" })))
				}
				if !slices.Equal(got, want) {
					t.Errorf("environment differs:\n got %q\nwant %q", got, want)
				}
				seen = trace.FindAllStringSubmatch(res.stderr, -1)
			}
			if len(seen) == 0 {
				t.Fatal("no scheduler trace in 10 starts")
			}
			for _, m := range seen {
				if m[1] != "1" {
					t.Errorf("the entrypoint's runtime ran with gomaxprocs=%s, want 1", m[1])
				}
			}
		})
	}
}

// buildArm64Entrypoint builds nss-entrypoint for arm64 as the Makefile
// does, with the entry stub.
func buildArm64Entrypoint(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "nss-entrypoint")
	cmd := exec.Command(testbuild.Go(), testbuild.EntrypointBuild(out)...)
	cmd.Dir = testbuild.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=arm64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("arm64 build: %v\n%s", err, b)
	}
	return out
}
