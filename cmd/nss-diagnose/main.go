// Command nss-diagnose writes the support-triage report that
// `nss-entrypoint --diagnose` prints; nss-entrypoint execs it. It is a
// static binary installed next to nss-entrypoint, linked like it with
// procstate's entry stub: its Go runtime starts with the stub's settings,
// and the report reads the environment as the kernel handed it over.
package main

import (
	"os"

	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose"
	"github.com/nvidia-nemo/nss-entrypoint/internal/procstate"
)

func main() {
	environ, _ := procstate.Environ()
	os.Exit(diagnose.Main(os.Args, environ))
}
