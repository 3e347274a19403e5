// Command minexec is the baseline for start-time benchmarks: a static Go
// program that only looks up its target on PATH and execs it, the least any
// Go entrypoint can cost.
package main

import (
	"os"
	"os/exec"
	"syscall"
)

func main() {
	path, err := exec.LookPath(os.Getenv("MINEXEC_TARGET"))
	if err != nil {
		os.Exit(127)
	}
	err = syscall.Exec(path, append([]string{path}, os.Args[1:]...), os.Environ())
	os.Exit(126)
	_ = err
}
