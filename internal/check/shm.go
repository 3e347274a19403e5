package check

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// MinShm is the /dev/shm size below which PyTorch DataLoader workers die
// with "Bus error".
const MinShm = 256 << 20

// Shm checks the size of /dev/shm.
var Shm = Check{
	ID: "shm", Title: "/dev/shm",
	Run: func(ctx context.Context, e *Env) Result {
		fs, err := e.StatfsPath(e.Path("/dev/shm"))
		if err != nil {
			msg := fmt.Sprintf("/dev/shm cannot be inspected: %v", err)
			if errors.Is(err, os.ErrNotExist) {
				msg = "/dev/shm does not exist"
			}
			return Result{Status: Warn, Message: msg + "; PyTorch DataLoader workers need shared memory",
				Hint: e.Runtime().ShmHint()}
		}
		data := map[string]any{"size_bytes": fs.Total, "free_bytes": fs.Free}
		if fs.Total < MinShm {
			return Result{Status: Warn, Data: data,
				Message: fmt.Sprintf("/dev/shm is %s; PyTorch DataLoader workers crash with \"Bus error\" below %s", FormatBytes(fs.Total), FormatBytes(MinShm)),
				Hint:    e.Runtime().ShmHint()}
		}
		return Result{Status: OK, Data: data, Message: fmt.Sprintf("/dev/shm is %s (%s free)", FormatBytes(fs.Total), FormatBytes(fs.Free))}
	},
}
