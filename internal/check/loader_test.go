package check_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/check/checktest"
	"golang.org/x/sys/unix"
)

// libTree lays out a container's driver libraries under the Env's root:
// files (content ignored), links (name -> target), an ld.so.cache, the
// kernel module's version and a mount table.
type libTree struct {
	files    []string
	links    map[string]string
	cache    []check.LDCacheEntry
	kernel   string
	mounts   []string // mount points bind-mounted in (beside "/")
	ldPath   string
	runtime  string // an env entry that picks the runtime; "" is Docker
	noMounts bool
	raw      map[string]string // files with this content ("name/" a directory)
	wd       string            // the working directory
	cachePad int               // zero bytes after the cache
}

// elf is the start of an ELF object for machine (62 x86-64, 183 AArch64,
// 3 i386 with class 1): what the loader reads before it maps a library.
func elf(class byte, machine uint16) string {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = class, 1, 1
	h[16] = 3 // ET_DYN
	binary.LittleEndian.PutUint16(h[18:], machine)
	return string(h)
}

// hostELF is a library header of this build's architecture.
func hostELF() string {
	if runtime.GOARCH == "arm64" {
		return elf(2, 183)
	}
	return elf(2, 62)
}

// foreignELF is a 64-bit library header of another architecture.
func foreignELF() string {
	if runtime.GOARCH == "arm64" {
		return elf(2, 62)
	}
	return elf(2, 183)
}

const (
	multiarch = "/usr/lib/x86_64-linux-gnu"
	kmod      = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build\n"
)

func (lt libTree) env(t *testing.T) *check.Env {
	t.Helper()
	var environ []string
	if lt.ldPath != "" {
		environ = append(environ, "LD_LIBRARY_PATH="+lt.ldPath)
	}
	if lt.runtime != "" {
		environ = append(environ, lt.runtime)
	}
	e := checktest.FakeEnv(t, environ...)
	files := map[string]string{"/.dockerenv": ""}
	for _, f := range lt.files {
		files[f] = hostELF()
	}
	for f, content := range lt.raw {
		files[f] = content
	}
	if lt.kernel != "" {
		files["/proc/driver/nvidia/version"] = lt.kernel
	}
	if !lt.noMounts {
		info := "21 1 0:30 / / rw,relatime - overlay overlay rw\n"
		for i, m := range lt.mounts {
			info += "4" + string(rune('0'+i)) + " 21 259:1 /host" + m + " " + m + " ro,nosuid - ext4 /dev/nvme0n1p1 rw\n"
		}
		files["/proc/self/mountinfo"] = info
	}
	checktest.Mk(t, e, files)
	e.Dir = lt.wd
	for name, target := range lt.links {
		if err := os.MkdirAll(filepath.Dir(e.Path(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, e.Path(name)); err != nil {
			t.Fatal(err)
		}
	}
	if lt.cache != nil {
		if err := os.MkdirAll(e.Path("/etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.Path("/etc/ld.so.cache"), append(ldcache(false, lt.cache...), make([]byte, lt.cachePad)...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// injectedDriver is what the NVIDIA Container Toolkit leaves: the versioned
// files bind-mounted from the host, the soname links ldconfig made, and an
// ld.so.cache entry for each.
func injectedDriver(version string) libTree {
	return libTree{
		files: []string{multiarch + "/libcuda.so." + version, multiarch + "/libnvidia-ml.so." + version},
		links: map[string]string{
			multiarch + "/libcuda.so.1":      "libcuda.so." + version,
			multiarch + "/libnvidia-ml.so.1": "libnvidia-ml.so." + version,
		},
		cache: []check.LDCacheEntry{
			{Name: "libcuda.so.1", Path: multiarch + "/libcuda.so.1", Flags: x8664},
			{Name: "libnvidia-ml.so.1", Path: multiarch + "/libnvidia-ml.so.1", Flags: x8664},
		},
		kernel: kmod,
		mounts: []string{multiarch + "/libcuda.so." + version, multiarch + "/libnvidia-ml.so." + version},
	}
}

func TestLoader(t *testing.T) {
	stubbed := injectedDriver("580.159.04")
	stubbed.files = append(stubbed.files, "/usr/local/cuda/lib64/stubs/libcuda.so")
	stubbed.links["/usr/local/cuda/lib64/stubs/libcuda.so.1"] = "libcuda.so"
	stubbed.ldPath = "/usr/local/cuda/lib64/stubs:/usr/local/nvidia/lib64"

	// The stub reached through "link/..": the kernel takes ".." after the
	// link (the stubs folder), not as text (/opt/ld).
	stubDotDot := injectedDriver("580.159.04")
	stubDotDot.files = append(stubDotDot.files, "/usr/local/cuda/lib64/stubs/libcuda.so", "/usr/local/cuda/lib64/stubs/sub/.keep")
	stubDotDot.links["/usr/local/cuda/lib64/stubs/libcuda.so.1"] = "libcuda.so"
	stubDotDot.links["/opt/ld/link"] = "/usr/local/cuda/lib64/stubs/sub"
	stubDotDot.ldPath = "/opt/ld/link/.."

	stubDirOnly := injectedDriver("580.159.04")
	stubDirOnly.files = append(stubDirOnly.files, "/usr/local/cuda/lib64/stubs/libcuda.so")
	stubDirOnly.ldPath = "/usr/local/cuda/lib64/stubs"

	compatOld := injectedDriver("580.159.04")
	compatOld.files = append(compatOld.files, "/usr/local/cuda/compat/libcuda.so.575.57.08")
	compatOld.links["/usr/local/cuda/compat/libcuda.so.1"] = "libcuda.so.575.57.08"
	compatOld.ldPath = "/usr/local/cuda/compat:/opt/lib"

	compatNew := injectedDriver("570.86.15")
	compatNew.kernel = strings.Replace(kmod, "580.159.04", "570.86.15", 1)
	compatNew.files = append(compatNew.files, "/usr/local/cuda/compat/libcuda.so.580.159.04")
	compatNew.links["/usr/local/cuda/compat/libcuda.so.1"] = "/usr/local/cuda/compat/libcuda.so.580.159.04"
	compatNew.ldPath = "/usr/local/cuda/compat"

	mismatch := injectedDriver("575.57.08") // kernel module 580.159.04

	baked := injectedDriver("580.159.04")
	baked.mounts = nil

	bakedNoRuntime := baked
	bakedNoRuntime.noMounts = false

	dirMount := injectedDriver("580.159.04") // GKE: a whole folder is mounted
	dirMount.files = []string{"/usr/local/nvidia/lib64/libcuda.so.580.159.04", "/usr/local/nvidia/lib64/libnvidia-ml.so.580.159.04"}
	dirMount.links = map[string]string{"/usr/local/nvidia/lib64/libcuda.so.1": "libcuda.so.580.159.04", "/usr/local/nvidia/lib64/libnvidia-ml.so.1": "libnvidia-ml.so.580.159.04"}
	dirMount.cache = nil
	dirMount.mounts = []string{"/usr/local/nvidia"}
	dirMount.ldPath = "/usr/local/nvidia/lib64"

	defaultDir := injectedDriver("580.159.04")
	defaultDir.cache = nil

	hugeCache := injectedDriver("580.159.04")
	hugeCache.cachePad = 8 << 20

	tests := []struct {
		name     string
		tree     libTree
		cuda     check.LibraryChoice // fields compared: Path, Real, Version, From prefix, Stub, Compat, Injected
		findings []string
	}{
		{"toolkit-injected driver", injectedDriver("580.159.04"),
			check.LibraryChoice{Path: multiarch + "/libcuda.so.1", Real: multiarch + "/libcuda.so.580.159.04", Version: "580.159.04", From: "/etc/ld.so.cache", Injected: "yes"}, nil},
		{"stub first on LD_LIBRARY_PATH", stubbed,
			check.LibraryChoice{Path: "/usr/local/cuda/lib64/stubs/libcuda.so.1", Real: "/usr/local/cuda/lib64/stubs/libcuda.so", From: "LD_LIBRARY_PATH entry 1", Stub: true, Injected: "no"}, []string{"stub"}},
		{"stub through link/..", stubDotDot,
			check.LibraryChoice{Path: "/opt/ld/link/../libcuda.so.1", Real: "/usr/local/cuda/lib64/stubs/libcuda.so", From: "LD_LIBRARY_PATH entry 1", Stub: true, Injected: "no"}, []string{"stub"}},
		{"stubs folder with libcuda.so only", stubDirOnly,
			check.LibraryChoice{Path: multiarch + "/libcuda.so.1", Real: multiarch + "/libcuda.so.580.159.04", Version: "580.159.04", From: "/etc/ld.so.cache", Injected: "yes"}, []string{"stub-on-path"}},
		{"compat older than the driver", compatOld,
			check.LibraryChoice{Path: "/usr/local/cuda/compat/libcuda.so.1", Real: "/usr/local/cuda/compat/libcuda.so.575.57.08", Version: "575.57.08", From: "LD_LIBRARY_PATH entry 1", Compat: true, Injected: "no"}, []string{"compat-older"}},
		{"compat newer than the driver", compatNew,
			check.LibraryChoice{Path: "/usr/local/cuda/compat/libcuda.so.1", Real: "/usr/local/cuda/compat/libcuda.so.580.159.04", Version: "580.159.04", From: "LD_LIBRARY_PATH entry 1", Compat: true, Injected: "no"}, nil},
		{"library and kernel module differ", mismatch,
			check.LibraryChoice{Path: multiarch + "/libcuda.so.1", Real: multiarch + "/libcuda.so.575.57.08", Version: "575.57.08", From: "/etc/ld.so.cache", Injected: "yes"}, []string{"version-mismatch", "version-mismatch"}},
		{"baked into the image", baked,
			check.LibraryChoice{Path: multiarch + "/libcuda.so.1", Real: multiarch + "/libcuda.so.580.159.04", Version: "580.159.04", From: "/etc/ld.so.cache", Injected: "no"}, []string{"baked-in", "baked-in"}},
		{"a mounted folder counts as injected", dirMount,
			check.LibraryChoice{Path: "/usr/local/nvidia/lib64/libcuda.so.1", Real: "/usr/local/nvidia/lib64/libcuda.so.580.159.04", Version: "580.159.04", From: "LD_LIBRARY_PATH entry 1", Injected: "yes"}, nil},
		{"no cache: the default folders", defaultDir,
			check.LibraryChoice{Path: multiarch + "/libcuda.so.1", Real: multiarch + "/libcuda.so.580.159.04", Version: "580.159.04", From: "default directory " + multiarch, Injected: "yes"}, nil},
		{"a cache past the read bound is not used", hugeCache,
			check.LibraryChoice{Path: multiarch + "/libcuda.so.1", Real: multiarch + "/libcuda.so.580.159.04", Version: "580.159.04", From: "default directory " + multiarch, Injected: "yes"}, nil},
		{"nothing anywhere", libTree{kernel: kmod}, check.LibraryChoice{}, nil},

		// dlopen stops at the first file of the name it can open, whether or
		// not it can load it; an ELF file of another architecture it skips.
		{"a directory first on LD_LIBRARY_PATH", broken("/opt/weird/libcuda.so.1/", "", "/opt/weird"),
			check.LibraryChoice{Path: "/opt/weird/libcuda.so.1", Real: "/opt/weird/libcuda.so.1", From: "LD_LIBRARY_PATH entry 1 (/opt/weird)", Injected: "no", Broken: "a directory"}, []string{"unloadable"}},
		{"a text file first on LD_LIBRARY_PATH", broken("/opt/weird/libcuda.so.1", strings.Repeat("not a library\n", 10), "/opt/weird"),
			check.LibraryChoice{Path: "/opt/weird/libcuda.so.1", Real: "/opt/weird/libcuda.so.1", From: "LD_LIBRARY_PATH entry 1", Injected: "no", Broken: "not an ELF file"}, []string{"unloadable"}},
		{"a truncated file", broken("/opt/weird/libcuda.so.1", "hello\n", "/opt/weird"),
			check.LibraryChoice{Path: "/opt/weird/libcuda.so.1", Real: "/opt/weird/libcuda.so.1", From: "LD_LIBRARY_PATH entry 1", Injected: "no", Broken: "too short to be a library (6 bytes)"}, []string{"unloadable"}},
		{"a broken file in the default folder, no cache", libTree{kernel: kmod, raw: map[string]string{multiarch + "/libcuda.so.1": "hello\n"}},
			check.LibraryChoice{Path: multiarch + "/libcuda.so.1", Real: multiarch + "/libcuda.so.1", From: "default directory", Injected: "no", Broken: "too short to be a library (6 bytes)"}, []string{"unloadable"}},
		{"another architecture is skipped", broken("/opt/arm/libcuda.so.1", foreignELF(), "/opt/arm"),
			check.LibraryChoice{Path: multiarch + "/libcuda.so.1", Real: multiarch + "/libcuda.so.580.159.04", Version: "580.159.04", From: "/etc/ld.so.cache", Injected: "yes"}, nil},
		{"empty entries count: ::/opt/x is entry 3", withLib("/opt/x/libcuda.so.1", "::/opt/x", "/"),
			check.LibraryChoice{Path: "/opt/x/libcuda.so.1", Real: "/opt/x/libcuda.so.1", From: "LD_LIBRARY_PATH entry 3 (/opt/x)", Injected: "no"}, []string{"baked-in"}},
		{"an empty entry is the working directory", withLib("/app/libcuda.so.1", "/opt/none::/opt/x", "/app"),
			check.LibraryChoice{Path: "/app/libcuda.so.1", Real: "/app/libcuda.so.1", From: "LD_LIBRARY_PATH entry 2 (empty: the working directory)", Injected: "no"}, []string{"baked-in"}},
		{"a relative entry is relative to the working directory", withLib("/app/lib/libcuda.so.1", "lib", "/app"),
			check.LibraryChoice{Path: "/app/lib/libcuda.so.1", Real: "/app/lib/libcuda.so.1", From: "LD_LIBRARY_PATH entry 1 (lib)", Injected: "no"}, []string{"baked-in"}},
		{"$ORIGIN is not searched", withLib("/app/lib/libcuda.so.1", "$ORIGIN/../lib", "/app"),
			check.LibraryChoice{Path: multiarch + "/libcuda.so.1", Real: multiarch + "/libcuda.so.580.159.04", Version: "580.159.04", From: "/etc/ld.so.cache", Injected: "yes"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := check.Loader(tc.tree.env(t))
			got := rep.Libraries[0]
			if got.Name != "libcuda.so.1" || got.Path != tc.cuda.Path || got.Real != tc.cuda.Real || got.Version != tc.cuda.Version ||
				!strings.HasPrefix(got.From, tc.cuda.From) || got.Stub != tc.cuda.Stub || got.Compat != tc.cuda.Compat || got.Injected != tc.cuda.Injected ||
				got.Broken != tc.cuda.Broken {
				t.Errorf("libcuda\n got %+v\nwant %+v", got, tc.cuda)
			}
			var ids []string
			for _, f := range rep.Findings {
				ids = append(ids, f.ID)
				if f.Message == "" || f.Hint == "" {
					t.Errorf("finding without message or hint: %+v", f)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.findings, ",") {
				t.Errorf("findings %v, want %v: %+v", ids, tc.findings, rep.Findings)
			}
			if tc.tree.kernel != "" && rep.KernelModule == "" {
				t.Error("kernel module version not read")
			}
		})
	}
}

// TestBakedInNeedsAContainer: driver libraries on the root filesystem are
// "baked into the image" only where a container engine started this
// process; on a Slurm node with no container, or with no runtime marker,
// they are the node's own.
func TestBakedInNeedsAContainer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		runtime string
		files   map[string]string
		want    bool
	}{
		{"docker", "", map[string]string{"/.dockerenv": ""}, true},
		{"podman", "container=podman", nil, true},
		{"pyxis", "SLURM_JOB_ID=42", map[string]string{"/etc/rc": "# enroot-provenance: x\n"}, true},
		{"plain slurm", "SLURM_JOB_ID=42", nil, false},
		{"no runtime marker", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := injectedDriver("580.159.04")
			tree.mounts = nil
			tree.runtime = tc.runtime
			e := tree.env(t)
			os.Remove(e.Path("/.dockerenv"))
			checktest.Mk(t, e, tc.files)
			var got bool
			for _, f := range check.Loader(e).Findings {
				got = got || f.ID == "baked-in"
			}
			if got != tc.want {
				t.Errorf("%s: baked-in %v, want %v", e.Runtime().Name, got, tc.want)
			}
		})
	}
}

// broken is the toolkit's injected driver with a file at p, content
// content ("p/" a directory), in the one LD_LIBRARY_PATH folder dir.
func broken(p, content, dir string) libTree {
	lt := injectedDriver("580.159.04")
	lt.raw = map[string]string{p: content}
	lt.ldPath = dir
	return lt
}

// withLib is the toolkit's injected driver plus an image's libcuda at p,
// LD_LIBRARY_PATH ldPath and working directory wd.
func withLib(p, ldPath, wd string) libTree {
	lt := injectedDriver("580.159.04")
	lt.files = append(lt.files, p)
	lt.ldPath, lt.wd = ldPath, wd
	return lt
}

// TestLoaderSkipsWhatItCannotResolve: the skipped list says what the
// search passed over.
func TestLoaderSkipsWhatItCannotResolve(t *testing.T) {
	lt := broken("/opt/arm/libcuda.so.1", foreignELF(), "$ORIGIN/../lib:/opt/arm")
	got := strings.Join(check.Loader(lt.env(t)).Libraries[0].Skipped, "\n")
	for _, want := range []string{"LD_LIBRARY_PATH entry 1 ($ORIGIN/../lib): $ORIGIN, $LIB and $PLATFORM depend on the program", "/opt/arm/libcuda.so.1 (an ELF file for another architecture"} {
		if !strings.Contains(got, want) {
			t.Errorf("skipped %q lacks %q", got, want)
		}
	}
}

func TestLoaderHintsSpeakTheRuntime(t *testing.T) {
	tree := injectedDriver("580.159.04")
	tree.files = append(tree.files, "/usr/local/cuda/lib64/stubs/libcuda.so")
	tree.links["/usr/local/cuda/lib64/stubs/libcuda.so.1"] = "libcuda.so"
	tree.ldPath = "/usr/local/cuda/lib64/stubs:/opt/lib"
	for _, tc := range []struct{ env, hint string }{
		{"", `docker run -e LD_LIBRARY_PATH=/opt/lib ...`},
		{"container=podman", `podman run -e LD_LIBRARY_PATH=/opt/lib ...`},
		{"KUBERNETES_SERVICE_HOST=10.0.0.1", `set env LD_LIBRARY_PATH=/opt/lib on the container`},
	} {
		tr := tree
		tr.runtime = tc.env
		rep := check.Loader(tr.env(t))
		if len(rep.Findings) == 0 || !strings.Contains(rep.Findings[0].Hint, tc.hint) {
			t.Errorf("%s: findings %+v, want a hint with %q", tc.env, rep.Findings, tc.hint)
		}
	}
}

// TestLoaderNeverOpensAFIFO: a FIFO where ld.so looks for libcuda is named
// as unloadable at once; opening it would wait for a writer until the
// start-up deadline.
func TestLoaderNeverOpensAFIFO(t *testing.T) {
	lt := broken("/opt/weird/README", "x", "/opt/weird")
	e := lt.env(t)
	if err := unix.Mkfifo(e.Path("/opt/weird/libcuda.so.1"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan check.LoaderReport, 1)
	go func() { done <- check.Loader(e) }()
	select {
	case rep := <-done:
		lib := rep.Libraries[0]
		if lib.Path != "/opt/weird/libcuda.so.1" || !strings.Contains(lib.Broken, "a named pipe") {
			t.Errorf("the FIFO is not named as the unloadable choice: %+v", lib)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Loader blocked on a FIFO named libcuda.so.1")
	}
}
