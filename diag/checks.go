package diag

// Startup returns the checks that run before every container start, in the
// order they run and their hints print. The GPU check comes last: it may
// wait for the GPU probe, which Env.StartGPU starts before the others run.
func Startup() []Check {
	return []Check{Workspace, HFCache, HFToken, Shm, GPU}
}

// All returns every check that needs no network, for --diagnose, in report
// order (the network check is in package online). The start-up checks get
// per-check deadlines here.
func All() []Check {
	timed := func(c Check, t timeout) Check {
		c.Timeout = t.d
		if c.Doing == "" {
			c.Doing = t.doing
		}
		return c
	}
	return []Check{
		RuntimeCheck,
		Identity,
		timed(Workspace, timeout{defaultCheckTimeout, "reading the workspace"}),
		Mounts,
		timed(Shm, timeout{defaultCheckTimeout, "statfs /dev/shm"}),
		Resources,
		timed(HFCache, timeout{defaultCheckTimeout, "inspecting HF_HOME"}),
		timed(HFToken, timeout{defaultCheckTimeout, "looking for a token"}),
		HFOffline,
		HFGated,
		timed(GPU, timeout{gpuTimeout, "waiting for nss-gpu-probe (NVML)"}),
		GPUDriver,
		GPUCompute,
		GPUMemory,
		CUDAVisible,
		GPUUVM,
		Config,
		Versions,
	}
}
