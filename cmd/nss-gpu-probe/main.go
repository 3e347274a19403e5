// Command nss-gpu-probe prints one gpureport JSON document describing what
// NVML sees. nss-entrypoint runs it as a child with a deadline, so that a
// missing, crashing or hanging driver can never stop a container from
// starting. It always exits 0 once it has printed a report; a non-zero exit
// means the report could not be written.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/nvidia-nemo/nss-entrypoint/internal/nvmlprobe"
)

func main() {
	lib := nvml.New()
	if path := os.Getenv("NSS_NVML_LIBRARY"); path != "" {
		lib = nvml.New(nvml.WithLibraryPath(path))
	}
	rep := nvmlprobe.Collect(lib)
	out, err := json.Marshal(rep)
	if err == nil {
		_, err = os.Stdout.Write(append(out, '\n'))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nss-gpu-probe: write report: %v\n", err)
		os.Exit(1)
	}
}
