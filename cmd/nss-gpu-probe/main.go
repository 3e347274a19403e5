// Command nss-gpu-probe prints one gpureport JSON document describing what
// NVML sees and, when asked, what the CUDA driver API says. nss-entrypoint
// runs it as a child with a deadline, so that a missing, crashing or hanging
// driver can never stop a container from starting. It always exits 0 once
// it has printed a report; a non-zero exit means the report could not be
// written.
//
// Flags:
//
//	--cuda          after NVML, run the CUDA stage (cuInit, the devices)
//	--diagnose      the CUDA stage with a context on each device, and each
//	                GPU's hardware health
//	--budget DUR    the time the caller gives this probe; the CUDA stage
//	                runs in a child process that is killed before it ends,
//	                and the probe exits (status 3) half a second after it
//	--cuda-stage    (internal) run the CUDA stage in this process and print
//	                its JSON; --contexts adds the contexts
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/nvidia-nemo/nss-entrypoint/internal/cudaprobe"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
	"github.com/nvidia-nemo/nss-entrypoint/internal/nvmlprobe"
)

// defaultBudget is the CUDA stage's time when the caller gives none.
const defaultBudget = 10 * time.Second

// budgetGrace is how long the probe runs past a given --budget before it
// exits by itself.
const budgetGrace = 500 * time.Millisecond

func main() {
	start := time.Now()
	fs := flag.NewFlagSet("nss-gpu-probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cuda := fs.Bool("cuda", false, "")
	diagnose := fs.Bool("diagnose", false, "")
	budget := fs.Duration("budget", defaultBudget, "")
	stageOnly := fs.Bool("cuda-stage", false, "")
	contexts := fs.Bool("contexts", false, "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "nss-gpu-probe: %v\n", err)
		os.Exit(2)
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "budget" })
	if given && !*stageOnly {
		// Past the budget and a grace nobody reads the report (the caller
		// may have been killed without a chance to end this probe): exit,
		// even with NVML or CUDA stuck in a call.
		// The sum saturates: a budget near the largest duration must not
		// wrap around to an exit at once.
		time.AfterFunc(min(*budget, math.MaxInt64-budgetGrace)+budgetGrace, func() {
			fmt.Fprintf(os.Stderr, "%s of %v and %v more: it ends\n", gpureport.BudgetSpent, *budget, budgetGrace)
			os.Exit(3)
		})
	}
	if *stageOnly {
		rep := cudaprobe.Stage(*contexts, func(call string) {
			os.Stderr.WriteString(cudaprobe.ProgressPrefix + call + "\n")
		})
		write(rep)
		return
	}

	lib := nvml.New()
	if path := os.Getenv("NSS_NVML_LIBRARY"); path != "" {
		lib = nvml.New(nvml.WithLibraryPath(path))
	}
	rep := nvmlprobe.CollectWith(lib, nvmlprobe.Options{Health: *diagnose, Library: cudaprobe.NVMLLibrary})
	rep.NVMLMillis = float64(time.Since(start).Microseconds()) / 1000
	if *cuda || *diagnose {
		// The stage gets what is left of the budget less a margin for
		// writing this report, so that a hang in cuInit costs the CUDA
		// answer, never the NVML one.
		deadline := start.Add(*budget - max(*budget/10, 50*time.Millisecond))
		args := []string{"--cuda-stage"}
		if *diagnose {
			args = append(args, "--contexts")
		}
		self, err := os.Executable()
		if err != nil {
			self = os.Args[0]
		}
		c := cudaprobe.RunStage(self, args, os.Environ(), deadline)
		rep.CUDA = &c
	}
	write(rep)
}

func write(v any) {
	out, err := json.Marshal(v)
	if err == nil {
		_, err = os.Stdout.Write(append(out, '\n'))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nss-gpu-probe: write report: %v\n", err)
		os.Exit(1)
	}
}
