// Package target finds and starts the program the entrypoint hands over to,
// the way bash's exec builtin does, and maps failures to bash's exit codes.
package target

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

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

// Lookup resolves name to a path. A name with a slash is used as it is;
// otherwise each PATH entry is tried in order (an empty entry is the current
// directory), directories and non-executable files are skipped, and when only
// non-executable files match, the first of them is returned so that the exec
// fails with "permission denied" as in bash.
func Lookup(name, pathList string, pathSet bool) (string, error) {
	if name == "" {
		return "", &Error{Name: `""`, Code: NotFound, Reason: "the target name is empty"}
	}
	if strings.Contains(name, "/") {
		return name, checkFile(name, name)
	}
	if !pathSet {
		pathList = DefaultPath
	}
	firstNonExec := ""
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if dir == "." {
			p = "./" + name
		}
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		if unix.Access(p, unix.X_OK) == nil && fi.Mode().IsRegular() {
			return p, nil
		}
		if firstNonExec == "" {
			firstNonExec = p
		}
	}
	if firstNonExec != "" {
		return firstNonExec, &Error{Name: name, Code: NotExecutable,
			Reason: fmt.Sprintf("%s is not executable (permission denied)", firstNonExec)}
	}
	shown := pathList
	if !pathSet {
		shown += " (PATH is unset; the default was used)"
	}
	return "", &Error{Name: name, Code: NotFound, Reason: "not found in PATH=" + shown}
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

// Exec replaces the process with path, run as argv0 with args and environ.
// It returns only on failure, with an *Error carrying bash's exit code.
func Exec(path, argv0 string, args, environ []string) error {
	argv := append([]string{argv0}, args...)
	err := syscall.Exec(path, argv, environ)
	return execError(argv0, path, err)
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
		if _, serr := os.Stat(path); serr == nil {
			e.Reason = fmt.Sprintf("%s exists but its interpreter or dynamic loader is missing", path)
		} else {
			e.Code, e.Reason = NotFound, fmt.Sprintf("%s: no such file", path)
		}
	default:
		e.Reason = fmt.Sprintf("%s: %v", path, err)
	}
	return e
}
