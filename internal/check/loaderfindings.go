package check

import (
	"path"
	"strings"
)

// loaderFindings judges what the loader will pick.
func loaderFindings(e *Env, rep LoaderReport, ldPath string) []LoaderFinding {
	rt := e.Runtime()
	var out []LoaderFinding
	// A file dlopen stops at and cannot load hides every good copy after it.
	for _, lib := range rep.Libraries {
		if lib.Broken != "" {
			out = append(out, LoaderFinding{ID: "unloadable", Status: Fail,
				Message: "the " + lib.Name + " the loader finds first (" + lib.Path + ", from " + lib.From + ") is " + lib.Broken + ": dlopen stops at it and fails, so " + libUser(lib.Name) + " cannot load",
				Hint:    unloadableHint(rt, lib, ldPath)})
		}
	}
	cuda := rep.Libraries[0]
	// The stub first: CUDA cannot work at all with it.
	if cuda.Stub {
		out = append(out, LoaderFinding{ID: "stub", Status: Fail,
			Message: "the loader picks the CUDA toolkit's stub libcuda (" + cuda.Path + ", from " + cuda.From + "): it exists only for linking, and every CUDA call fails with CUDA_ERROR_STUB_LIBRARY (34)",
			Hint:    stubHint(rt, ldPath)})
	} else if dir := stubDirOnPath(e, ldPath); dir != "" {
		// Triton and other JIT compilers look for libcuda.so, which the
		// stubs folder has and the driver does not install.
		out = append(out, LoaderFinding{ID: "stub-on-path", Status: Warn,
			Message: "LD_LIBRARY_PATH names the CUDA toolkit's stubs folder (" + dir + "): a program that loads libcuda.so (Triton does) gets the stub and fails with CUDA_ERROR_STUB_LIBRARY (34)",
			Hint:    stubHint(rt, ldPath)})
	}
	km := rep.KernelModule
	for _, lib := range rep.Libraries {
		if lib.Path == "" || lib.Broken != "" || lib.Stub || km == "" || lib.Version == "" {
			continue
		}
		switch {
		case lib.Compat && compareVersions(lib.Version, km) < 0:
			out = append(out, LoaderFinding{ID: "compat-older", Status: Warn,
				Message: "the loader picks CUDA forward-compatibility libraries " + lib.Version + " (" + lib.Path + ") that are older than the host's driver " + km + ": CUDA fails with CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803)",
				Hint:    "remove the cuda/compat folder from LD_LIBRARY_PATH (the host driver is new enough without it): " + ldPathHint(rt, ldPath, "compat")})
		case !lib.Compat && lib.Version != km:
			out = append(out, LoaderFinding{ID: "version-mismatch", Status: Warn,
				Message: lib.Name + " is version " + lib.Version + " (" + lib.Real + ") but the kernel module is " + km + ": CUDA and NVML fail with a driver/library mismatch (CUDA 803, NVML 18)",
				Hint:    "reboot the host after a driver upgrade; never install driver libraries (libcuda, libnvidia-*) in the image: the NVIDIA Container Toolkit injects the host's"})
		}
	}
	for _, lib := range rep.Libraries {
		// Only where a container engine is known to run this process: on a
		// node with no container (plain Slurm) or with no runtime marker,
		// the driver's own files sit on the root filesystem.
		if lib.Injected == "no" && lib.Broken == "" && !lib.Stub && !lib.Compat && rt.InContainer() && rt.Name != "unknown" {
			out = append(out, LoaderFinding{ID: "baked-in", Status: Warn,
				Message: lib.Name + " (" + lib.Real + ") is part of the image, not injected from the host: it only works while the host runs exactly that driver version",
				Hint:    "remove driver libraries from the image (no libnvidia-* or libcuda packages, no COPY of them) and start with GPUs so that the toolkit injects the host's: " + rt.GPUHint()})
		}
	}
	return out
}

// libUser names what needs a driver library.
func libUser(name string) string {
	if strings.HasPrefix(name, "libnvidia-ml") {
		return "NVML (and nvidia-smi)"
	}
	return "CUDA"
}

// unloadableHint says how to get a file dlopen cannot load out of the way.
func unloadableHint(rt Runtime, lib LibraryChoice, ldPath string) string {
	h := "remove " + lib.Path + " from the image"
	if strings.HasPrefix(lib.From, "LD_LIBRARY_PATH") {
		dir := path.Dir(lib.Path)
		rest := withoutEntry(ldPath, dir)
		if rest == "" {
			h += ", or unset LD_LIBRARY_PATH"
		} else {
			h += ", or take its folder off LD_LIBRARY_PATH: " + rt.EnvHint("LD_LIBRARY_PATH="+rest)
		}
	}
	return h + "; the NVIDIA Container Toolkit injects the host's driver libraries: " + rt.GPUHint()
}

// withoutEntry returns the LD_LIBRARY_PATH list without the entry dir.
func withoutEntry(ldPath, dir string) string {
	var keep []string
	for _, d := range splitLDPath(ldPath) {
		if d != "" && path.Clean(d) != dir {
			keep = append(keep, d)
		}
	}
	return strings.Join(keep, ":")
}

// stubHint says how to take the stubs folder off LD_LIBRARY_PATH.
func stubHint(rt Runtime, ldPath string) string {
	return "remove the stubs folder from LD_LIBRARY_PATH (in the image's ENV, or at start: " + ldPathHint(rt, ldPath, "stubs") + ")"
}

// ldPathHint says how to start with LD_LIBRARY_PATH minus the folders
// named dir.
func ldPathHint(rt Runtime, ldPath, dir string) string {
	rest := withoutDirs(ldPath, dir)
	if rest == "" {
		return "unset LD_LIBRARY_PATH, or " + rt.EnvHint("LD_LIBRARY_PATH=")
	}
	return rt.EnvHint("LD_LIBRARY_PATH=" + rest)
}

// stubDirOnPath returns the first LD_LIBRARY_PATH folder that is a stubs
// folder holding a libcuda, or "".
func stubDirOnPath(e *Env, ldPath string) string {
	for _, dir := range strings.Split(ldPath, ":") {
		if path.Base(dir) != "stubs" {
			continue
		}
		for _, n := range []string{"libcuda.so", "libcuda.so.1"} {
			if e.Exists(path.Join(dir, n)) {
				return dir
			}
		}
	}
	return ""
}

// withoutDirs returns the LD_LIBRARY_PATH list without the folders that
// have a component named dir.
func withoutDirs(ldPath, dir string) string {
	var keep []string
	for _, d := range strings.Split(ldPath, ":") {
		if d != "" && !strings.Contains("/"+d+"/", "/"+dir+"/") {
			keep = append(keep, d)
		}
	}
	return strings.Join(keep, ":")
}

// compareVersions compares dotted numeric versions: -1, 0 or 1.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		x, y := 0, 0
		if i < len(pa) {
			x = atoiPrefix(pa[i])
		}
		if i < len(pb) {
			y = atoiPrefix(pb[i])
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

func atoiPrefix(s string) int {
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			break
		}
		n = n*10 + int(r-'0')
	}
	return n
}
