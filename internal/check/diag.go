// Package check holds what a check is (Check, Result, Env), the runners,
// and the checks nss-entrypoint runs before it starts safe-synthesizer;
// nss-diagnose runs them too, beside its own (package diagnose/checks). A
// check is a value: it reads the container only through the Env it is given
// and returns a Result. Nothing in this package prints, reads os.Getenv or
// looks at the clock directly. It is on the start path: it links nothing
// that only the report needs.
package check

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Status is the verdict of one check. Higher is worse, except Skip.
type Status int

// The verdicts, from best to worst; Skip means the check did not apply.
const (
	OK Status = iota
	Skip
	Warn
	Fail
)

var statusNames = [...]string{OK: "ok", Skip: "skip", Warn: "warn", Fail: "fail"}

// String returns the status as it appears in JSON: ok, skip, warn or fail.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// MarshalText makes a Status render as its name in JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Result is what a check observed and what to do about it.
type Result struct {
	// ID is the check's stable identifier, such as "shm".
	ID string `json:"id"`
	// Title names what was checked, such as "/dev/shm size".
	Title  string `json:"title"`
	Status Status `json:"status"`
	// Message says what was found, in one sentence.
	Message string `json:"message"`
	// Hint says what to do, with the exact command; empty when nothing is wrong.
	Hint string `json:"hint,omitempty"`
	// Data holds the facts behind the verdict.
	Data map[string]any `json:"data,omitempty"`
	// Duration is how long the check took.
	Duration time.Duration `json:"-"`
}

// Check is one diagnostic. Run must honour ctx and must not print.
type Check struct {
	ID    string
	Title string
	// Timeout bounds this check in diagnose mode; zero means the run's deadline.
	Timeout time.Duration
	// Doing says what the check waits on, for time-out and progress messages.
	Doing string
	// Paths, when set, lists the container paths the check will touch:
	// RunInline runs a check whose path lies on an unsafe filesystem in a
	// separate process (Env.Delegate), and deadline messages name them.
	Paths func(e *Env) []string
	// Stuck, when set, says why the check may still be running at the
	// start path's deadline (timeout), for its message and fix ("" when
	// it cannot tell); otherwise the deadline message names Paths.
	Stuck func(e *Env, timeout time.Duration) (message, hint string)
	Run   func(ctx context.Context, e *Env) Result
}

// Run runs the checks concurrently and returns their results in the order of
// checks. A check still running when ctx ends is reported as a warning that
// names it, and is abandoned; a check that panics is reported as a warning.
func Run(ctx context.Context, e *Env, checks []Check) []Result {
	return RunNotify(ctx, e, checks, 0, nil)
}

// RunNotify is Run that, when slowAfter passes with checks still running,
// calls slow once with what those checks are doing.
func RunNotify(ctx context.Context, e *Env, checks []Check, slowAfter time.Duration, slow func(doing []string)) []Result {
	type indexed struct {
		i int
		r Result
	}
	// Buffered, so that an abandoned check can still deliver and exit.
	ch := make(chan indexed, len(checks))
	for i, c := range checks {
		go func() { ch <- indexed{i, runOne(ctx, e, c)} }()
	}
	results := make([]Result, len(checks))
	done := make([]bool, len(checks))
	var grace, slowC <-chan time.Time
	ctxDone := ctx.Done()
	if slow != nil && slowAfter > 0 {
		t := time.NewTimer(slowAfter)
		defer t.Stop()
		slowC = t.C
	}
	for pending := len(checks); pending > 0; pending-- {
		select {
		case x := <-ch:
			results[x.i], done[x.i] = x.r, true
			continue
		case <-slowC:
			slowC = nil
			var doing []string
			for i, c := range checks {
				if !done[i] {
					doing = append(doing, c.doing())
				}
			}
			slow(doing)
			pending++
			continue
		case <-ctxDone:
		case <-grace:
		}
		if grace != nil {
			break
		}
		// Give the checks a moment to report their own time-out, then
		// stop waiting: a check that ignores ctx must not hold up the report.
		t := time.NewTimer(OverdueGrace)
		defer t.Stop()
		grace = t.C
		pending++
		ctxDone = nil
	}
	for i, c := range checks {
		if !done[i] {
			// Named by its paths and their filesystems, where it has
			// paths: a hung mount, not a slow host, is the usual cause.
			results[i] = abandonedIn(e, c, 0)
		}
	}
	return results
}

// OverdueGrace is how long the runners wait, once ctx has ended, for a
// running check to report its own time-out before they give up on it.
const OverdueGrace = 100 * time.Millisecond

// RunInline runs the checks one after another in the calling goroutine and
// returns their results in order. It is the start path's runner: on a
// container start the checks take microseconds each, and a goroutine per
// check costs more than the checks themselves (measured: the run phase
// takes about 170 µs with a goroutine per check, 80 µs inline, on two
// vCPUs). What must run alongside is started beside it: the GPU probe is
// its own process (Env.StartGPU).
//
// A check whose Paths lie on a filesystem that may stop answering (FUSE,
// NFS and the like: see Unsafe and Env.Locate) is not run here: those checks
// run together in one separate process (Env.Delegate), started first, whose
// results are read with the deadline. A system call stuck there would
// otherwise hold up the exec of this process for good (a thread in
// uninterruptible sleep stops execve), where the separate process is simply
// abandoned.
//
// The deadline still holds when a check hangs in a system call: when ctx's
// deadline has passed and, after a short grace, a check is still running,
// RunInline calls overdue from another goroutine with the results so far
// (the running check reported with the paths it was reading, the rest once
// as not run), and the calling goroutine never returns from RunInline.
// overdue must not return: it hands over to the target or exits. (The
// watchdog is a timer of its own at the deadline, not context.AfterFunc:
// that one costs a map and a channel in ctx, allocations in size classes a
// start has not used, about 3 µs of it.)
func RunInline(ctx context.Context, e *Env, checks []Check, overdue func([]Result)) []Result {
	var mu sync.Mutex
	results := make([]Result, len(checks))
	done, claimed := 0, false
	watchdog := func() {
		mu.Lock()
		if claimed {
			mu.Unlock()
			return
		}
		claimed = true
		snapshot := append([]Result(nil), results...)
		for i := done; i < len(checks); i++ {
			if i == done {
				snapshot[i] = abandonedIn(e, checks[i], budget(ctx))
			} else {
				snapshot[i] = notRun(checks[i])
			}
		}
		mu.Unlock()
		overdue(collapseNotRun(snapshot))
	}
	// A deadline centuries away (NSS_ENTRYPOINT_TIMEOUT near the largest
	// Go duration) would wrap around past the grace: no watchdog then.
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= math.MaxInt64-OverdueGrace {
		t := time.AfterFunc(time.Until(dl)+OverdueGrace, watchdog)
		defer t.Stop()
	}
	delegated, outcome := delegate(ctx, e, checks)
	var dout *DelegateOutcome
	for i, c := range checks {
		var r Result
		if loc, ok := delegated[i]; ok {
			if dout == nil {
				o := <-outcome
				dout = &o
			}
			r = delegatedResult(c, loc, *dout, budget(ctx))
		} else {
			r = runOne(ctx, e, c)
		}
		mu.Lock()
		if claimed {
			// The watchdog has taken over and is handing over to the
			// target; this goroutine has nothing left to do.
			mu.Unlock()
			select {}
		}
		results[i], done = r, i+1
		mu.Unlock()
	}
	mu.Lock()
	if claimed {
		mu.Unlock()
		select {}
	}
	claimed = true
	mu.Unlock()
	return collapseNotRun(results)
}

// delegate finds the checks whose paths lie on unsafe filesystems and
// starts them in one separate process; the outcome arrives on the channel
// a little before ctx's deadline, so that it is read before the watchdog
// of RunInline takes over.
func delegate(ctx context.Context, e *Env, checks []Check) (map[int]Location, <-chan DelegateOutcome) {
	if e.NoDelegate || e.Delegate == nil || !e.UnsafeMounts() {
		// No mount but "/" can hang: no path needs the walk.
		return nil, nil
	}
	var delegated map[int]Location
	var ids []string
	for i, c := range checks {
		if c.Paths == nil {
			continue
		}
		for _, p := range c.Paths(e) {
			if loc := e.Locate(p); loc.Unsafe {
				if delegated == nil {
					delegated = map[int]Location{}
				}
				delegated[i] = loc
				ids = append(ids, c.ID)
				break
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if e.NoHelpers != "" {
		// No process to read them from: they are not checked at all.
		ch := make(chan DelegateOutcome, 1)
		ch <- DelegateOutcome{Err: e.NoHelpers}
		return delegated, ch
	}
	dctx, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		dctx, cancel = context.WithDeadline(ctx, dl.Add(-OverdueGrace/2))
	}
	ch := make(chan DelegateOutcome, 1)
	go func() {
		defer cancel()
		ch <- e.Delegate(dctx, ids)
	}()
	return delegated, ch
}

// budget is the whole time ctx allowed, for messages: the deadline less
// when the run started, as near as the context tells.
func budget(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(budgetKey{}).(time.Duration); ok {
		return d
	}
	return 0
}

// budgetKey holds the check phase's timeout in its context (WithBudget).
type budgetKey struct{}

// WithBudget records the check phase's timeout in ctx, for the messages
// that say how long a path had to answer.
func WithBudget(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, budgetKey{}, d)
}

// abandonedIn is the result of a check still running at the deadline of
// the whole check phase: it names the paths the check was reading and
// their filesystems (stuckAt), or what the check was doing.
func abandonedIn(e *Env, c Check, timeout time.Duration) Result {
	r := Result{ID: c.ID, Title: c.Title, Status: Warn,
		Message: c.Title + " did not finish in time (" + c.doing() + ") and was abandoned",
		Hint:    e.RaiseTimeout("10s") + " if this host is slow"}
	if msg, hint, ok := stuckAt(e, c, timeout, "; "+e.RaiseTimeout("10s")+" if it is only slow"); ok {
		r.Message, r.Hint = msg, hint
	}
	return r
}

// stuckAt says why check c may still be running after timeout: its own
// Stuck, or the paths it reads and their filesystems, read from mountinfo
// without touching them (a hung mount, not a slow host, is the usual
// cause). The hint says what to look at, then slowFix; ok is false when c
// has neither.
func stuckAt(e *Env, c Check, timeout time.Duration, slowFix string) (message, hint string, ok bool) {
	if c.Stuck != nil {
		if msg, hint := c.Stuck(e, timeout); msg != "" {
			return msg, hint, true
		}
	}
	if c.Paths == nil {
		return "", "", false
	}
	var where []string
	for _, p := range c.Paths(e) {
		if m, ok := MountFor(e.Mounts(), p); ok {
			where = append(where, p+" ("+m.FSType+" at "+m.Point+")")
		} else {
			where = append(where, p+" (on a filesystem unknown: the mount table could not be read)")
		}
	}
	if len(where) == 0 {
		return "", "", false
	}
	within := ""
	if timeout > 0 {
		within = " within " + timeout.Round(time.Millisecond).String()
	}
	return c.Title + ": " + strings.Join(where, ", ") + " did not answer" + within,
		"that filesystem is not answering or is very slow: check its disk, daemon or server" + slowFix, true
}

// doing describes what a check is busy with.
func (c Check) doing() string {
	if c.Doing != "" {
		return c.Title + ": " + c.Doing
	}
	return c.Title
}

// runOne runs one check under its own deadline, recovering a panic. A check
// with a Timeout that overruns it is reported as timed out, and abandoned.
func runOne(ctx context.Context, e *Env, c Check) Result {
	start := e.Time()
	var r Result
	if c.Timeout > 0 {
		limit := c.Timeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < limit {
			limit = time.Until(dl).Round(time.Millisecond)
		}
		cctx, cancel := context.WithTimeout(ctx, c.Timeout)
		defer cancel()
		ch := make(chan Result, 1)
		go func() { ch <- guarded(cctx, e, c) }()
		select {
		case r = <-ch:
		case <-cctx.Done():
			// A check that honours ctx reports its own time-out (the GPU
			// check says the probe hung); give it a moment to.
			grace := time.NewTimer(250 * time.Millisecond)
			select {
			case r = <-ch:
			case <-grace.C:
				r = timedOut(e, c, limit)
			}
			grace.Stop()
		}
	} else {
		r = guarded(ctx, e, c)
	}
	r.ID, r.Title = c.ID, c.Title
	r.Duration = e.Time().Sub(start)
	return r
}

// timedOut is the result of a check abandoned at its own time limit (a
// Timeout of the report's, which no setting raises): named by its paths
// and their filesystems where it has paths (stuckAt).
func timedOut(e *Env, c Check, after time.Duration) Result {
	r := Result{Status: Warn,
		Message: fmt.Sprintf("%s timed out after %s (%s)", c.Title, after, c.doing()),
		Hint:    "run the check again; if it keeps timing out, what it waits on is hanging on this host",
		Data:    map[string]any{"timed_out": true}}
	if msg, hint, ok := stuckAt(e, c, after, ""); ok {
		r.Message, r.Hint = msg, hint
	}
	return r
}

// guarded runs the check, turning a panic into a warning.
func guarded(ctx context.Context, e *Env, c Check) (r Result) {
	defer func() {
		if p := recover(); p != nil {
			r = Result{Status: Warn,
				Message: fmt.Sprintf("the %s check failed unexpectedly: %v", c.Title, p),
				Hint:    "please report this with the output of nss-entrypoint --diagnose",
				Data:    map[string]any{"panic": fmt.Sprint(p), "stack": string(debug.Stack())}}
		}
	}()
	return c.Run(ctx, e)
}

// Counts tallies results by status.
type Counts struct {
	OK   int `json:"ok"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// Count tallies the results.
func Count(results []Result) Counts {
	var c Counts
	for _, r := range results {
		switch r.Status {
		case OK:
			c.OK++
		case Warn:
			c.Warn++
		case Fail:
			c.Fail++
		case Skip:
			c.Skip++
		}
	}
	return c
}

// Worst returns the worst status among results, OK when there are none.
func Worst(results []Result) Status {
	w := OK
	for _, r := range results {
		if r.Status != Skip && r.Status > w {
			w = r.Status
		}
	}
	return w
}
