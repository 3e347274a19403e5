// Command runtimeview prints the settings its Go runtime started with, as
// the runtime itself applied them. Built with procstate's entry stub
// (-ldflags=-E=procstate.EntrySymbol), it shows what runtimeEnv hands the
// runtime of nss-entrypoint, whatever GOMAXPROCS, GOGC, GOMEMLIMIT and
// GODEBUG the environment holds.
package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/nvidia-nemo/nss-entrypoint/internal/procstate"
)

func main() {
	fmt.Printf("captured=%v\n", procstate.Initial().Captured)
	fmt.Printf("gomaxprocs=%d\n", runtime.GOMAXPROCS(0))
	fmt.Printf("gogc=%d\n", debug.SetGCPercent(100))
	limit := debug.SetMemoryLimit(-1)
	fmt.Printf("gomemlimit-default=%v\n", limit == math.MaxInt64)
	fmt.Printf("panicnil-default=%v\n", panicNilIsAnError())
	env, _ := procstate.Environ()
	for _, kv := range env {
		fmt.Printf("env=%s\n", kv)
	}
	os.Exit(0)
}

// panicNilIsAnError reports whether panic(nil) is recovered as a
// *runtime.PanicNilError: the default, unless GODEBUG=panicnil=1 reached
// the runtime.
func panicNilIsAnError() (isErr bool) {
	defer func() {
		var pe *runtime.PanicNilError
		err, _ := recover().(error)
		isErr = errors.As(err, &pe)
	}()
	panic(nil)
}
