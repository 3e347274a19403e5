package check

import (
	"path/filepath"
	"testing"
)

// Path's fast path gives what filepath.Join gives, for clean and unclean
// container paths alike.
func TestPathMatchesFilepathJoin(t *testing.T) {
	for _, root := range []string{"/r", "/tmp/root", "/r/", "rel/root", "/tmp//root", "/tmp/./r", "/tmp/../r", "./r", "."} {
		e := &Env{Root: root}
		for _, p := range []string{"/", "/workspace", "/a/b/c", "//a", "/a//b", "/a/./b", "/a/../b", "/..", "/.", "/a/", "/a/.", "/a/..", "/.hidden", "/..hidden", "/a/...", "a/b", "", "/a/b/.c", "/a/b../c"} {
			if got, want := e.Path(p), filepath.Join(root, p); got != want {
				t.Errorf("root %q: Path(%q) = %q, filepath.Join gives %q", root, p, got, want)
			}
		}
	}
}
