package check

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIsEmptyDirReadsOneBuffer counts the getdents calls: a directory of
// 5,000 entries is judged from the first buffer, an empty one from the
// buffer that ends it, and one with a subdirectory from its link count
// alone where the filesystem counts subdirectories in it (ext4, xfs,
// tmpfs; not btrfs, whose directories have one link: read there).
func TestIsEmptyDirReadsOneBuffer(t *testing.T) {
	calls := 0
	countGetdents = func() { calls++ }
	defer func() { countGetdents = nil }()

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

// TestScanWorkspaceCost: the usual workspace (data/ holding a file) is
// judged with one getdents of the workspace and one of data/, and with no
// allocation but the open's; a workspace of empty folders is read no further than
// maxWorkspaceEntries of them.
func TestScanWorkspaceCost(t *testing.T) {
	calls := 0
	countGetdents = func() { calls++ }
	defer func() { countGetdents = nil }()

	usual := t.TempDir()
	if err := os.MkdirAll(filepath.Join(usual, "workspace/data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(usual, "workspace/data/train.csv"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &Env{Root: usual}
	s, err := scanWorkspace(e, "/workspace")
	if err != nil || !s.content || calls != 2 {
		t.Errorf("data/ holding a file: content %v, err %v after %d getdents calls; want content after 2", s.content, err, calls)
	}
	// The open of the workspace allocates (its path, made a C string) as
	// it did before the folders were read: nothing more.
	opened := testing.AllocsPerRun(100, func() { isEmptyDir(e.Path("/workspace")) })
	if n := testing.AllocsPerRun(100, func() { scanWorkspace(e, "/workspace") }); n > opened {
		t.Errorf("data/ holding a file: %v allocations, want %v (the open's)", n, opened)
	}

	many := t.TempDir()
	for i := range 200 {
		if err := os.MkdirAll(filepath.Join(many, "workspace", fmt.Sprintf("empty%03d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	calls = 0
	s, err = scanWorkspace(&Env{Root: many}, "/workspace")
	// Each empty folder takes two reads (the second finds its end), the
	// workspace a few of its own.
	if err != nil || !s.content || calls > 2*maxWorkspaceEntries+4 {
		t.Errorf("200 empty folders: content %v, err %v after %d getdents calls; want content after at most %d", s.content, err, calls, 2*maxWorkspaceEntries+4)
	}
}

// A folder emptied of thousands of files keeps its size on ext4, and
// getdents walks all of it to find nothing (a million: half a second):
// past maxReadDirSize a folder is taken to hold data, unread, and the
// workspace too.
func TestHugeEmptiedFolderIsNotRead(t *testing.T) {
	root := t.TempDir()
	big := filepath.Join(root, "workspace/data")
	if err := os.MkdirAll(big, 0o755); err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("n", 200)
	for i := 0; ; i++ {
		var st unix.Stat_t
		if err := unix.Stat(big, &st); err != nil {
			t.Fatal(err)
		}
		if st.Size > maxReadDirSize {
			break
		}
		if i > 20000 {
			t.Skip("this filesystem's directories do not grow with their entries")
		}
		f, err := os.Create(filepath.Join(big, fmt.Sprintf("%s%05d", name, i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	entries, _ := os.ReadDir(big)
	for _, e := range entries {
		os.Remove(filepath.Join(big, e.Name()))
	}
	var st unix.Stat_t
	if unix.Stat(big, &st); st.Size <= maxReadDirSize {
		t.Skip("this filesystem shrinks a directory as it empties")
	}
	calls := 0
	countGetdents = func() { calls++ }
	defer func() { countGetdents = nil }()
	s, err := scanWorkspace(&Env{Root: root}, "/workspace")
	if err != nil || !s.content || calls != 1 {
		t.Errorf("an emptied %d-byte data/: content %v, err %v, %d getdents; want content after the workspace's one", st.Size, s.content, err, calls)
	}
	// The workspace itself so large: not read at all.
	calls = 0
	s, err = scanWorkspace(&Env{Root: root}, "/workspace/data")
	if err != nil || !s.content || calls != 0 {
		t.Errorf("an emptied %d-byte workspace: content %v, err %v, %d getdents; want content unread", st.Size, s.content, err, calls)
	}
}

// FuzzNextDirent: whatever bytes getdents left in the buffer, taking
// entries off it never reads past it, and each name ends before a NUL
// that is in the buffer (emptyFolderAt hands the name to openat).
func FuzzNextDirent(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 24, 0, 4, 'd', 'a', 't', 'a', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for n := 0; len(b) > 0 && n < 1000; n++ {
			name, _, rest, ok := nextDirent(b)
			if !ok {
				return
			}
			if len(name) == 0 || bytes.IndexByte(name, 0) >= 0 || len(rest) >= len(b) {
				t.Fatalf("name %q, rest %d of %d", name, len(rest), len(b))
			}
			// The NUL after the name is within the entry.
			if end := cap(name) - len(name); end < 1 || name[:len(name)+1][len(name)] != 0 {
				t.Fatalf("name %q is not followed by a NUL in the buffer", name)
			}
			b = rest
		}
	})
}
