package checks

import "time"

// defaultCheckTimeout bounds an ordinary diagnose check.
const defaultCheckTimeout = 2 * time.Second

// timeout pairs a deadline with what the check waits on.
type timeout struct {
	d     time.Duration
	doing string
}
