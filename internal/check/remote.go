package check

import (
	"bytes"
	"path"
	"strconv"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/textpath"
	"golang.org/x/sys/unix"
)

// Unsafe reports whether a filesystem type may stop answering: FUSE (gcsfuse,
// s3fs, sshfs, CSI drivers), network and cluster filesystems, and autofs
// (whose first access mounts one). A system call on such a path can sleep in
// the kernel for good, uninterruptibly when the daemon has taken the request;
// a thread in that state holds up every execve of its process. The start
// path therefore never touches such a path from its own process (see
// Env.Locate and RunInline).
func Unsafe(fstype string) bool {
	if strings.HasPrefix(fstype, "fuse.") {
		return true
	}
	switch fstype {
	case "fuse", "fuseblk", "virtiofs", "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph",
		"glusterfs", "lustre", "gpfs", "beegfs", "afs", "ncpfs", "davfs", "autofs",
		"orangefs", "pvfs2", "wekafs", "ocfs2", "gfs2":
		return true
	}
	return false
}

// Location is where a container path lies.
type Location struct {
	// Path is the path as given; Resolved is where the walk ended, with the
	// symbolic links on safe filesystems followed.
	Path, Resolved string
	// Mount is the mount that holds Resolved.
	Mount Mount
	// Unsafe is true when Mount's filesystem may stop answering.
	Unsafe bool
}

// maxLinks bounds symbolic links followed in one walk, as the kernel does.
const maxLinks = 40

// Locate finds the mount that holds a container path without touching any
// unsafe filesystem: it walks the path from the root, and at each step asks
// mountinfo which filesystem the next name lies on before it lstat()s it;
// symbolic links are followed only while they lie on safe filesystems, and
// ".." is taken where the walk has got to, as the kernel takes it (the path
// is not cleaned first: "link/.." leads wherever the link's parent is). When
// mountinfo has no unsafe mount but "/", nothing is touched at all. An
// unsafe root filesystem ("/" on FUSE, as some Apptainer images are) counts
// as safe: the target itself is read from there, so a direct start would
// wait on it as well.
func (e *Env) Locate(p string) Location {
	if !e.UnsafeMounts() {
		// Nothing can hang: the mount is not looked up (Resolved is the
		// path as given, Mount left empty).
		return Location{Path: p, Resolved: path.Clean(absolute(p))}
	}
	return e.walk(p)
}

// Resolve is Locate that always walks the path: Resolved is where the
// kernel would end up, every symbolic link followed (up to one on a
// filesystem that may hang, which is not touched), and Mount the mount
// that holds it. For what is shown of a path (its real file, its mount),
// never to decide whether to touch it: that is Locate's.
func (e *Env) Resolve(p string) Location { return e.walk(p) }

// absolute is p, when relative joined as text to the working directory
// (getcwd(2), which asks no filesystem).
func absolute(p string) string {
	if !strings.HasPrefix(p, "/") {
		if wd, err := unix.Getwd(); err == nil {
			return textpath.Join(wd, p)
		}
	}
	return p
}

// walk follows given, made absolute, from the root.
func (e *Env) walk(given string) Location {
	p := absolute(given)
	loc := Location{Path: given, Resolved: p}
	if e.mountTableCut() {
		// Its mount may be one past the cut: not touched (Mount left
		// empty: unknownFilesystem).
		loc.Resolved, loc.Unsafe = path.Clean(p), true
		return loc
	}
	mounts := e.Mounts()
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		m, _ := MountFor(mounts, next)
		if m.Point != "/" && Unsafe(m.FSType) {
			loc.Resolved, loc.Mount, loc.Unsafe = path.Join(append([]string{next}, rest...)...), m, true
			return loc
		}
		var st unix.Stat_t
		if err := unix.Lstat(e.Path(next), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			break
		}
		buf := make([]byte, 4096)
		n, err := unix.Readlink(e.Path(next), buf)
		if err != nil {
			cur = next
			continue
		}
		target := string(buf[:n])
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(strings.Split(strings.TrimPrefix(target, "/"), "/"), rest...)
	}
	loc.Resolved = path.Join(append([]string{cur}, rest...)...)
	loc.Mount, _ = MountFor(mounts, loc.Resolved)
	return loc
}

// UnsafeMounts reports whether any mount but "/" is on an unsafe
// filesystem: when none is, no path needs a separate process. It scans
// the raw table without parsing it (parsing costs about 30 µs, a tenth of
// the checks' time on a container start).
func (e *Env) UnsafeMounts() bool {
	e.unsafeOnce.Do(func() { e.unsafe = unsafeMounts(e.mountinfoBytes()) || e.mountinfoCut })
	return e.unsafe
}

// unsafeMounts scans mountinfo text for a mount but "/" on an unsafe
// filesystem.
func unsafeMounts(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if typ := mountinfoType(line); typ == nil || !Unsafe(string(typ)) {
			continue
		}
		// Field 5 is the mount point.
		if p := mountinfoField(line, 4); p != nil && string(p) != "/" {
			return true
		}
	}
	return false
}

// mountinfoType returns the filesystem type of a mountinfo line, the field
// after the " - " separator; nil when the line has none.
func mountinfoType(line []byte) []byte {
	sep := bytes.Index(line, []byte(" - "))
	if sep < 0 {
		return nil
	}
	typ := line[sep+3:]
	if i := bytes.IndexByte(typ, ' '); i >= 0 {
		typ = typ[:i]
	}
	return typ
}

// FSTypeOfMount returns the type of the filesystem of mount id (field 1
// of the mount table, statx's stx_mnt_id), read from the mount table
// alone, which never asks the filesystem; false when the table cannot be
// read or does not show that mount (one of the kernel's own, as a
// memfd's, or of another mount namespace, as a file opened before the
// container was entered).
func (e *Env) FSTypeOfMount(id uint64) (string, bool) {
	return e.fsTypeWhere(0, strconv.FormatUint(id, 10))
}

// FSTypeOfDevice is FSTypeOfMount by device number major:minor (field 3:
// a FUSE or network mount has one of its own), for kernels without
// stx_mnt_id (before 5.8).
func (e *Env) FSTypeOfDevice(major, minor uint32) (string, bool) {
	return e.fsTypeWhere(2, strconv.FormatUint(uint64(major), 10)+":"+strconv.FormatUint(uint64(minor), 10))
}

// fsTypeWhere returns the filesystem type of the first mount whose field
// i is value.
func (e *Env) fsTypeWhere(i int, value string) (string, bool) {
	for l := range bytes.SplitSeq(e.mountinfoBytes(), []byte("\n")) {
		if string(mountinfoField(l, i)) == value {
			if typ := mountinfoType(l); typ != nil {
				return string(typ), true
			}
		}
	}
	return "", false
}

// mountinfoBytes returns /proc/self/mountinfo under the root, read once.
func (e *Env) mountinfoBytes() []byte {
	e.mountinfoOnce.Do(func() {
		e.mountinfo, _ = ReadSmall(e.Path("/proc/self/mountinfo"), maxMountinfo)
		e.mountinfoCut = len(e.mountinfo) >= maxMountinfo
	})
	return e.mountinfo
}

// mountTableCut reports whether the mount table was longer than
// maxMountinfo: a mount past the cut is not known, so no path can be
// known to lie on a filesystem that answers.
func (e *Env) mountTableCut() bool {
	e.mountinfoBytes()
	return e.mountinfoCut
}

// Where names the filesystem that holds the location, for messages:
// "nfs4 at /mnt/data", or unknownFilesystem when the mount table was cut.
func (loc Location) Where() string {
	if loc.Mount.Point == "" {
		return unknownFilesystem
	}
	return loc.Mount.FSType + " at " + loc.Mount.Point
}

// unknownFilesystem is where a path lies when the mount table was cut.
const unknownFilesystem = "a filesystem the entrypoint cannot name (the mount table is longer than 4 MiB, and the mounts past that were not read)"

// Mounts returns the mount table (/proc/self/mountinfo under the root),
// read and parsed once; nil when it cannot be read.
func (e *Env) Mounts() []Mount {
	e.mountsOnce.Do(func() {
		if b := e.mountinfoBytes(); b != nil {
			e.mounts = ParseMountinfo(b)
		}
	})
	return e.mounts
}

// maxMountinfo bounds the mount table read: a host with thousands of
// mounts (Kubernetes nodes) has a few hundred KiB.
const maxMountinfo = 4 << 20
