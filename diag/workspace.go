package diag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// DefaultWorkspace is where the image expects the user's data.
const DefaultWorkspace = "/workspace"

// Workspace checks that the workspace exists, is a readable directory and is
// not empty. It reads at most one directory entry.
var Workspace = Check{
	ID: "workspace", Title: "workspace", Startup: true,
	Run: func(ctx context.Context, e *Env) Result {
		dir := e.Get("NSS_WORKSPACE")
		if dir == "" {
			dir = DefaultWorkspace
		}
		data := map[string]any{"path": dir}
		fix := "mount your data with an absolute host path: " + e.Runtime().MountHint(`$(pwd)/data`, dir+"/data")
		fi, err := os.Stat(e.Path(dir))
		switch {
		case errors.Is(err, os.ErrNotExist):
			return Result{Status: Warn, Message: fmt.Sprintf("%s does not exist", dir), Hint: fix, Data: data}
		case err != nil:
			return Result{Status: Warn, Message: fmt.Sprintf("%s cannot be inspected: %v", dir, unwrapPath(err)), Hint: fix, Data: data}
		case !fi.IsDir():
			return Result{Status: Warn, Message: fmt.Sprintf("%s is not a directory", dir), Hint: fix, Data: data}
		}
		if err := e.access(e.Path(dir), unix.R_OK|unix.X_OK); err != nil {
			data["uid"] = e.UID
			return Result{Status: Warn,
				Message: fmt.Sprintf("%s is not readable by uid %d: %v", dir, e.UID, err),
				Hint:    "run the container as the owner of the mounted folder: " + e.Runtime().UserHint(), Data: data}
		}
		f, err := os.Open(e.Path(dir))
		if err != nil {
			return Result{Status: Warn, Message: fmt.Sprintf("%s is not readable: %v", dir, unwrapPath(err)),
				Hint: "run the container as the owner of the mounted folder: " + e.Runtime().UserHint(), Data: data}
		}
		defer f.Close()
		names, err := f.Readdirnames(1)
		if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
			return Result{Status: Warn, Message: fmt.Sprintf("%s is empty: no data is mounted there", dir), Hint: fix, Data: data}
		}
		if err != nil {
			return Result{Status: Warn, Message: fmt.Sprintf("%s cannot be listed: %v", dir, unwrapPath(err)), Hint: fix, Data: data}
		}
		return Result{Status: OK, Message: fmt.Sprintf("%s has content", dir), Data: data}
	},
}

// unwrapPath drops the "stat /root/path:" prefix of a *PathError so messages
// show the container path only once.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
