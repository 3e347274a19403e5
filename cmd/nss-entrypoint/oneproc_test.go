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

// The Go settings in the user's environment are for the user's programs:
// nss-entrypoint's own runtime starts with the stub's (procstate's
// runtimeEnv; what the runtime makes of them is TestTheStubHandsTheRuntime-
// ItsOwnSettings), and the target gets them as given, with argv and the
// rest of the environment byte for byte. GODEBUG=inittrace=1 makes a Go
// runtime that reads it write a line to stderr for each package's init,
// before main, on every start: none may appear. GOMEMLIMIT=4G is not a
// value the runtime can parse (it wants 4GiB): a runtime that read it
// would abort before main. The entry stub is written twice, so it is
// checked on amd64 and, under qemu-user, on arm64.
func TestTheUsersGoSettingsReachOnlyTheTarget(t *testing.T) {
	binaries := map[string][]string{"amd64": {bins.Entrypoint}}
	if qemu, err := exec.LookPath("qemu-aarch64"); err == nil {
		binaries["arm64"] = []string{qemu, buildArm64Entrypoint(t)}
	} else if os.Getenv("CI") != "" {
		t.Error("no qemu-aarch64 (Debian's qemu-user): the arm64 entry stub is not checked")
	}
	env := baseEnv(root(t, false), "GOMAXPROCS=7", "GODEBUG=inittrace=1,gctrace=1", "GOMEMLIMIT=4G", "GOGC=off", "DUP=1", "DUP=2")
	args := []string{"run", "two words", ""}
	for arch, argv := range binaries {
		t.Run(arch, func(t *testing.T) {
			res := startRaw(t, argv[0], append(argv, args...), env)
			if res.code != 0 {
				t.Fatalf("%v: exit %d\n%s", argv, res.code, res.stderr)
			}
			if runtimeTrace.MatchString(res.stderr) {
				t.Errorf("the user's GODEBUG reached the entrypoint's runtime:\n%s", res.stderr)
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
		})
	}
}

// runtimeTrace matches the lines the Go runtime writes for GODEBUG's
// inittrace and gctrace.
var runtimeTrace = regexp.MustCompile(`(?m)^(init [\w/.]+ @|gc \d+ @)`)

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

// The helpers are Go programs too, and the user's Go settings are not meant
// for them: GOMEMLIMIT=4G aborted the GPU probe before its main, and the
// hint blamed the probe. They run with the Go runtime's defaults (gpuhelper's
// helperEnv), so the checks come out as without those settings.
func TestTheUsersGoSettingsDoNotReachTheHelpers(t *testing.T) {
	for _, setting := range []string{"GOMEMLIMIT=4G", "GODEBUG=inittrace=1", "GOGC=bad", "GOTRACEBACK=crash", "GOMAXPROCS=0"} {
		t.Run(setting, func(t *testing.T) {
			res := runEP(t, baseEnv(root(t, true), "NSS_FAKE_NVML=devices=2", setting))
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			want := "nss-entrypoint: ok: 5 checks passed; 2 GPUs: 2x NVIDIA H200 (140.4 GiB), driver 580.159.04, CUDA 13.0\n"
			if res.stderr != want {
				t.Errorf("stderr %q\nwant   %q", res.stderr, want)
			}
		})
	}
}
