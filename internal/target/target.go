// Package target finds and starts the program the entrypoint hands over to,
// the way bash's exec builtin does, and maps failures to bash's exit codes.
package target

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/nvidia-nemo/nss-entrypoint/internal/textpath"
	"golang.org/x/sys/unix"
)

// Exit codes, as bash uses them for exec.
const (
	// NotFound: no such program.
	NotFound = 127
	// NotExecutable: found, but it could not be executed.
	NotExecutable = 126
)

// DefaultPath is searched when PATH is unset (bash's default without ".").
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Error says why the target could not be started; Code is the exit status.
type Error struct {
	Name   string
	Code   int
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("cannot run %s: %s", e.Name, e.Reason)
}

// Search says where Lookup looks.
type Search struct {
	// Path is PATH's value; PathSet says whether PATH is set at all
	// (unset: DefaultPath).
	Path    string
	PathSet bool
	// Tilde expands the prefix of a PATH entry that starts with "~" ("~",
	// "~user", "~+", "~-") as bash does, and says whether it did; nil
	// expands nothing (bash in POSIX mode).
	Tilde func(prefix string) (string, bool)
	// PWD is $PWD: bash takes it as the working directory when it names
	// the same directory as ".".
	PWD string
	// CwdMayHang says whether the working directory is on a filesystem
	// that may not answer; Lookup then does not look there for a
	// directory named like a target found nowhere. nil: it may look.
	CwdMayHang func() bool
}

// Lookup resolves name to a path. A name with a slash is used as it is;
// otherwise each PATH entry is tried in order, as bash's exec does: an
// entry starting with "~" is expanded (Search.Tilde); the entry and the
// name are joined as text, without cleaning, so that the kernel resolves
// ".." through symbolic links; an empty entry is the working directory,
// and a match on a relative entry is handed over as an absolute path
// under the working directory (a leading "./" dropped), as bash's $0
// shows; the first executable regular file wins. When none is found, the
// first existing match decides: a file that is not executable fails with
// "permission denied" (126), a directory counts as nothing found (127). A
// name found nowhere that is a directory in the working directory cannot
// be executed (126), as bash 5.2 reports it.
func Lookup(name string, s Search) (string, error) {
	if name == "" {
		return "", &Error{Name: `""`, Code: NotFound, Reason: "the target name is empty"}
	}
	if strings.Contains(name, "/") {
		return name, checkFile(name, name)
	}
	pathList := s.Path
	if !s.PathSet {
		pathList = DefaultPath
	}
	firstMatch, firstIsDir := "", false
	cwd, cwdKnown := "", false
	workDir := func() string {
		if !cwdKnown {
			cwd, cwdKnown = workingDirectory(s.PWD), true
		}
		return cwd
	}
	// strings.Split, not filepath.SplitList: an empty PATH is one empty
	// entry, the current directory, as bash and execvp read it.
	for _, dir := range strings.Split(pathList, ":") {
		if s.Tilde != nil && strings.HasPrefix(dir, "~") {
			prefix, rest, slash := strings.Cut(dir, "/")
			if home, ok := s.Tilde(prefix); ok {
				dir = home
				if slash {
					dir = home + "/" + rest
				}
			}
		}
		p := textpath.Join(dir, name)
		if !strings.HasPrefix(p, "/") {
			if wd := workDir(); wd != "" {
				p = textpath.Join(wd, strings.TrimPrefix(p, "./"))
			} else if dir == "" {
				p = "./" + name
			}
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() && unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
		if firstMatch == "" {
			firstMatch, firstIsDir = p, fi.IsDir()
		}
	}
	if firstMatch != "" && !firstIsDir {
		return firstMatch, &Error{Name: name, Code: NotExecutable,
			Reason: fmt.Sprintf("%s is not executable (permission denied)", firstMatch)}
	}
	shown := pathList
	if !s.PathSet {
		shown += " (PATH is unset; the default was used)"
	}
	if s.CwdMayHang == nil || !s.CwdMayHang() {
		if fi, err := os.Stat(name); err == nil && fi.IsDir() {
			return "", &Error{Name: name, Code: NotExecutable,
				Reason: "not found in PATH=" + shown + ", and " + name + " in the working directory is a directory"}
		}
	}
	return "", &Error{Name: name, Code: NotFound, Reason: "not found in PATH=" + shown}
}

// workingDirectory is the working directory as bash names it: $PWD when
// it is absolute and the same directory as ".", else getcwd(2); "" when
// neither is known.
func workingDirectory(pwd string) string {
	if strings.HasPrefix(pwd, "/") {
		var a, b unix.Stat_t
		if unix.Stat(pwd, &a) == nil && unix.Stat(".", &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino {
			return pwd
		}
	}
	if wd, err := unix.Getwd(); err == nil {
		return wd
	}
	return ""
}

// checkFile reports why a path cannot be executed, or nil when it can.
func checkFile(name, p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &Error{Name: name, Code: NotFound, Reason: "no such file"}
	case err != nil:
		return &Error{Name: name, Code: NotExecutable, Reason: err.Error()}
	case fi.IsDir():
		return &Error{Name: name, Code: NotExecutable, Reason: "it is a directory"}
	case unix.Access(p, unix.X_OK) != nil:
		return &Error{Name: name, Code: NotExecutable, Reason: "it is not executable (permission denied)"}
	}
	return nil
}

// Execve replaces the process: syscall.Exec's signature, so that the
// caller can restore process state first.
type Execve func(path string, argv, environ []string) error

// Shell runs a target that has no #! line and is not a binary, as execvp
// and bash do.
const Shell = "/bin/sh"

// Exec replaces the process with path, run as argv0 with args and environ,
// through execve. A file the kernel does not take (ENOEXEC) that is not a
// binary (no NUL byte in its first line, bash's test) runs as a shell
// script: "/bin/sh path args...", as execvp does. Exec returns only on
// failure, with an *Error carrying bash's exit code.
func Exec(path, argv0 string, args, environ []string, execve Execve) error {
	if execve == nil {
		execve = syscall.Exec
	}
	argv := append([]string{argv0}, args...)
	err := execve(path, argv, environ)
	if errors.Is(err, syscall.ENOEXEC) && !binaryFile(path) {
		err = execve(Shell, append([]string{Shell, path}, args...), environ)
		if err != nil {
			e := execError(argv0, path, err)
			e.Reason = fmt.Sprintf("%s has no #! line and %s could not run it: %v", path, Shell, err)
			return e
		}
	}
	return execError(argv0, path, err)
}

// binaryFile is bash's check_binary_file: a NUL byte before the first
// newline in the first 80 bytes.
func binaryFile(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	var buf [80]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return true
	}
	for _, c := range buf[:n] {
		switch c {
		case '\n':
			return false
		case 0:
			return true
		}
	}
	return false
}

// execError maps an execve errno to bash's exit code.
func execError(name, path string, err error) *Error {
	e := &Error{Name: name, Code: NotExecutable}
	switch {
	case errors.Is(err, syscall.ENOEXEC):
		e.Reason = fmt.Sprintf("%s is not an executable format (exec format error)", path)
	case errors.Is(err, syscall.EACCES):
		e.Reason = fmt.Sprintf("%s: permission denied", path)
	case errors.Is(err, syscall.ENOENT):
		// 127 either way, as bash 5.2's exec ("required file not found").
		e.Code = NotFound
		if _, serr := os.Stat(path); serr == nil {
			e.Reason = fmt.Sprintf("%s exists but its interpreter or dynamic loader is missing", path)
		} else {
			e.Reason = fmt.Sprintf("%s: no such file", path)
		}
	default:
		e.Reason = fmt.Sprintf("%s: %v", path, err)
	}
	return e
}
