package check

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// TestIsEmptyDirReadsOneBuffer counts the getdents calls: a directory of
// 5,000 entries is judged from the first buffer, an empty one from the
// buffer that ends it, and one with a subdirectory from its link count
// alone where the filesystem counts subdirectories in it (ext4, xfs,
// tmpfs; not btrfs, whose directories have one link: read there).
func TestIsEmptyDirReadsOneBuffer(t *testing.T) {
	calls := 0
	real := getdents
	getdents = func(fd int, buf []byte) (int, error) { calls++; return real(fd, buf) }
	defer func() { getdents = real }()

	full := t.TempDir()
	for i := range 5000 {
		if err := os.WriteFile(filepath.Join(full, "f"+strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withSub := t.TempDir()
	if err := os.Mkdir(filepath.Join(withSub, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	subdirCalls := 1
	var st syscall.Stat_t
	if err := syscall.Stat(withSub, &st); err != nil {
		t.Fatal(err)
	} else if st.Nlink > 2 {
		subdirCalls = 0
	}
	oneFile := t.TempDir()
	if err := os.WriteFile(filepath.Join(oneFile, "train.csv"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		dir   string
		empty bool
		calls int
	}{
		{"5,000 entries", full, false, 1},
		{"empty", t.TempDir(), true, 2},
		{"a subdirectory", withSub, false, subdirCalls},
		{"one file", oneFile, false, 1},
	}
	for _, tc := range tests {
		calls = 0
		empty, err := isEmptyDir(tc.dir)
		if err != nil || empty != tc.empty || calls != tc.calls {
			t.Errorf("%s: empty %v, err %v after %d getdents calls; want %v after %d", tc.name, empty, err, calls, tc.empty, tc.calls)
		}
	}
}
