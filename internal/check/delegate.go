package check

import (
	"bytes"
	"context"
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
// whether DelegateEnv holds one. The last definition counts: it is the one
// the entrypoint appended (WithDelegateDeadline also drops any other).
func DelegateDeadline(environ []string) (time.Time, bool) {
	for i := len(environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(environ[i], DelegateEnv+"="); ok {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms <= 0 {
				return time.Time{}, false
			}
			return time.UnixMilli(ms), true
		}
	}
	return time.Time{}, false
}

// WithDelegateDeadline returns the delegate's environment: environ without
// any DelegateEnv a user may have set (an empty or stale one would keep the
// delegate from knowing itself, or end it at once), and with the deadline
// appended.
func WithDelegateDeadline(environ []string, deadline time.Time) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, DelegateEnv+"=") {
			env = append(env, kv)
		}
	}
	return append(env, DelegateEnv+"="+strconv.FormatInt(deadline.UnixMilli(), 10))
}

// DelegateOutcome is what the process that ran delegated checks reported.
type DelegateOutcome struct {
	// Results holds the checks that finished, by ID.
	Results map[string]Result
	// Started lists the checks that started, in order.
	Started []string
	// Err says why the process could not be run; "" when it ran.
	Err string
	// Ended says how the process ended before the deadline (killed by a
	// signal, an exit status); "" when it was still running then. A check
	// missing from Results of a process that ended was cut short, not slow.
	Ended string
}

// RunDelegated is the body of the delegate process: it runs the checks
// named by ids, one after another, and for each writes "start ID" then its
// result as one line (formatResult), so that the entrypoint knows which
// check a hung filesystem stopped and which never ran.
func RunDelegated(ctx context.Context, e *Env, ids []string, write func([]byte)) {
	e.NoDelegate = true
	for _, id := range ids {
		for _, c := range Startup() {
			if c.ID != id {
				continue
			}
			write([]byte("start " + id + "\n"))
			write(formatResult(runOne(ctx, e, c)))
		}
	}
}

// ParseDelegate reads what RunDelegated wrote. A line that is not whole,
// such as the last one of a delegate killed while writing, is skipped.
func ParseDelegate(out []byte) DelegateOutcome {
	o := DelegateOutcome{Results: map[string]Result{}}
	for _, line := range bytes.Split(out, []byte("\n")) {
		if id, ok := strings.CutPrefix(string(line), "start "); ok {
			o.Started = append(o.Started, id)
			continue
		}
		if r, ok := parseResult(string(line)); ok && r.ID != "" {
			o.Results[r.ID] = r
		}
	}
	return o
}

// A delegated result travels as one line:
//
//	result "ID" "Title" STATUS "Message" "Hint"
//
// with each string quoted by strconv.Quote, so that any byte of it
// (newlines, quotes, NULs, invalid UTF-8) comes back as it was, and STATUS
// a Status's name. Data and Duration are not carried: on the start path
// nothing reads them from a delegated result (delegatedResult keeps the
// message and hint; the hints show nothing else), and the report, which
// shows Data, never delegates (it runs its checks with Run).
const resultPrefix = "result "

// formatResult writes r as a line of the delegate's output.
func formatResult(r Result) []byte {
	b := make([]byte, 0, len(resultPrefix)+len(r.ID)+len(r.Title)+len(r.Message)+len(r.Hint)+24)
	b = append(b, resultPrefix...)
	b = strconv.AppendQuote(b, r.ID)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, r.Title)
	b = append(b, ' ')
	b = append(b, r.Status.String()...)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, r.Message)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, r.Hint)
	return append(b, '\n')
}

// parseResult reads a line that formatResult wrote (without its newline);
// false when the line is not one, or not all of one.
func parseResult(line string) (Result, bool) {
	var r Result
	var status string
	rest, ok := strings.CutPrefix(line, resultPrefix)
	if ok {
		r.ID, rest, ok = cutQuoted(rest, true)
	}
	if ok {
		r.Title, rest, ok = cutQuoted(rest, true)
	}
	if ok {
		status, rest, ok = strings.Cut(rest, " ")
	}
	if ok {
		r.Message, rest, ok = cutQuoted(rest, true)
	}
	if ok {
		r.Hint, rest, ok = cutQuoted(rest, false)
	}
	if !ok || rest != "" {
		return Result{}, false
	}
	r.Status.UnmarshalText([]byte(status))
	return r, true
}

// cutQuoted reads the string that strconv.Quote wrote at the start of s,
// and the space after it when space is true; it returns the string and
// what follows.
func cutQuoted(s string, space bool) (value, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", false
	}
	if value, err = strconv.Unquote(q); err != nil {
		return "", "", false
	}
	rest = s[len(q):]
	if space {
		if rest, ok = strings.CutPrefix(rest, " "); !ok {
			return "", "", false
		}
	}
	return value, rest, true
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
	where := loc.Where()
	if loc.Mount.Point != "" && loc.Mount.Source != "" && loc.Mount.Source != "none" {
		where += " (" + loc.Mount.Source + ")"
	}
	data := map[string]any{"path": loc.Path, "fs_type": loc.Mount.FSType, "mount_point": loc.Mount.Point}
	if o.Err != "" {
		return Result{ID: c.ID, Title: c.Title, Status: Warn, Data: data,
			Message: c.Title + ": " + loc.Path + " was not checked: it is on " + where +
				", which the entrypoint reads only from a separate process, and that process could not be started (" + o.Err + ")",
			Hint: "nothing to do if the path is fine; the entrypoint never touches such a filesystem itself, so that a hung mount cannot stop the start"}
	}
	if o.Ended != "" {
		data["delegate_ended"] = o.Ended
		return Result{ID: c.ID, Title: c.Title, Status: Warn, Data: data,
			Message: c.Title + ": " + loc.Path + " was not checked: it is on " + where +
				", which the entrypoint reads only from a separate process, and " + o.Ended + " without reporting it",
			Hint: "nothing to do if the path is fine; if this recurs, report it with the output of nss-entrypoint --diagnose (safe-synthesizer was started anyway)"}
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
