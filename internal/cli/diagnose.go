package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/nvidia-nemo/nss-entrypoint/diag"
)

// Diagnose runs every check and writes the report to stdout. It returns 0
// when no check failed, 1 when one did, 2 for a usage error and 3 when the
// report could not be completed.
func Diagnose(args, environ []string, stdout, stderr io.Writer, stdoutTTY, stderrTTY bool) int {
	e := newEnv(environ)
	e.GPU = probeRunner(e, "")
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	results := diag.Run(ctx, e, diag.Startup())
	for _, r := range results {
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", r.Status, r.ID, r.Message)
	}
	if diag.Worst(results) == diag.Fail {
		return 1
	}
	return 0
}
