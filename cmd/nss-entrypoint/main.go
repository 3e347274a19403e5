// Command nss-entrypoint is the Safe Synthesizer image's entrypoint: it checks
// the container for common mistakes, prints hints on stderr and execs
// safe-synthesizer with the same arguments and environment. With --diagnose
// as its first argument it prints a support-triage report instead.
package main

import (
	"os"

	"github.com/nvidia-nemo/nss-entrypoint/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Environ()))
}
