package check

import (
	"os"
	"path/filepath"
	"testing"
)

// Path puts a clean root in front of an absolute container path as text,
// so that what the kernel resolves under the root is what it resolves
// without one: "link/.." goes through the link (filepath.Join would drop
// both). Other roots and relative paths are joined with filepath.Join.
func TestPathKeepsTheContainerPathAsWritten(t *testing.T) {
	for _, root := range []string{"/r", "/tmp/root", "/r/", "rel/root", "/tmp//root", "/tmp/./r", "/tmp/../r", "./r", "."} {
		e := &Env{Root: root}
		for _, p := range []string{"/", "/workspace", "/a/b/c", "//a", "/a//b", "/a/./b", "/a/../b", "/a/", "/.hidden", "/a/b../c", "a/b", ""} {
			want := filepath.Join(root, p)
			if filepath.IsAbs(root) && filepath.Clean(root) == root && filepath.IsAbs(p) {
				want = root + p
			}
			if got := e.Path(p); got != want {
				t.Errorf("root %q: Path(%q) = %q, want %q", root, p, got, want)
			}
		}
	}
	// Under a root, a path through a link and ".." names what it names in
	// the container: the link target's parent.
	r := t.TempDir()
	for _, d := range []string{"real/sub", "other"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r, "real/file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(r, "real/sub"), filepath.Join(r, "other/link")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat((&Env{Root: r}).Path("/other/link/../file")); err != nil {
		t.Errorf("/other/link/../file under the root: %v, want real/file", err)
	}
}
