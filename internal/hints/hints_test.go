package hints

import (
	"strings"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/golden"
)

var problems = []check.Result{
	{ID: "workspace", Title: "workspace", Status: check.Warn, Message: "/workspace is empty: no data is mounted there",
		Hint: `mount your data with an absolute host path: docker run -v "$(pwd)/data:/workspace/data" ...`},
	{ID: "hf-cache", Title: "Hugging Face cache", Status: check.OK, Message: "HF_HOME=/hf is a writable directory"},
	{ID: "hf-token", Title: "Hugging Face token", Status: check.Skip, Message: "skipped"},
	{ID: "gpu", Title: "GPU", Status: check.Fail, Message: "no GPU is visible in this container\n(no /dev/nvidiactl)", Hint: "give the container GPUs: docker run --gpus all ..."},
	{ID: "shm", Title: "/dev/shm", Status: check.Warn, Message: "/dev/shm is 64 MiB", Hint: "docker run --shm-size=1g ... (or --ipc=host)"},
}

var allGood = []check.Result{
	{ID: "workspace", Status: check.OK},
	{ID: "hf-cache", Status: check.OK},
	{ID: "hf-token", Status: check.OK},
	{ID: "gpu", Status: check.OK, Message: "1 GPU: NVIDIA H200 (140.4 GiB), driver 580.159.04, CUDA 13.0"},
	{ID: "shm", Status: check.OK},
}

func TestStartupGolden(t *testing.T) {
	golden.Check(t, "startup-problems.txt", Startup(problems, false))
	golden.Check(t, "startup-problems-colour.txt", Startup(problems, true))
	golden.Check(t, "startup-ok.txt", Startup(allGood, false))
	mixed := append([]check.Result{problems[0]}, allGood[1:]...)
	golden.Check(t, "startup-problems-gpu-ok.txt", Startup(mixed, false))
	if got := Startup(nil, false); len(got) != 0 {
		t.Errorf("no results printed %q", got)
	}
}

func TestColourWanted(t *testing.T) {
	tests := []struct {
		env  map[string]string
		tty  bool
		want bool
	}{
		{nil, true, true},
		{nil, false, false},
		{map[string]string{"NO_COLOR": "1"}, true, false},
		{map[string]string{"NO_COLOR": ""}, true, true},
		{map[string]string{"CLICOLOR": "0"}, true, false},
		{map[string]string{"CLICOLOR_FORCE": "1"}, false, true},
		{map[string]string{"CLICOLOR_FORCE": "1", "NO_COLOR": "1"}, false, false},
		{map[string]string{"CLICOLOR_FORCE": "0"}, false, false},
		{map[string]string{"TERM": "dumb"}, true, false},
	}
	for _, tc := range tests {
		if got := ColourWanted(func(k string) string { return tc.env[k] }, tc.tty); got != tc.want {
			t.Errorf("ColourWanted(%v, tty=%v) = %v, want %v", tc.env, tc.tty, got, tc.want)
		}
	}
}

// Text that comes from the probe, the environment or file names reaches the
// terminal escaped: no control character, escape sequence, bidirectional
// override or invalid UTF-8 byte is written raw.
func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain /workspace", "plain /workspace"},
		{"two\nlines\r\tand a tab", "two lines  and a tab"},
		{"red \x1b[31mtext\x1b[0m", `red \x1b[31mtext\x1b[0m`},
		{"title \x1b]0;pwned\x07", `title \x1b]0;pwned\x07`},
		{"C1 CSI \u009b31m", `C1 CSI \x9b31m`},
		{"NUL \x00 DEL \x7f", `NUL \x00 DEL \x7f`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
		{"ünïcödé GPU", "ünïcödé GPU"},
		{"arabic mark \u061c", `arabic mark \u061c`},
		{"/ws\u2028fake line\u2029", `/ws\u2028fake line\u2029`},
		{"zero\u200bwidth \ufeffbom \u00adsoft", `zero\u200bwidth \ufeffbom \u00adsoft`},
		{"tag \U000e0041\U000e007f", `tag \U000e0041\U000e007f`},
	}
	for _, tc := range tests {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	hostile := []check.Result{{ID: "workspace", Title: "workspace", Status: check.Warn,
		Message: "/ws\x1b[2J\x1b]0;owned\x07 does not exist", Hint: "fix \x9b1m it"}}
	for _, colour := range []bool{false, true} {
		out := Startup(hostile, colour)
		for i, c := range out {
			if c < 0x20 && c != '\n' && !(colour && c == 0x1b && isOwnSGR(out[i:])) || c == 0x7f {
				t.Errorf("raw control byte %#x at %d in %q", c, i, out)
			}
		}
	}
}

// isOwnSGR reports whether b starts with one of the palette's own colour
// sequences (ESC [ digits m).
func isOwnSGR(b []byte) bool {
	if len(b) < 3 || b[1] != '[' {
		return false
	}
	for _, c := range b[2:] {
		switch {
		case c == 'm':
			return true
		case c >= '0' && c <= '9' || c == ';':
		default:
			return false
		}
	}
	return false
}

// A message that quotes a megabyte (a GPU name the probe made up) is cut:
// each line of hints stays a few KiB once escaped.
func TestAHugeMessageIsCut(t *testing.T) {
	huge := strings.Repeat("\xff", 1<<20)
	out := Startup([]check.Result{{ID: "gpu", Title: "GPU", Status: check.Warn, Message: "name " + huge, Hint: huge}}, false)
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if len(l) > 4*2048+100 {
			t.Errorf("a line of %d bytes", len(l))
		}
		if !strings.Contains(l, "bytes more)") {
			t.Errorf("the cut is not said: %q", l[len(l)-40:])
		}
	}
	if len(out) > 20000 {
		t.Errorf("%d bytes of hints", len(out))
	}
}
