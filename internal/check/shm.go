package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// fileKind names a file's type for messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a directory"
}

// MinShm is the /dev/shm size below which PyTorch DataLoader workers die
// with "Bus error".
const MinShm = 256 << 20

// Shm checks the size of /dev/shm.
var Shm = Check{
	ID: "shm", Title: "/dev/shm",
	Paths: func(e *Env) []string { return []string{"/dev/shm"} },
	Run: func(ctx context.Context, e *Env) Result {
		if fi, err := os.Stat(e.Path("/dev/shm")); err == nil && !fi.IsDir() {
			return Result{Status: Warn, Message: "/dev/shm is " + fileKind(fi.Mode()) + ", not a directory: PyTorch DataLoader workers cannot create shared memory there",
				Hint: e.Runtime().ShmHint()}
		}
		fs, err := e.StatfsPath(e.Path("/dev/shm"))
		if err != nil {
			msg := fmt.Sprintf("/dev/shm cannot be inspected: %v", err)
			if errors.Is(err, os.ErrNotExist) {
				msg = "/dev/shm does not exist"
			}
			return Result{Status: Warn, Message: msg + "; PyTorch DataLoader workers need shared memory",
				Hint: e.Runtime().ShmHint()}
		}
		data := map[string]any{"size_bytes": fs.Total, "free_bytes": fs.Free, "fs_type": fsTypeHex(fs.Type)}
		switch {
		case fs.Flags&unix.ST_RDONLY != 0:
			return Result{Status: Warn, Data: data,
				Message: "/dev/shm is read-only: PyTorch DataLoader workers cannot create shared memory there",
				Hint:    e.Runtime().ShmHint()}
		case fs.Type != unix.TMPFS_MAGIC && fs.Type != unix.RAMFS_MAGIC:
			return Result{Status: Warn, Data: data,
				Message: "/dev/shm is not a tmpfs (filesystem type " + fsTypeHex(fs.Type) + "): shared memory would be written to disk",
				Hint:    e.Runtime().ShmHint()}
		}
		if fs.Total < MinShm {
			return Result{Status: Warn, Data: data,
				Message: fmt.Sprintf("/dev/shm is %s; PyTorch DataLoader workers crash with \"Bus error\" below %s", FormatBytes(fs.Total), FormatBytes(MinShm)),
				Hint:    e.Runtime().ShmHint()}
		}
		return Result{Status: OK, Data: data, Message: "/dev/shm is " + FormatBytes(fs.Total) + " (" + FormatBytes(fs.Free) + " free)"}
	},
}

// fsTypeHex writes a statfs magic number as fmt's %#x would ("0x1021994"),
// without fmt: the shm check runs on every start, and fmt's first use costs
// more than the check's system calls.
func fsTypeHex(t int64) string {
	if t < 0 {
		return "-0x" + strconv.FormatUint(uint64(-t), 16)
	}
	return "0x" + strconv.FormatInt(t, 16)
}
