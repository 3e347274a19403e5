package check

import (
	"encoding/binary"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/nvidia-nemo/nss-entrypoint/internal/textpath"
)

// LibraryChoice is the library the dynamic loader will map for a soname
// that a program dlopens (no RPATH: nss-gpu-probe and PyTorch's own
// dlopen("libcuda.so.1") search the same way), and why.
type LibraryChoice struct {
	// Name is the soname looked for, such as "libcuda.so.1".
	Name string `json:"name"`
	// Path is where the loader finds it; "" when it is nowhere.
	Path string `json:"path,omitempty"`
	// Real is Path with symbolic links resolved.
	Real string `json:"real,omitempty"`
	// Version is the driver version in the real file's name
	// (libcuda.so.580.159.04 gives 580.159.04), or "".
	Version string `json:"version,omitempty"`
	// From says which step of the search found it: "LD_LIBRARY_PATH entry
	// N", "/etc/ld.so.cache" or "default directory".
	From string `json:"from,omitempty"`
	// Stub is true for the CUDA toolkit's link-time stub (a stubs folder).
	Stub bool `json:"stub,omitempty"`
	// Compat is true for CUDA forward-compatibility libraries (a compat folder).
	Compat bool `json:"compat,omitempty"`
	// Injected is "yes" when a bind mount put the file in the container
	// (the NVIDIA Container Toolkit, CDI, Apptainer's --nv), "no" when it
	// belongs to the image, "" when unknown.
	Injected string `json:"injected,omitempty"`
	// Broken says why dlopen fails on Path although it exists: "a
	// directory", "not an ELF file", "too short to be a library". The
	// loader stops at the first file of the name it can open, usable or not.
	Broken string `json:"broken,omitempty"`
	// Others lists the copies found later in the search, which lose.
	Others []string `json:"others,omitempty"`
	// Skipped lists what the search passed over and why: ELF files for
	// another architecture (as glibc skips them), LD_LIBRARY_PATH entries
	// this model cannot resolve ($ORIGIN, $LIB, $PLATFORM; a relative entry
	// when the working directory is unknown).
	Skipped []string `json:"skipped,omitempty"`
}

// LoaderFinding is one problem loader forensics found.
type LoaderFinding struct {
	// ID is stable: unloadable, stub, stub-on-path, compat-older,
	// version-mismatch, baked-in.
	ID      string `json:"id"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Hint    string `json:"hint"`
}

// LoaderReport is what loader forensics found.
type LoaderReport struct {
	Libraries []LibraryChoice `json:"libraries"`
	// KernelModule is the NVIDIA kernel module's version from
	// /proc/driver/nvidia/version, or "".
	KernelModule string          `json:"kernel_module,omitempty"`
	Findings     []LoaderFinding `json:"findings,omitempty"`
}

// GPULibraries are the driver libraries loader forensics looks for.
var GPULibraries = []string{"libcuda.so.1", "libnvidia-ml.so.1"}

// Loader works out which libcuda.so.1 and libnvidia-ml.so.1 the loader
// will pick in this container and why, as glibc's ld.so searches for a
// dlopen without RPATH: LD_LIBRARY_PATH in order (an empty entry is the
// working directory, a relative one is relative to it; entries with $ORIGIN,
// $LIB or $PLATFORM depend on the program and are listed as skipped), then
// /etc/ld.so.cache, then the default directories (glibc-hwcaps subfolders
// are not modelled). Like ld.so it stops at the first file of the name that
// is not an ELF object for another architecture, usable or not.
// It then looks for the stub libcuda, forward-compatibility libraries older
// than the driver, a version that differs from the kernel module's and
// driver libraries baked into the image. It reads only files: cheap enough
// for the start path.
func Loader(e *Env) LoaderReport {
	rep := LoaderReport{}
	if b, err := ReadSmall(e.Path("/proc/driver/nvidia/version"), maxDriverVersion); err == nil {
		rep.KernelModule = ParseDriverVersion(b)
	}
	var cache []LDCacheEntry
	if b, err := ReadSmall(e.Path("/etc/ld.so.cache"), maxLDCache+1); err == nil && len(b) <= maxLDCache {
		cache, _ = ParseLDCache(b)
	}
	mounts := e.Mounts()
	ldPath := e.Get("LD_LIBRARY_PATH")
	for _, name := range GPULibraries {
		c := e.findLibrary(name, ldPath, cache)
		if c.Real != "" {
			c.Injected = injected(c.Real, mounts)
		}
		rep.Libraries = append(rep.Libraries, c)
	}
	rep.Findings = loaderFindings(e, rep, ldPath)
	return rep
}

// What the loader reads is bounded, whatever the files are (a link to
// /dev/zero, a sparse file of terabytes): the driver's version file is a
// few hundred bytes; a system's ld.so.cache is tens to hundreds of KiB
// (one with every Debian library installed, about 2 MiB). A cache longer
// than the bound is not used (cut off, it could parse, short of entries).
const (
	maxDriverVersion = 64 << 10
	maxLDCache       = 8 << 20
)

// findLibrary runs the loader's search for name.
func (e *Env) findLibrary(name, ldPath string, cache []LDCacheEntry) LibraryChoice {
	c := LibraryChoice{Name: name}
	found := func(p, from string) {
		if c.Path == "" {
			c.Path, c.From = p, from
		} else if p != c.Path {
			c.Others = append(c.Others, p)
		}
	}
	// Links are resolved under the root: an absolute target is a
	// container path.
	isFile := func(p string) bool {
		// Never touch a FUSE or network filesystem from the start path
		// (see Env.Locate): a hung one would stop the exec.
		if loc := e.Locate(p); loc.Unsafe {
			c.Skipped = append(c.Skipped, p+" (on "+loc.Where()+": not searched, so that a hung mount cannot hold up the start)")
			return false
		}
		broken, ok := e.libraryFile(p)
		switch {
		case !ok:
			return false
		case broken == otherArch:
			c.Skipped = append(c.Skipped, p+" (an ELF file for another architecture: the loader passes over it)")
			return false
		case c.Path == "":
			c.Broken = broken
		}
		return true
	}
	if ldPath != "" {
		wd := ""
		for n, dir := range splitLDPath(ldPath) {
			entry := "LD_LIBRARY_PATH entry " + strconv.Itoa(n+1) + " (" + dir + ")"
			if dir == "" {
				entry = "LD_LIBRARY_PATH entry " + strconv.Itoa(n+1) + " (empty: the working directory)"
			}
			if strings.Contains(dir, "$") {
				c.Skipped = append(c.Skipped, entry+": $ORIGIN, $LIB and $PLATFORM depend on the program that loads CUDA, so this entry is not searched here")
				continue
			}
			if !path.IsAbs(dir) {
				if wd == "" {
					wd = e.WorkDir()
				}
				if wd == "" {
					c.Skipped = append(c.Skipped, entry+": relative to a working directory that is not known here")
					continue
				}
				dir = textpath.Join(wd, dir)
			}
			p := textpath.Join(dir, name)
			if isFile(p) {
				found(p, entry)
			}
		}
	}
	if p := LDCacheLookup(cache, name, ldArch()); p != "" {
		if isFile(p) {
			found(p, "/etc/ld.so.cache")
		}
	}
	for _, dir := range defaultLibDirs() {
		p := textpath.Join(dir, name)
		if isFile(p) {
			found(p, "default directory "+dir)
		}
	}
	if c.Path == "" {
		return c
	}
	// Every link followed as the kernel follows it ("link/.." is the
	// target's parent), never into a mount that may hang.
	c.Real = e.Resolve(c.Path).Resolved
	c.Version = libraryVersion(c.Real)
	c.Stub = hasDir(c.Path, "stubs") || hasDir(c.Real, "stubs")
	c.Compat = hasDir(c.Path, "compat") || hasDir(c.Real, "compat")
	return c
}

// splitLDPath splits LD_LIBRARY_PATH as ld.so does: at ':' and ';',
// keeping empty entries (each one means the working directory).
func splitLDPath(ldPath string) []string {
	var out []string
	for {
		i := strings.IndexAny(ldPath, ":;")
		if i < 0 {
			return append(out, ldPath)
		}
		out = append(out, ldPath[:i])
		ldPath = ldPath[i+1:]
	}
}

// otherArch is libraryFile's verdict on an ELF file for another
// architecture.
const otherArch = "another architecture"

// libraryFile says how ld.so treats the file at container path p: ok is
// false when nothing is there; broken is "" for an ELF object of this
// build's architecture, otherArch for one of another (which ld.so skips),
// else why dlopen fails on it (and stops there).
func (e *Env) libraryFile(p string) (broken string, ok bool) {
	// stat first: opening a FIFO (or some devices) blocks until a writer
	// comes, which would hold the GPU check to its deadline.
	name := p
	if e.Root != "" && e.Root != "/" {
		// Under a test root, an absolute link target is a container path.
		name = e.Path(e.Resolve(p).Resolved)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return "", false
	}
	switch {
	case fi.IsDir():
		return "a directory", true
	case !fi.Mode().IsRegular():
		return "not a regular file (" + fileKind(fi.Mode()) + ")", true
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", false
	}
	defer f.Close()
	var h [20]byte
	n, _ := io.ReadFull(f, h[:])
	switch {
	case n < 4 || string(h[:4]) != "\x7fELF":
		if fi.Size() < 64 {
			return "too short to be a library (" + strconv.FormatInt(fi.Size(), 10) + " bytes)", true
		}
		return "not an ELF file", true
	case n < len(h) || fi.Size() < 64:
		return "too short to be a library (" + strconv.FormatInt(fi.Size(), 10) + " bytes)", true
	case h[4] != 2 || binary.LittleEndian.Uint16(h[18:]) != elfMachine():
		return otherArch, true
	}
	return "", true
}

// elfMachine is this build's ELF e_machine.
func elfMachine() uint16 {
	if runtime.GOARCH == "arm64" {
		return 183 // EM_AARCH64
	}
	return 62 // EM_X86_64
}

// libraryVersion returns the version after ".so." in a library's file
// name when it looks like a driver version (two or three dotted numbers
// with a major of three digits), such as "580.159.04"; else "".
func libraryVersion(p string) string {
	_, v, ok := strings.Cut(path.Base(p), ".so.")
	if !ok || !looksLikeDriverVersion(v) {
		return ""
	}
	return v
}

func looksLikeDriverVersion(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 || len(parts[0]) < 3 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for _, r := range p {
			if r < '0' || r > '9' {
				return false
			}
		}
	}
	return true
}

// ParseDriverVersion reads the kernel module's version from
// /proc/driver/nvidia/version: the first driver-version-shaped word of the
// "NVRM version:" line ("NVRM version: NVIDIA UNIX x86_64 Kernel Module
// 580.159.04  Thu ..." or "... Open Kernel Module for x86_64  580.159.04
// Release Build ..."); "" when there is none.
func ParseDriverVersion(b []byte) string {
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "NVRM version:")
		if !ok {
			continue
		}
		for _, w := range strings.Fields(rest) {
			if looksLikeDriverVersion(w) {
				return w
			}
		}
	}
	return ""
}

// hasDir reports whether a folder of p is named dir.
func hasDir(p, dir string) bool {
	return strings.Contains("/"+path.Dir(p)+"/", "/"+dir+"/")
}

// injected says whether a bind mount other than the container's root
// filesystem covers p: "yes", "no", or "" without a mount table.
func injected(p string, mounts []Mount) string {
	if len(mounts) == 0 {
		return ""
	}
	best := ""
	for _, m := range mounts {
		pt := m.Point
		if (p == pt || strings.HasPrefix(p, strings.TrimSuffix(pt, "/")+"/")) && len(pt) > len(best) {
			best = pt
		}
	}
	if best == "" || best == "/" {
		return "no"
	}
	return "yes"
}

// ldArch is the ld.so.cache architecture flag of this build.
func ldArch() int32 {
	if runtime.GOARCH == "arm64" {
		return LDFlagAArch64
	}
	return LDFlagX8664
}

// defaultLibDirs are the folders glibc searches last, Debian's multiarch
// ones included.
func defaultLibDirs() []string {
	triplet := "x86_64-linux-gnu"
	if runtime.GOARCH == "arm64" {
		triplet = "aarch64-linux-gnu"
	}
	return []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
}
