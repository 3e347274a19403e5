package check

// Startup returns the checks that run before every container start, in the
// order they run and their hints print. The GPU check comes last: it may
// wait for the GPU probe, which Env.StartGPU starts before the others run.
func Startup() []Check {
	return []Check{Workspace, HFCache, HFToken, Shm, GPU}
}
