package target

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func write(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestLookup(t *testing.T) {
	if os.Geteuid() == 0 {
		// access(2) with X_OK still needs an execute bit for root, so the
		// non-executable cases hold as root too.
		t.Log("running as root")
	}
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	write(t, filepath.Join(a, "tool"), 0o644)                            // not executable
	write(t, filepath.Join(b, "tool"), 0o755)                            // executable
	if err := os.MkdirAll(filepath.Join(c, "tool"), 0o755); err != nil { // a directory
		t.Fatal(err)
	}
	write(t, filepath.Join(a, "plain"), 0o644)

	tests := []struct {
		name, target, path string
		pathSet            bool
		want               string
		code               int
		reason             string
	}{
		{"skips directories and non-executables", "tool", c + ":" + a + ":" + b, true, filepath.Join(b, "tool"), 0, ""},
		{"only a non-executable match", "plain", c + ":" + a, true, filepath.Join(a, "plain"), NotExecutable, "permission denied"},
		{"not found", "nope", a + ":" + b, true, "", NotFound, "not found in PATH=" + a + ":" + b},
		{"unset PATH uses the default", "nope", "", false, "", NotFound, "PATH is unset"},
		{"slash path ok", filepath.Join(b, "tool"), "", true, filepath.Join(b, "tool"), 0, ""},
		{"slash path missing", filepath.Join(b, "missing"), "", true, "", NotFound, "no such file"},
		{"slash path is a directory", filepath.Join(c, "tool"), "", true, "", NotExecutable, "directory"},
		{"slash path not executable", filepath.Join(a, "tool"), "", true, "", NotExecutable, "not executable"},
		{"empty name", "", "/bin", true, "", NotFound, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Lookup(tc.target, Search{Path: tc.path, PathSet: tc.pathSet})
			if tc.code == 0 {
				if err != nil || got != tc.want {
					t.Fatalf("Lookup = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("Lookup = %q, %v; want an *Error", got, err)
			}
			if te.Code != tc.code || !strings.Contains(te.Error(), tc.reason) {
				t.Errorf("error %q code %d; want code %d containing %q", te, te.Code, tc.code, tc.reason)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("path %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLookupEmptyPathEntryIsCurrentDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "here"), 0o755)
	t.Chdir(dir)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// bash hands over an absolute path under the working directory (the
	// script's $0), with a leading "./" of the entry dropped.
	for _, tc := range []struct{ path, want string }{
		{"/nonexistent::", wd + "/here"},
		{"", wd + "/here"},
		{".", wd + "/here"},
		{"./", wd + "/here"},
		{"./.", wd + "/./here"},
		{".//", wd + "//here"},
		{"/nonexistent:.", wd + "/here"},
		{"../" + filepath.Base(dir), wd + "/../" + filepath.Base(dir) + "/here"},
	} {
		got, err := Lookup("here", Search{Path: tc.path, PathSet: true})
		if err != nil || got != tc.want {
			t.Errorf("PATH=%q: Lookup = %q, %v; want %s", tc.path, got, err, tc.want)
		}
	}
	// $PWD names the working directory when it is the same directory.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ pwd, want string }{{link, link + "/here"}, {"/", wd + "/here"}, {"relative", wd + "/here"}} {
		if got, _ := Lookup("here", Search{Path: ".", PathSet: true, PWD: tc.pwd}); got != tc.want {
			t.Errorf("PWD=%q: Lookup = %q, want %s", tc.pwd, got, tc.want)
		}
	}
}

// An entry that starts with "~" is expanded by Search.Tilde, up to its
// first slash; one that Tilde does not expand stays as written, and with
// no Tilde (bash in POSIX mode) none is.
func TestLookupTildeEntries(t *testing.T) {
	home := t.TempDir()
	write(t, filepath.Join(home, ".local/bin/tool"), 0o755)
	write(t, filepath.Join(home, "tool"), 0o755)
	tilde := func(prefix string) (string, bool) {
		switch prefix {
		case "~", "~ann":
			return home, true
		case "~empty":
			return "", true
		}
		return "", false
	}
	for _, tc := range []struct {
		path  string
		tilde func(string) (string, bool)
		want  string
	}{
		{"~/.local/bin", tilde, home + "/.local/bin/tool"},
		{"/nonexistent:~", tilde, home + "/tool"},
		{"~ann/.local/bin", tilde, home + "/.local/bin/tool"},
		{"~empty" + home, tilde, home + "/tool"},
		{"~nobody/.local/bin", tilde, ""},
		{"~/.local/bin", nil, ""},
		{home + "/x/~/..", tilde, ""},
	} {
		got, err := Lookup("tool", Search{Path: tc.path, PathSet: true, Tilde: tc.tilde})
		if got != tc.want || (tc.want != "") != (err == nil) {
			t.Errorf("PATH=%q: Lookup = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}

// The PATH walk follows bash's findcmd.c: entries are joined as text (the
// kernel resolves ".." through a symbolic link), the first existing match
// decides when nothing is executable, and a directory in the working
// directory named like a target found nowhere is reported as bash 5.2's
// exec reports it.
func TestLookupFollowsBashPathRules(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "real/bin/tgt"), 0o755)
	write(t, filepath.Join(dir, "elsewhere/bin/tgt"), 0o755)
	if err := os.Symlink(filepath.Join(dir, "real/bin"), filepath.Join(dir, "elsewhere/link")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "d2/tgt"), 0o755)
	write(t, filepath.Join(dir, "noexec/tgt"), 0o644)
	for _, d := range []string{"isdir/tgt", "cwd/tgt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir) // no "tgt" here
	tests := []struct {
		name, path, want string
		code             int
		reason           string
	}{
		{"dot-dot after a symbolic link is the kernel's", dir + "/elsewhere/link/../bin", dir + "/elsewhere/link/../bin/tgt", 0, ""},
		{"dot-dot after a missing folder finds nothing", "/nonexistent/.." + dir + "/d2", "", NotFound, "not found"},
		{"a trailing slash is not doubled", dir + "/d2/", dir + "/d2/tgt", 0, ""},
		{"a directory first, then a non-executable file", dir + "/isdir:" + dir + "/noexec", "", NotFound, "not found"},
		{"a non-executable file first, then a directory", dir + "/noexec:" + dir + "/isdir", dir + "/noexec/tgt", NotExecutable, "permission denied"},
		{"found nowhere, a directory here", "/nonexistent", "", NotExecutable, "tgt in the working directory is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.name, "found nowhere") {
				t.Chdir(filepath.Join(dir, "cwd"))
			}
			got, err := Lookup("tgt", Search{Path: tc.path, PathSet: true})
			if got != tc.want {
				t.Errorf("path %q, want %q", got, tc.want)
			}
			if tc.code == 0 {
				if err != nil {
					t.Errorf("error %v, want none", err)
				}
				return
			}
			var te *Error
			if !errors.As(err, &te) || te.Code != tc.code || !strings.Contains(te.Error(), tc.reason) {
				t.Errorf("error %v, want code %d containing %q", err, tc.code, tc.reason)
			}
		})
	}
}

func TestExecErrorCodes(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	write(t, exists, 0o755)
	tests := []struct {
		name string
		path string
		err  error
		code int
		want string
	}{
		{"exec format error", exists, syscall.ENOEXEC, NotExecutable, "not an executable format"},
		{"permission", exists, syscall.EACCES, NotExecutable, "permission denied"},
		{"missing interpreter", exists, syscall.ENOENT, NotFound, "interpreter or dynamic loader is missing"},
		{"vanished", filepath.Join(dir, "gone"), syscall.ENOENT, NotFound, "no such file"},
		{"other", exists, syscall.ETXTBSY, NotExecutable, "text file busy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := execError("safe-synthesizer", tc.path, tc.err)
			if e.Code != tc.code || !strings.Contains(e.Error(), tc.want) {
				t.Errorf("execError = %q (%d), want %d containing %q", e, e.Code, tc.code, tc.want)
			}
		})
	}
}
