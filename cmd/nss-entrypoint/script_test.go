package main_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the CLI's observable behaviour, as a user sees it, from
// testdata/script/*.txtar: the real binaries and the fake safe-synthesizer
// on PATH, the fake libnvidia-ml.so.1 on LD_LIBRARY_PATH, and a container
// root made of the script's files ($WORK/root).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(bins.Target)+":"+bins.Dir+":/usr/bin:/bin")
			env.Setenv("LD_LIBRARY_PATH", bins.NVMLDir)
			env.Setenv("BIN", bins.Dir)
			env.Setenv("NSS_ENTRYPOINT_ROOT", filepath.Join(env.WorkDir, "root"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// status N program [args...]: run it and want exit status N.
			"status": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: status N program [args...]")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("%v", err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("exit status %d, want %d", got, want)
				}
			},
		},
	})
}
