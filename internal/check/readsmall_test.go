package check_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
)

// ReadSmall is bounded whatever it is pointed at: a device without end, a
// huge sparse file, a named pipe nobody writes to (or one that never stops).
func TestReadSmallIsBounded(t *testing.T) {
	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(10 << 30); err != nil { // 10 GiB, no blocks
		t.Fatal(err)
	}
	f.Close()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "zero-link")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		n    int
		err  error
	}{
		{"/dev/zero", "/dev/zero", 4096, nil},
		{"a link to /dev/zero", link, 4096, nil},
		{"a 10 GiB sparse file", sparse, 4096, nil},
		{"a named pipe", fifo, 0, check.ErrNotRegular},
		{"a directory", dir, 0, syscall.EISDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			var b []byte
			var err error
			go func() { b, err = check.ReadSmall(tc.path, 4096); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("ReadSmall blocked")
			}
			if len(b) != tc.n || !errors.Is(err, tc.err) {
				t.Errorf("%d bytes, %v; want %d, %v", len(b), err, tc.n, tc.err)
			}
		})
	}
	// A writer that never stops: still limit bytes.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := check.ReadSmall(fifo, 4096); !errors.Is(err, check.ErrNotRegular) {
		t.Errorf("a named pipe with a writer: %v", err)
	}
}

// A relative NSS_WORKSPACE is read against the working directory, as the
// target would read it, and the message says which directory that was.
func TestWorkspaceRelative(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	e := &check.Env{Environ: []string{"NSS_WORKSPACE=data"}, UID: -1, GID: -1,
		Access: func(string, uint32) error { return nil }}
	if got := check.WorkspaceDir(e); got != filepath.Join(dir, "data") {
		t.Errorf("WorkspaceDir = %q", got)
	}
	r := check.Workspace.Run(t.Context(), e)
	if r.Status != check.Warn || r.Message != "NSS_WORKSPACE=data (relative: "+filepath.Join(dir, "data")+") does not exist" || r.Data["relative"] != "data" {
		t.Errorf("%+v", r)
	}
	// The workspace's name is shown the same way when it holds only empty
	// folders.
	if err := os.MkdirAll(filepath.Join(dir, "data", "raw"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = check.Workspace.Run(t.Context(), e)
	if r.Status != check.Warn || r.Message != "NSS_WORKSPACE=data (relative: "+filepath.Join(dir, "data")+") holds only empty folders (raw): no data is mounted there" {
		t.Errorf("%+v", r)
	}
}
