package diag

// Startup returns the checks that run before every container start, in the
// order their hints print.
func Startup() []Check {
	return []Check{Workspace, HFCache, HFToken, GPU, Shm}
}
