package check

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// DelegateArgv0 is argv[0] of the process that runs delegated checks:
// nss-entrypoint started again (/proc/self/exe) under this name runs the
// checks named by its arguments and writes their results on stdout.
const DelegateArgv0 = "nss-entrypoint-delegate"

// DelegateEnv is the variable the entrypoint adds to the delegate's
// environment: the deadline, in Unix milliseconds, past which the delegate
// exits by itself (the entrypoint may have been killed without a chance to
// end it). Delegate mode needs it as well as DelegateArgv0, so that
// argv[0] alone (exec -a) never switches modes.
const DelegateEnv = "NSS_ENTRYPOINT_DELEGATE_DEADLINE"

// DelegateDeadline returns the delegate's deadline from environ, and
// whether DelegateEnv holds one.
func DelegateDeadline(environ []string) (time.Time, bool) {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, DelegateEnv+"="); ok {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms <= 0 {
				return time.Time{}, false
			}
			return time.UnixMilli(ms), true
		}
	}
	return time.Time{}, false
}

// DelegateOutcome is what the process that ran delegated checks reported.
type DelegateOutcome struct {
	// Results holds the checks that finished, by ID.
	Results map[string]Result
	// Started lists the checks that started, in order.
	Started []string
	// Err says why the process could not be run; "" when it ran.
	Err string
}

// RunDelegated is the body of the delegate process: it runs the checks
// named by ids, one after another, and for each writes "start ID" then its
// result as one line of JSON, so that the entrypoint knows which check a
// hung filesystem stopped and which never ran.
func RunDelegated(ctx context.Context, e *Env, ids []string, write func([]byte)) {
	e.NoDelegate = true
	for _, id := range ids {
		for _, c := range Startup() {
			if c.ID != id {
				continue
			}
			write([]byte("start " + id + "\n"))
			r := runOne(ctx, e, c)
			b, err := json.Marshal(r)
			if err != nil {
				b, _ = json.Marshal(Result{ID: c.ID, Title: c.Title, Status: Warn, Message: "the result could not be encoded: " + err.Error()})
			}
			write(append(b, '\n'))
		}
	}
}

// ParseDelegate reads what RunDelegated wrote.
func ParseDelegate(out []byte) DelegateOutcome {
	o := DelegateOutcome{Results: map[string]Result{}}
	for _, line := range bytes.Split(out, []byte("\n")) {
		if id, ok := strings.CutPrefix(string(line), "start "); ok {
			o.Started = append(o.Started, id)
			continue
		}
		var r Result
		if len(line) > 0 && json.Unmarshal(line, &r) == nil && r.ID != "" {
			o.Results[r.ID] = r
		}
	}
	return o
}

// UnmarshalText reads a Status written by MarshalText.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	*s = Warn
	return nil
}

// delegatedResult turns the delegate's outcome into the result of one
// delegated check: its own result when it finished; otherwise a warning that
// names the path that did not answer and its filesystem, or, for a check
// that never started, a not-run result.
func delegatedResult(c Check, loc Location, o DelegateOutcome, timeout time.Duration) Result {
	if r, ok := o.Results[c.ID]; ok {
		r.ID, r.Title = c.ID, c.Title
		return r
	}
	where := loc.Mount.FSType + " at " + loc.Mount.Point
	if loc.Mount.Source != "" && loc.Mount.Source != "none" {
		where += " (" + loc.Mount.Source + ")"
	}
	data := map[string]any{"path": loc.Path, "fs_type": loc.Mount.FSType, "mount_point": loc.Mount.Point}
	if o.Err != "" {
		return Result{ID: c.ID, Title: c.Title, Status: Warn, Data: data,
			Message: c.Title + ": " + loc.Path + " was not checked: it is on " + where +
				", which the entrypoint reads only from a separate process, and that process could not be started (" + o.Err + ")",
			Hint: "nothing to do if the path is fine; the entrypoint never touches such a filesystem itself, so that a hung mount cannot stop the start"}
	}
	started := false
	for _, id := range o.Started {
		started = started || id == c.ID
	}
	if !started {
		return notRun(c)
	}
	data["timed_out"] = true
	return Result{ID: c.ID, Title: c.Title, Status: Warn, Data: data,
		Message: c.Title + ": " + loc.Path + " did not answer within " + timeout.Round(time.Millisecond).String() + ": it is on " + where + ", which is not responding",
		Hint:    "check the filesystem's daemon or server (a FUSE mount whose process died or whose backend is unreachable, a hard NFS mount of a lost server); safe-synthesizer was started anyway and will wait on that path too"}
}

// notRun is the result of a check that never started before the deadline.
func notRun(c Check) Result {
	return Result{ID: c.ID, Title: c.Title, Status: Skip, Message: c.Title + " was not run: the deadline came first",
		Data: map[string]any{"not_run": true}}
}

// collapseNotRun reports the checks that never ran once, in the first of
// them: one warning that lists them all; the others stay skipped.
func collapseNotRun(results []Result) []Result {
	var names []string
	first := -1
	for i, r := range results {
		if nr, _ := r.Data["not_run"].(bool); nr && r.Status == Skip {
			names = append(names, r.Title)
			if first < 0 {
				first = i
			}
		}
	}
	if first >= 0 {
		results[first].Status = Warn
		results[first].Message = "not checked, the deadline came first: " + strings.Join(names, ", ")
		results[first].Hint = "raise NSS_ENTRYPOINT_TIMEOUT (a Go duration such as 10s) if this host is only slow"
		for _, r := range results {
			if strings.Contains(r.Hint, "NSS_ENTRYPOINT_TIMEOUT") && r.ID != results[first].ID {
				// Said once already, by the check that did not finish.
				results[first].Hint = "nothing to do for these: they waited behind the check above"
			}
		}
	}
	return results
}
