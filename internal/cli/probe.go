package cli

import (
	"context"

	"github.com/nvidia-nemo/nss-entrypoint/diag"
	"github.com/nvidia-nemo/nss-entrypoint/gpuhelper"
)

// probeRunner returns the GPU source for e: nss-gpu-probe next to argv0's
// executable (or NSS_GPU_PROBE), run with e's environment.
func probeRunner(e *diag.Env, argv0 string) func(context.Context) gpuhelper.Outcome {
	return func(ctx context.Context) gpuhelper.Outcome {
		return gpuhelper.Run(ctx, probePath(e, argv0), e.Environ)
	}
}
