// Package checks holds the checks only nss-diagnose runs: identity, mounts,
// resources, offline mode, gated models, the GPU details, configuration and
// package versions. nss-entrypoint never links it, so these checks may use
// any library the report needs.
package checks

import "github.com/nvidia-nemo/nss-entrypoint/internal/check"

// All returns every check that needs no network, for --diagnose, in report
// order (the network check is in package online). The start-up checks get
// per-check deadlines here.
func All() []check.Check {
	timed := func(c check.Check, t timeout) check.Check {
		c.Timeout = t.d
		if c.Doing == "" {
			c.Doing = t.doing
		}
		return c
	}
	return []check.Check{
		RuntimeCheck,
		Identity,
		timed(check.Workspace, timeout{defaultCheckTimeout, "reading the workspace"}),
		Mounts,
		timed(check.Shm, timeout{defaultCheckTimeout, "statfs /dev/shm"}),
		Resources,
		timed(check.HFCache, timeout{defaultCheckTimeout, "inspecting HF_HOME"}),
		timed(check.HFToken, timeout{defaultCheckTimeout, "looking for a token"}),
		HFOffline,
		HFGated,
		timed(check.GPUNVML, timeout{gpuTimeout, "waiting for nss-gpu-probe (NVML)"}),
		GPUDevices,
		CUDA,
		GPULibraries,
		GPUDriver,
		GPUCompute,
		GPUMemory,
		CUDAVisible,
		GPUUVM,
		GPUHealth,
		Config,
		Versions,
	}
}
