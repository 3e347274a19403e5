package check

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WriteProbePrefix names the files the --diagnose mounts check creates and
// removes to prove a path writable; the workspace check does not count a
// leftover one as content.
const WriteProbePrefix = ".nss-write-probe-"

// DefaultWorkspace is where the image expects the user's data.
const DefaultWorkspace = "/workspace"

// Workspace checks that the workspace exists, is a readable directory and
// holds data: not nothing, and not only empty folders (what a mount of a
// mistyped host path leaves, see scanWorkspace for the rule).
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
		scan, err := scanWorkspace(e, dir)
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
		case !scan.content && scan.n == 0:
			return emptyWorkspace(e, dir, shown, data)
		}
		if point, vol, ok := emptyNamedVolume(e, dir); ok {
			data["named_volume"] = vol
			return Result{Status: Warn, Data: data,
				Message: fmt.Sprintf("%s is an empty Docker named volume %q, not a host folder: -v %s:%s names a volume; a host folder needs an absolute path", point, vol, vol, point),
				Hint:    "use an absolute host path: " + e.Runtime().MountHint(`$(pwd)/`+vol, point)}
		}
		if !scan.content {
			return onlyEmptyFolders(e, dir, shown, scan.folders[:scan.n], data)
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

// onlyEmptyFolders is the workspace check's warning for a workspace whose
// entries, names, are all empty folders. Where one is a mount point (what
// `-v /mistyped/path:/workspace/data` makes: Docker creates the missing
// host folder, empty, and mounts it), it says what is mounted there.
func onlyEmptyFolders(e *Env, dir, shown string, names []string, data map[string]any) Result {
	// A copy (another variable, for escape analysis): the scan's array
	// stays on the caller's stack.
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	data["empty_folders"] = sorted
	listed := make([]string, len(sorted))
	for i, name := range sorted {
		// A name that would read as two, or whose edges would not show,
		// is quoted.
		listed[i] = name
		if strings.Contains(name, ", ") || strings.TrimSpace(name) != name || strings.ContainsAny(name, "()\"") {
			listed[i] = strconv.Quote(name)
		}
	}
	msg := shown + " holds only empty folders (" + strings.Join(listed, ", ") + "): "
	base := resolvedDir(e, dir)
	rt := e.Runtime()
	var points, why []string
	first := ""
	for _, name := range sorted {
		p := path.Join(dir, name)
		w, ok := emptyMountAt(e, rt, path.Join(base, name), p)
		if !ok {
			continue
		}
		why = append(why, w)
		if first == "" {
			first = name
		}
		points = append(points, p)
	}
	if len(points) == 0 {
		return Result{Status: Warn, Message: msg + "no data is mounted there", Hint: workspaceFix(e, dir), Data: data}
	}
	data["empty_mounts"] = points
	return Result{Status: Warn, Data: data, Message: msg + strings.Join(why, "; "),
		Hint: emptyMountFix(rt, `$(pwd)/`+first, path.Join(dir, first))}
}

// resolvedDir is where dir leads past symbolic links, as the mount table
// names it; dir itself where that is not known.
func resolvedDir(e *Env, dir string) string {
	if loc := e.Resolve(dir); loc.Resolved != "" {
		return loc.Resolved
	}
	return dir
}

// emptyMountAt says what the empty mount at p (resolved: where p leads)
// is, for the workspace check's warnings; ok is false where no mount point
// of its own is there, or it is the container's own filesystem.
func emptyMountAt(e *Env, rt Runtime, resolved, p string) (why string, ok bool) {
	m, ok := MountFor(e.Mounts(), resolved)
	if !ok || m.Point != resolved {
		return "", false
	}
	switch kind, _ := MountKind(m); {
	case kind == "container-layer":
		return "", false
	case kind == "tmpfs":
		return p + " is an empty " + m.FSType + " (it starts empty in each container)", true
	case kind == "anonymous-volume":
		return p + " is an empty anonymous volume (-v " + p + " with no host path makes one)", true
	case rt.Name == "kubernetes":
		return "the volume mounted at " + p + " is empty", true
	case rt.Name == "docker" || rt.Name == "unknown":
		return "the host folder mounted at " + p + " is empty or did not exist (Docker creates a missing host folder, empty)", true
	}
	return "the host folder mounted at " + p + " is empty", true
}

// emptyMountFix is the fix for an empty mount: the host path may be
// mistyped; mount the folder with the data (host) at container.
func emptyMountFix(rt Runtime, host, container string) string {
	if rt.Name == "kubernetes" {
		return "put your data in that volume, or " + rt.MountHint(host, container)
	}
	return "check the host path for a typo, and mount the folder that holds your data with an absolute host path: " + rt.MountHint(host, container)
}

// emptyWorkspace is the warning for a workspace with no entries: where it
// is itself a mount point (-v /mistyped/path:/workspace), what is mounted
// there.
func emptyWorkspace(e *Env, dir, shown string, data map[string]any) Result {
	rt := e.Runtime()
	if why, ok := emptyMountAt(e, rt, resolvedDir(e, dir), dir); ok {
		data["empty_mounts"] = []string{dir}
		return Result{Status: Warn, Data: data, Message: shown + " is empty: " + why,
			Hint: emptyMountFix(rt, `$(pwd)/data`, dir+"/data")}
	}
	return Result{Status: Warn, Message: shown + " is empty: no data is mounted there", Hint: workspaceFix(e, dir), Data: data}
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

// getdents reads directory entries for readNames; tests count its calls.
var getdents = unix.Getdents

// countGetdents, when set, is called before each getdents of the
// workspace check (readDirents); tests count the reads with it. It is not
// handed the buffer, which would then escape to the heap.
var countGetdents func()

// maxWorkspaceEntries bounds the workspace entries scanWorkspace looks at:
// a workspace with more counts as holding data.
const maxWorkspaceEntries = 16

// workspaceScan is what scanWorkspace learned of the workspace.
type workspaceScan struct {
	// content is true when the workspace holds data (or may: see
	// scanWorkspace).
	content bool
	// folders[:n] are, when content is false, the workspace's entries:
	// empty folders. With n 0 the workspace is empty.
	n       int
	folders [maxWorkspaceEntries]string
}

// scanWorkspace reads the workspace dir, and its folders one level down.
// The rule: the workspace has no data when each of its entries (files
// named WriteProbePrefix... left aside) is a directory that holds nothing
// but such files itself. Anything else counts as data: a file, a symbolic
// link or another kind of entry at the top; a folder that holds anything,
// an empty folder included (only one level is read); a folder that cannot
// be opened; a folder that is a mount point on a filesystem that may hang
// (it is not opened); more than maxWorkspaceEntries entries; an entry
// getdents wrote malformed.
//
// It stops at the first entry that holds data: the usual workspace (data/
// holding files) costs one getdents of the workspace, then an openat, an
// fstat and a getdents of data/. It uses raw system calls (see isEmptyDir)
// and parses the entries in the buffer, opening a folder by the
// NUL-terminated name getdents wrote, so that nothing is allocated until
// an empty folder is found.
func scanWorkspace(e *Env, dir string) (s workspaceScan, err error) {
	fd, err := unix.Open(e.Path(dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return s, err
	}
	defer unix.Close(fd)
	if huge(fd) {
		s.content = true
		return s, nil
	}
	var buf [1024]byte
	// The workspace's entries are read into list, each folder's into sub.
	list, sub := buf[:512], buf[512:]
	seen := 0
	base := "" // where dir resolves to, once a mount that may hang needs it
	for {
		n, err := readDirents(fd, list)
		if err != nil || n == 0 {
			return s, err
		}
		for b := list[:n]; len(b) > 0; {
			name, typ, rest, ok := nextDirent(b)
			if !ok {
				s.content = true
				return s, nil
			}
			b = rest
			if isDotEntry(name) {
				continue
			}
			if seen++; seen > maxWorkspaceEntries {
				s.content = true
				return s, nil
			}
			if bytes.HasPrefix(name, []byte(WriteProbePrefix)) {
				// The mounts check's write probe may be there for a moment.
				continue
			}
			if typ != unix.DT_DIR && typ != unix.DT_UNKNOWN {
				s.content = true
				return s, nil
			}
			if e.UnsafeMounts() {
				if base == "" {
					base = e.Locate(dir).Resolved
				}
				if mayHang(e, path.Join(base, string(name))) {
					s.content = true
					return s, nil
				}
			}
			if !emptyFolderAt(fd, name, sub) {
				s.content = true
				return s, nil
			}
			s.folders[s.n] = string(name)
			s.n++
		}
	}
}

// mayHang reports whether p is a mount point on a filesystem that may stop
// answering, or may be one: the mount table was cut.
func mayHang(e *Env, p string) bool {
	if e.mountTableCut() {
		return true
	}
	m, ok := MountFor(e.Mounts(), p)
	return ok && m.Point == p && Unsafe(m.FSType)
}

// emptyFolderAt reports whether name, an entry of the open directory
// dirfd, is a directory that holds nothing but write probe files; buf is
// the space to read its entries into. name must be followed by a NUL byte,
// as nextDirent leaves it. A symbolic link is not followed (not a folder).
func emptyFolderAt(dirfd int, name, buf []byte) bool {
	var fd uintptr
	for {
		r, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&name[0])),
			uintptr(unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return false
		}
		fd = r
		break
	}
	defer unix.Close(int(fd))
	empty, err := dirIsEmpty(int(fd), buf)
	return empty && err == nil
}

// isEmptyDir reports whether a directory has no entries but . and .. (and
// write probe files), reading one small buffer of entries at most. It uses
// raw system calls: os.Open would start the runtime's network poller,
// measured to cost start time.
//
// The directory is always opened, so that a read that Landlock or AppArmor
// would refuse (access(2) does not ask them) is reported.
func isEmptyDir(path string) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var buf [1024]byte
	return dirIsEmpty(fd, buf[:])
}

// dirIsEmpty reports whether the open directory fd has no entries but .
// and .. and write probe files, reading buf's worth at a time. A directory
// with subdirectories is known not to be empty without being read: ext4,
// xfs, tmpfs, squashfs and most others count a directory's links as 2 plus
// its subdirectories (btrfs and overlayfs's merged directories say 1, and
// are read). It stops at the first other entry.
func dirIsEmpty(fd int, buf []byte) (bool, error) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && (st.Nlink > 2 || st.Size > maxReadDirSize) {
		return false, nil
	}
	for {
		n, err := readDirents(fd, buf)
		if err != nil {
			return false, err
		}
		if n == 0 {
			return true, nil
		}
		for b := buf[:n]; len(b) > 0; {
			name, _, rest, ok := nextDirent(b)
			if !ok {
				return false, nil
			}
			b = rest
			if !isDotEntry(name) && !bytes.HasPrefix(name, []byte(WriteProbePrefix)) {
				return false, nil
			}
		}
	}
}

// maxReadDirSize is the largest directory (its st_size) the workspace
// check reads: a larger one has held thousands of entries, and is taken to
// hold data unread. On ext4 a directory never shrinks, and one emptied of a
// million files stays tens of MB that getdents walks whole to find nothing
// (measured: half a second cold); where the size counts live entries
// (btrfs, tmpfs) a larger one holds them.
const maxReadDirSize = 256 << 10

// huge reports whether the open directory fd is larger than maxReadDirSize.
func huge(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Size > maxReadDirSize
}

// readDirents is getdents(2) into buf, retried on EINTR; 0 at the end.
func readDirents(fd int, buf []byte) (int, error) {
	for {
		if countGetdents != nil {
			countGetdents()
		}
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n < 0 {
			return 0, err
		}
		return n, nil
	}
}

// direntName is where a linux_dirent64's name starts: after d_ino (8
// bytes), d_off (8), d_reclen (2) and d_type (1).
const direntName = 19

// nextDirent takes the first linux_dirent64 off b: its name (the NUL byte
// that ends it left in b, just past the slice), its d_type and what
// follows it. ok is false when b does not hold a whole, well-formed entry.
func nextDirent(b []byte) (name []byte, typ byte, rest []byte, ok bool) {
	if len(b) <= direntName {
		return nil, 0, nil, false
	}
	reclen := int(binary.NativeEndian.Uint16(b[16:18]))
	if reclen <= direntName || reclen > len(b) {
		return nil, 0, nil, false
	}
	end := bytes.IndexByte(b[direntName:reclen], 0)
	if end <= 0 {
		return nil, 0, nil, false
	}
	return b[direntName : direntName+end], b[18], b[reclen:], true
}

// isDotEntry reports whether name is . or ..
func isDotEntry(name []byte) bool {
	return len(name) == 1 && name[0] == '.' || len(name) == 2 && name[0] == '.' && name[1] == '.'
}
