package check

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// hostileText holds what a check's message may quote from the container:
// newlines, quotes, backslashes, NULs, invalid UTF-8, terminal escapes,
// and text that looks like the format's own lines.
const hostileText = "a\nstart shm\nresult \"x\" \"y\" ok \"z\" \"\"\r\n\"quoted\" \\ back\\slash \x00NUL\x00 \xff\xfe\xc3( \xed\xa0\x80 \x1b[31mred\x1b[0m \x1b]0;title\x07 \u2028 \U0001F600 \t end "

func TestDelegatedResultRoundTrips(t *testing.T) {
	for _, st := range []Status{OK, Skip, Warn, Fail} {
		in := Result{ID: "shm", Title: "/dev/shm " + hostileText, Status: st, Message: hostileText, Hint: hostileText + "\n"}
		out := ParseDelegate(append([]byte("start shm\n"), formatResult(in)...))
		if got, ok := out.Results["shm"]; !ok || !reflect.DeepEqual(got, in) {
			t.Errorf("status %v: got %#v, want %#v", st, got, in)
		}
		if !reflect.DeepEqual(out.Started, []string{"shm"}) {
			t.Errorf("started %q", out.Started)
		}
	}
	// Empty strings, and a line with no newline after it (a delegate that
	// exited just after writing it) are whole.
	in := Result{ID: "hf-cache", Status: Skip}
	line := formatResult(in)
	if got := ParseDelegate(line[:len(line)-1]).Results["hf-cache"]; !reflect.DeepEqual(got, in) {
		t.Errorf("got %#v, want %#v", got, in)
	}
}

func TestDelegatedResultNotCarried(t *testing.T) {
	in := Result{ID: "workspace", Title: "Workspace", Status: Warn, Message: "m", Hint: "h",
		Data: map[string]any{"path": "/x"}, Duration: 5}
	got := ParseDelegate(formatResult(in)).Results["workspace"]
	in.Data, in.Duration = nil, 0
	if !reflect.DeepEqual(got, in) {
		t.Errorf("got %#v, want %#v", got, in)
	}
}

func TestDelegateSkipsBrokenLines(t *testing.T) {
	whole := formatResult(Result{ID: "shm", Title: "t", Status: Fail, Message: hostileText, Hint: "h"})
	// Each cut of the line short of its last quote: a delegate killed while
	// writing it.
	for n := range len(whole) - 1 {
		out := ParseDelegate(append([]byte("start shm\n"), whole[:n]...))
		if len(out.Results) != 0 {
			t.Errorf("a line cut at %d of %d was read: %#v", n, len(whole), out.Results)
		}
		if len(out.Started) != 1 {
			t.Errorf("cut at %d: started %q", n, out.Started)
		}
	}
	for _, line := range []string{
		`{"id":"shm","title":"t","status":"fail","message":"m"}`,
		`result "shm" "t" fail "m"`,
		`result "shm" "t" fail "m" "h" "extra"`,
		`result "shm" "t" fail "m" "h" `,
		`result "shm" "t" fail "m" 'h'`,
		`result "shm" "t" "m" "h"`,
		`result shm "t" fail "m" "h"`,
		`result "shm" "t"  fail "m" "h"`,
		`result "sh\m" "t" fail "m" "h"`,
		`result "" "t" fail "m" "h"`,
		`result  "shm" "t" fail "m" "h"`,
		"garbage",
		"",
	} {
		if out := ParseDelegate([]byte(line + "\n")); len(out.Results) != 0 {
			t.Errorf("%q was read: %#v", line, out.Results)
		}
	}
	// An unknown status reads as a warning, as it did in JSON.
	if got := ParseDelegate([]byte(`result "shm" "t" bogus "m" "h"`)).Results["shm"]; got.Status != Warn {
		t.Errorf("status %v", got.Status)
	}
}

func TestDelegateOutcome(t *testing.T) {
	var out []byte
	out = append(out, "start workspace\n"...)
	out = append(out, formatResult(Result{ID: "workspace", Title: "Workspace", Status: OK, Message: "ok"})...)
	out = append(out, "start hf-cache\n"...) // then it hung
	o := ParseDelegate(out)
	if !reflect.DeepEqual(o.Started, []string{"workspace", "hf-cache"}) || len(o.Results) != 1 || o.Results["workspace"].Message != "ok" {
		t.Errorf("%#v", o)
	}
}

// A delegate that ended before the deadline without reporting a check (it
// crashed, or was killed) is said to have ended so, not to have met a slow
// filesystem: raising the time-out would not help.
func TestDelegateThatEndedEarly(t *testing.T) {
	c := Check{ID: "workspace", Title: "workspace"}
	loc := Location{Path: "/workspace", Mount: Mount{FSType: "fuse.sshfs", Point: "/workspace"}}
	for _, tc := range []struct {
		name string
		o    DelegateOutcome
		want string
	}{
		{"killed after starting the check", DelegateOutcome{Started: []string{"workspace"}, Ended: "it was killed by signal 9 (killed)"}, "and it was killed by signal 9 (killed) without reporting it"},
		{"exited before starting it", DelegateOutcome{Ended: "it exited with status 2"}, "and it exited with status 2 without reporting it"},
		{"still running at the deadline", DelegateOutcome{Started: []string{"workspace"}}, "did not answer within 5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := delegatedResult(c, loc, tc.o, 5*time.Second)
			if r.Status != Warn || !strings.Contains(r.Message, tc.want) {
				t.Errorf("got %v %q, want a warning with %q", r.Status, r.Message, tc.want)
			}
			if tc.o.Ended != "" && strings.Contains(r.Hint, "NSS_ENTRYPOINT_TIMEOUT") {
				t.Errorf("hint %q blames the time-out", r.Hint)
			}
		})
	}
}
