package textpath

import "testing"

func TestJoinKeepsTheTextAsWritten(t *testing.T) {
	for _, tc := range []struct{ dir, name, want string }{
		{"/a", "b", "/a/b"},
		{"/a/", "b", "/a/b"},
		{"/a/link/..", "b", "/a/link/../b"},
		{"./", "b", "./b"},
		{".", "b", "./b"},
		{"a//", "b", "a//b"},
		{"", "b", "b"},
		{"/", "b", "/b"},
		{"/a", "./b", "/a/./b"},
	} {
		if got := Join(tc.dir, tc.name); got != tc.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tc.dir, tc.name, got, tc.want)
		}
	}
}
