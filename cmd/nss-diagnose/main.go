// Command nss-diagnose writes the support-triage report that
// `nss-entrypoint --diagnose` prints; nss-entrypoint execs it. It is a
// static binary installed next to nss-entrypoint.
package main

import (
	"os"

	"github.com/nvidia-nemo/nss-entrypoint/internal/diagnose"
)

func main() {
	os.Exit(diagnose.Main(os.Args, os.Environ()))
}
