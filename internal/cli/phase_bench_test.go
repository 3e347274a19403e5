package cli

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/hints"
)

// BenchmarkCheckPhase is the start path's work between the runtime's start
// and the exec, in process, on a container-like root without a GPU: the
// checks, the hints and the scrubbing of what is written. (make bench
// measures whole starts; this one shows where a change to that work goes.)
func BenchmarkCheckPhase(b *testing.B) {
	root := containerRoot(b)
	environ := []string{"PATH=/usr/bin:/bin", "HOME=/home/appuser", "NSS_ENTRYPOINT_ROOT=" + root, "HF_HOME=/hf", "HF_TOKEN=hf_benchmark"}
	for b.Loop() {
		checkPhase(environ)
	}
}

// containerRoot makes a root in which every check but the GPU passes: a
// workspace holding data/train.csv, an HF_HOME of /hf, a /dev/shm.
func containerRoot(tb testing.TB) string {
	root := tb.TempDir()
	for _, d := range []string{"workspace/data", "hf", "dev/shm"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "workspace/data/train.csv"), []byte("a\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return root
}

// checkPhase does in process what entrypoint does between the runtime's
// start and the exec, without a GPU: the checks, the hints and the
// scrubbing of what would be written. It returns what would be written.
func checkPhase(environ []string) string {
	e := check.NewEnv(environ, "/usr/local/bin/nss-entrypoint")
	_ = e.NVIDIACtl() || e.WSL() || e.UnsafeMounts()
	h := &handover{e: e, environ: environ}
	ctx, cancel := context.WithTimeout(check.WithBudget(context.Background(), DefaultTimeout), DefaultTimeout)
	defer cancel()
	out := hints.Startup(check.RunInline(ctx, e, check.Startup(), nil), hints.ColourWanted(e.Get, h.stderrTerminal()))
	return h.scrubber().String(string(out))
}
