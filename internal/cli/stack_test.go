package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// TestTheStartPathFitsTheReservedStack: after reserveStack, the checks,
// their hints and the scrubbing run without the runtime growing (and so
// moving) the stack, for a start without a GPU whatever the checks find.
// The phase runs below a frame as deep as what lies above the checks in
// the real start (runtime.main, main.main, Main and entrypoint: about
// 1.5 KiB), rounded up.
func TestTheStartPathFitsTheReservedStack(t *testing.T) {
	full := containerRoot(t)
	emptyFolders := t.TempDir()
	for _, d := range []string{"workspace/a", "workspace/b", "dev"} {
		if err := os.MkdirAll(filepath.Join(emptyFolders, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		environ []string
		says    string
	}{
		{"every check but the GPU passes", []string{"NSS_ENTRYPOINT_ROOT=" + full, "HF_HOME=/hf", "HF_TOKEN=hf_x"}, "no GPU"},
		{"nothing is there", []string{"NSS_ENTRYPOINT_ROOT=" + t.TempDir(), "HF_HOME=~/hf"}, "does not exist"},
		{"the workspace holds empty folders", []string{"NSS_ENTRYPOINT_ROOT=" + emptyFolders, "HF_TOKEN_PATH="}, "empty folders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			environ := append([]string{"PATH=/usr/bin:/bin", "HOME=/home/appuser", "SLURM_JOB_ID=7", "KUBERNETES_SERVICE_HOST=10.0.0.1"}, tc.environ...)
			type outcome struct {
				moved bool
				out   string
			}
			done := make(chan outcome)
			go func() {
				reserveStack()
				var mark byte
				before := uintptr(unsafe.Pointer(&mark))
				out := belowStartFrames(environ)
				done <- outcome{uintptr(unsafe.Pointer(&mark)) != before, out}
			}()
			o := <-done
			if !strings.Contains(o.out, tc.says) {
				t.Fatalf("the checks did not run as meant: want %q in\n%s", tc.says, o.out)
			}
			if o.moved {
				t.Errorf("the stack grew during the check phase: raise stackPad (now %d)", stackPad)
			}
		})
	}
}

// belowStartFrames runs checkPhase under a 2 KiB frame.
//
//go:noinline
func belowStartFrames(environ []string) string {
	var pad [2 << 10]byte
	keepFrame(pad[:])
	return checkPhase(environ)
}
