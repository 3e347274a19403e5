// Command nss-entrypoint is the Safe Synthesizer image's entrypoint: it checks
// the container for common mistakes, prints hints on stderr and execs
// safe-synthesizer with the same arguments and environment. With --diagnose
// as its first argument it prints a support-triage report instead.
//
// Build it with -ldflags "-E <procstate.EntrySymbol>" (the Makefile does):
// the entry stub records the process state the Go runtime changes.
package main

import (
	"os"

	"github.com/nvidia-nemo/nss-entrypoint/internal/cli"
	"github.com/nvidia-nemo/nss-entrypoint/internal/procstate"
)

func main() {
	environ, _ := procstate.Environ()
	os.Exit(cli.Main(os.Args, environ))
}
