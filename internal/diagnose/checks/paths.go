package checks

import "github.com/nvidia-nemo/nss-entrypoint/internal/check"

// readPaths is a check's Paths: the paths it reads, as container paths (a
// relative one read against the working directory), so that a check still
// running at its time limit is named by the path that did not answer and
// its filesystem, not as "timed out". Empty paths are left out.
func readPaths(e *check.Env, paths ...string) []string {
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		if abs, ok := e.InWorkDir(p); ok {
			out = append(out, abs)
		}
	}
	return out
}
