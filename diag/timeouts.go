package diag

import (
	"strconv"
	"time"
)

// defaultCheckTimeout bounds an ordinary diagnose check.
const defaultCheckTimeout = 2 * time.Second

func itoa(n int) string { return strconv.Itoa(n) }

// timeout pairs a deadline with what the check waits on.
type timeout struct {
	d     time.Duration
	doing string
}
