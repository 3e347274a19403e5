package check

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/child"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/internal/textpath"
)

// HostInfo is what the host (not the container's limits) has.
type HostInfo struct {
	MemoryTotal uint64
	CPUs        int
}

// FSInfo is what statfs says about a filesystem.
type FSInfo struct {
	Type int64
	// Flags are statfs's mount flags (unix.ST_RDONLY, ...).
	Flags int64
	Total uint64
	Free  uint64 // available to unprivileged users
}

// Env is everything a check may touch. Tests build one over a temporary
// directory; NewEnv builds the real one.
type Env struct {
	// Root is joined onto every absolute path a check reads; "" is "/".
	Root string
	// Environ is the process environment as KEY=VALUE strings.
	Environ []string
	// UID and GID are the effective ids of the process; a negative value
	// means "ask the kernel when needed" (see Env.IDs), which keeps two system
	// calls off the start path when nothing needs them.
	UID, GID int
	// Statfs reports on the filesystem holding a (rooted) path.
	Statfs func(path string) (FSInfo, error)
	// Access answers access(2) for a (rooted) path with unix.R_OK, W_OK, X_OK.
	Access func(path string, mode uint32) error
	// GPU runs the GPU probe; the result is memoised, so concurrent checks
	// share one helper run.
	GPU func(ctx context.Context) gpuhelper.Outcome
	// ProbePath returns the GPU probe's path, for messages (nil: unknown).
	ProbePath func() string
	// GPUArgs are nss-gpu-probe's flags: none (NVML only), --cuda (the
	// CUDA stage too) or --diagnose (contexts and hardware health too).
	GPUArgs []string
	// OpenDevice opens a (rooted) device node read-write and closes it;
	// nil means open(2).
	OpenDevice func(path string) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Host reports the machine's memory and CPUs (diagnose only); nil
	// leaves them out.
	Host func() (HostInfo, error)
	// Dir is the working directory (a container path), which the loader
	// searches for an empty or relative LD_LIBRARY_PATH entry and against
	// which a relative Hugging Face cache or token path is read (see
	// InWorkDir); "" means the process's own.
	Dir string
	// CUDAVariant is the image's CUDA variant, such as "cu129"; "" if unknown.
	CUDAVariant string
	// Online allows the network checks to connect.
	Online bool

	// Children records the process groups of running helpers, so that a
	// signal that ends the entrypoint can end them too.
	Children *child.Groups

	// NoHelpers, when not "", says why no helper process may be started
	// (processes are scarce): the GPU probe is not run and paths on unsafe
	// filesystems are not checked at all.
	NoHelpers string
	// NoDelegate makes RunInline run every check in this process, even on
	// an unsafe filesystem: set in the process that does the delegated
	// checks.
	NoDelegate bool
	// RaiseTimeoutFix is how the user gives the checks more time, for the
	// hints of a check that did not finish: "" is the start path's
	// NSS_ENTRYPOINT_TIMEOUT; nss-diagnose names its --timeout.
	RaiseTimeoutFix string
	// Delegate runs the checks named by ids in a separate process that can
	// be abandoned (see RunInline); nil runs them here.
	Delegate func(ctx context.Context, ids []string) DelegateOutcome

	mountinfoOnce sync.Once
	mountinfo     []byte
	mountsOnce    sync.Once
	mounts        []Mount
	unsafeOnce    sync.Once
	unsafe        bool

	nodesOnce sync.Once
	ctl, dxg  bool

	gpuOnce    sync.Once
	gpuOutcome gpuhelper.Outcome
	// mountinfoCut is set when the mount table was longer than its bound.
	mountinfoCut bool
	rtOnce       sync.Once
	rt           Runtime
}

// NewEnv returns the Env of the running process: the real filesystem (or
// the root in NSS_ENTRYPOINT_ROOT, for tests), and nss-gpu-probe from
// NSS_GPU_PROBE or next to the running executable as the GPU source, run
// with environ. argv0 helps find the executable when /proc is missing.
func NewEnv(environ []string, argv0 string) *Env {
	e := &Env{
		Environ:  environ,
		UID:      -1,
		GID:      -1,
		Statfs:   statfs,
		Access:   func(path string, mode uint32) error { return unix.Access(path, mode) },
		Children: &child.Groups{},
	}
	e.Root = e.Get("NSS_ENTRYPOINT_ROOT")
	e.ProbePath = func() string {
		if path := e.Get("NSS_GPU_PROBE"); path != "" {
			return path
		}
		return gpuhelper.SiblingPath("nss-gpu-probe", argv0)
	}
	e.GPU = func(ctx context.Context) gpuhelper.Outcome {
		return gpuhelper.RunIn(ctx, e.ProbePath(), environ, e.Children, probeArgs(ctx, e.GPUArgs)...)
	}
	e.Delegate = func(ctx context.Context, ids []string) DelegateOutcome {
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Now().Add(time.Minute)
		}
		env := WithDelegateDeadline(environ, dl)
		res := child.Run(ctx, child.Spec{Path: "/proc/self/exe", Argv: append([]string{DelegateArgv0}, ids...),
			Env: env, StdoutLimit: 1 << 20, StderrLimit: 4096, Groups: e.Children})
		out := ParseDelegate(res.Stdout)
		switch {
		case res.StartErr != nil:
			out.Err = res.StartErr.Error()
		case res.Exited && !res.TimedOut:
			out.Ended = "it ended before the deadline"
			if ws := res.Status; ws != nil && ws.Signaled() {
				out.Ended = "it was killed by signal " + strconv.Itoa(int(ws.Signal())) + " (" + ws.Signal().String() + ")"
			} else if ws != nil && ws.Exited() {
				out.Ended = "it exited with status " + strconv.Itoa(ws.ExitStatus())
			}
		}
		return out
	}
	return e
}

// probeArgs adds --budget, the time left before ctx's deadline, to the
// probe's flags: the probe ends its CUDA stage in time to print the NVML
// part, and exits by itself shortly after the budget (the entrypoint may
// have been killed without a chance to end it).
func probeArgs(ctx context.Context, args []string) []string {
	dl, ok := ctx.Deadline()
	if !ok {
		return args
	}
	left := time.Until(dl)
	if left <= 0 {
		return args
	}
	return append(append([]string(nil), args...), "--budget="+left.Round(time.Millisecond).String())
}

func statfs(path string) (FSInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FSInfo{}, err
	}
	bs := uint64(st.Bsize)
	return FSInfo{Type: int64(st.Type), Flags: int64(st.Flags), Total: st.Blocks * bs, Free: st.Bavail * bs}, nil
}

// IDs returns the effective uid and gid.
func (e *Env) IDs() (uid, gid int) {
	uid, gid = e.UID, e.GID
	if uid < 0 {
		uid = os.Geteuid()
	}
	if gid < 0 {
		gid = os.Getegid()
	}
	return uid, gid
}

// Path joins the root onto an absolute container path. The path is not
// cleaned (nor was it without a root): the kernel resolves "link/.."
// through the link, and a test root must not change what a path names.
func (e *Env) Path(p string) string {
	if e.Root == "" || e.Root == "/" {
		return p
	}
	if strings.HasPrefix(p, "/") && filepath.IsAbs(e.Root) && filepath.Clean(e.Root) == e.Root {
		return e.Root + p
	}
	return filepath.Join(e.Root, p)
}

// Getenv returns the value of key and whether it is set. The environment
// may define a name twice (the entrypoint passes it on byte for byte); the
// first definition wins, as with getenv(3) and Python's os.environ, so a
// check reads what the target will read.
func (e *Env) Getenv(key string) (string, bool) {
	prefix := key + "="
	for _, kv := range e.Environ {
		if strings.HasPrefix(kv, prefix) {
			return kv[len(prefix):], true
		}
	}
	return "", false
}

// Get returns the value of key, or "" when unset.
func (e *Env) Get(key string) string {
	v, _ := e.Getenv(key)
	return v
}

// Exists reports whether a container path exists (without following a final
// symbolic link to nowhere being counted as existing).
func (e *Env) Exists(p string) bool {
	var st unix.Stat_t
	for {
		err := unix.Stat(e.Path(p), &st)
		if err != unix.EINTR {
			return err == nil
		}
	}
}

// gpuNodes reports, looked up once, whether /dev/nvidiactl and /dev/dxg
// exist: the start path asks three times (whether helpers may run, whether
// to start the probe, the GPU check), and each stat is a system call.
func (e *Env) gpuNodes() (ctl, dxg bool) {
	e.nodesOnce.Do(func() { e.ctl, e.dxg = e.Exists("/dev/nvidiactl"), e.Exists("/dev/dxg") })
	return e.ctl, e.dxg
}

// NVIDIACtl reports whether /dev/nvidiactl exists: NVML's control device,
// present wherever a container was given NVIDIA GPUs on Linux.
func (e *Env) NVIDIACtl() bool {
	ctl, _ := e.gpuNodes()
	return ctl
}

// StartGPU starts the GPU probe in the background when there is a GPU
// device node for NVML to open, so that it runs while the other checks do;
// the GPU check then waits for its outcome. Without a device node it does
// nothing: the GPU check does not start the probe then either.
func (e *Env) StartGPU(ctx context.Context) {
	if e.NoHelpers == "" && (e.NVIDIACtl() || e.WSL()) {
		go e.GPUOutcome(ctx)
	}
}

// WSL reports whether GPUs reach this process through WSL2's
// paravirtualised /dev/dxg (WSL2, Docker Desktop with --gpus all): there is
// no /dev/nvidiactl, /dev/nvidia-uvm or /proc/driver/nvidia there, and NVML
// and CUDA work through the libraries in /usr/lib/wsl/lib.
func (e *Env) WSL() bool {
	_, dxg := e.gpuNodes()
	return dxg
}

// GPUOutcome returns the memoised GPU probe outcome.
func (e *Env) GPUOutcome(ctx context.Context) gpuhelper.Outcome {
	e.gpuOnce.Do(func() {
		if e.GPU == nil {
			e.gpuOutcome = gpuhelper.Outcome{Failure: gpuhelper.Missing, Detail: "no GPU probe configured"}
			return
		}
		if e.NoHelpers != "" {
			e.gpuOutcome = gpuhelper.Outcome{Failure: gpuhelper.NoProcesses, Detail: "not started: " + e.NoHelpers}
			return
		}
		e.gpuOutcome = e.GPU(ctx)
	})
	return e.gpuOutcome
}

// WorkDir returns the working directory as a container path, or "" when it
// cannot be known.
func (e *Env) WorkDir() string {
	if e.Dir != "" {
		return e.Dir
	}
	// getcwd(2) asks the kernel's own record; os.Getwd would first stat
	// "." and $PWD, a request to a FUSE or NFS server that may never
	// answer.
	wd, err := unix.Getwd()
	if err != nil || (e.Root != "" && e.Root != "/") {
		return ""
	}
	return wd
}

// InWorkDir is the container path a program started here (the target
// inherits the working directory) reads for p: p itself when absolute,
// else p joined as text onto WorkDir, and for "" the working directory
// itself (Python's pathlib reads "" as "."). ok is false when p is
// relative and the working directory is not known.
func (e *Env) InWorkDir(p string) (abs string, ok bool) {
	if strings.HasPrefix(p, "/") {
		return p, true
	}
	wd := e.WorkDir()
	if wd == "" {
		return "", false
	}
	if p == "" {
		return wd, true
	}
	return textpath.Join(wd, p), true
}

// ShowPath names p for a message, with abs, what InWorkDir made of it:
// an absolute p as it is, a relative one as "hf (relative: /wd/hf)", ""
// as `"" (the working directory /wd)`; abs "" is a working directory
// that is not known here.
func ShowPath(p, abs string) string {
	switch {
	case strings.HasPrefix(p, "/"):
		return p
	case p == "" && abs == "":
		return `"" (the working directory, not known here)`
	case p == "":
		return `"" (the working directory ` + abs + ")"
	case abs == "":
		return p + " (relative to a working directory not known here)"
	}
	return p + " (relative: " + abs + ")"
}

// Time is the time now by the Env's clock.
func (e *Env) Time() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// CanAccess answers access(2) for a rooted path through Env.Access.
func (e *Env) CanAccess(path string, mode uint32) error {
	if e.Access == nil {
		return unix.Access(path, mode)
	}
	return e.Access(path, mode)
}

// StatfsPath is statfs(2) of a rooted path through Env.Statfs.
func (e *Env) StatfsPath(path string) (FSInfo, error) {
	if e.Statfs == nil {
		return FSInfo{}, errors.New("statfs is not available")
	}
	return e.Statfs(path)
}

// Home returns $HOME, or "" when unset or empty.
func (e *Env) Home() string {
	return e.Get("HOME")
}

// EffectiveUID is the effective uid, for messages.
func (e *Env) EffectiveUID() int {
	u, _ := e.IDs()
	return u
}

// RaiseTimeout is the fix that gives the checks more time, in the words of
// the program that runs them (RaiseTimeoutFix); example is the start
// path's value to suggest.
func (e *Env) RaiseTimeout(example string) string {
	if e.RaiseTimeoutFix != "" {
		return e.RaiseTimeoutFix
	}
	return "raise NSS_ENTRYPOINT_TIMEOUT (a Go duration such as " + example + ")"
}
