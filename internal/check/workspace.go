package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// WriteProbePrefix names the files the --diagnose mounts check creates and
// removes to prove a path writable; the workspace check does not count a
// leftover one as content.
const WriteProbePrefix = ".nss-write-probe-"

// DefaultWorkspace is where the image expects the user's data.
const DefaultWorkspace = "/workspace"

// Workspace checks that the workspace exists, is a readable directory and is
// not empty. It reads at most one directory entry.
var Workspace = Check{
	ID: "workspace", Title: "workspace",
	Paths: func(e *Env) []string { return []string{WorkspaceDir(e)} },
	Run: func(ctx context.Context, e *Env) Result {
		dir := WorkspaceDir(e)
		data := map[string]any{"path": dir}
		shown := dir
		if raw := e.Get("NSS_WORKSPACE"); raw != "" && !strings.HasPrefix(raw, "/") {
			// Relative: read against the working directory, and said so.
			data["relative"] = raw
			shown = "NSS_WORKSPACE=" + raw + " (relative: " + dir + ")"
		}
		// One open with O_DIRECTORY tells missing, not a directory and
		// unreadable apart without a separate stat.
		empty, err := isEmptyDir(e.Path(dir))
		if err == nil {
			// access(2) judges with the effective ids, as Python will.
			err = e.CanAccess(e.Path(dir), unix.R_OK|unix.X_OK)
		}
		switch {
		case errors.Is(err, unix.ENOENT):
			return Result{Status: Warn, Message: shown + " does not exist", Hint: workspaceFix(e, dir), Data: data}
		case errors.Is(err, unix.ENOTDIR):
			return Result{Status: Warn, Message: notADirectory(e, shown, dir), Hint: workspaceFix(e, dir), Data: data}
		case err != nil:
			data["uid"] = e.EffectiveUID()
			msg, hint := PathError(e, shown, err, false)
			if hint == "" {
				hint = workspaceFix(e, dir)
			}
			return Result{Status: Warn, Message: msg, Hint: hint, Data: data}
		case empty:
			return Result{Status: Warn, Message: shown + " is empty: no data is mounted there", Hint: workspaceFix(e, dir), Data: data}
		}
		if point, vol, ok := emptyNamedVolume(e, dir); ok {
			data["named_volume"] = vol
			return Result{Status: Warn, Data: data,
				Message: fmt.Sprintf("%s is an empty Docker named volume %q, not a host folder: -v %s:%s names a volume; a host folder needs an absolute path", point, vol, vol, point),
				Hint:    "use an absolute host path: " + e.Runtime().MountHint(`$(pwd)/`+vol, point)}
		}
		return Result{Status: OK, Message: dir + " has content", Data: data}
	},
}

// notADirectory words ENOTDIR met on p: p is not a directory, or, when a
// folder on its way is a file, p does not exist.
func notADirectory(e *Env, shown, p string) string {
	if f := fileOnPath(e, p); f != "" {
		return shown + " does not exist: " + f + " on its way is a file, not a directory"
	}
	return shown + " is not a directory"
}

// fileOnPath returns the first folder on the way to p (p itself excluded)
// that exists and is not a directory, or "". It asks only prefixes of p as
// written, each a step the kernel took resolving p itself (a cleaned prefix
// could name a place, a mount, the resolution never went through).
func fileOnPath(e *Env, p string) string {
	p = strings.TrimRight(p, "/")
	for i := 1; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(e.Path(p[:i]), &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return p[:i]
		}
	}
	return ""
}

// emptyNamedVolume finds an empty Docker named volume mounted at or below
// dir: what `-v data:/workspace/data` (a relative name, not a path) makes.
// A named volume that holds data was meant, and is not reported.
func emptyNamedVolume(e *Env, dir string) (point, volume string, found bool) {
	if !bytes.Contains(e.mountinfoBytes(), []byte("/_data ")) {
		return "", "", false
	}
	mounts := e.Mounts()
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for _, m := range mounts {
		if m.Point != dir && !strings.HasPrefix(m.Point, prefix) || Unsafe(m.FSType) {
			continue
		}
		if kind, vol := MountKind(m); kind == "named-volume" {
			if empty, err := isEmptyDir(e.Path(m.Point)); err == nil && empty {
				return m.Point, vol, true
			}
		}
	}
	return "", "", false
}

// WorkspaceDir is the workspace to check: NSS_WORKSPACE (a relative value
// is read against the working directory, as the target would read it),
// else /workspace.
func WorkspaceDir(e *Env) string {
	dir := e.Get("NSS_WORKSPACE")
	if dir == "" {
		return DefaultWorkspace
	}
	return absolute(dir)
}

func workspaceFix(e *Env, dir string) string {
	if rt := e.Runtime(); !rt.InContainer() {
		return "no container: point NSS_WORKSPACE at your data: " + rt.MountHint(`$(pwd)/data`, dir, "NSS_WORKSPACE="+dir)
	}
	return "mount your data with an absolute host path: " + e.Runtime().MountHint(`$(pwd)/data`, dir+"/data")
}

// UnwrapPath drops the "stat /root/path:" prefix of a *PathError so messages
// show the container path only once.
func UnwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// getdents reads directory entries; tests count its calls.
var getdents = unix.Getdents

// isEmptyDir reports whether a directory has no entries but . and .., reading
// one small buffer of entries at most. It uses raw system calls: os.Open
// would start the runtime's network poller, measured to cost start time.
//
// The directory is always opened, so that a read that Landlock or AppArmor
// would refuse (access(2) does not ask them) is reported. A directory with
// subdirectories is then known not to be empty without being read: ext4,
// xfs, tmpfs, squashfs and most others count a directory's links as 2 plus
// its subdirectories (btrfs and overlayfs's merged directories say 1, and
// are read), and a workspace usually holds folders (the hints mount data at
// /workspace/data).
func isEmptyDir(path string) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && st.Nlink > 2 {
		return false, nil
	}
	var buf [1024]byte
	empty := true
	err = readNames(fd, buf[:], func(name string) bool {
		// The mounts check's write probe may be there for a moment.
		empty = strings.HasPrefix(name, WriteProbePrefix)
		return empty
	})
	return empty && err == nil, err
}
