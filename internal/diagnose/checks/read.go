package checks

import (
	"errors"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// maxDirEntries bounds how many entries of one directory the report reads,
// so that a directory of millions of files cannot hold it up.
const maxDirEntries = 10000

// maxMountinfo bounds how much of /proc/self/mountinfo is read.
const maxMountinfo = 4 << 20

// readDir returns at most maxDirEntries entries of dir, sorted by name. It
// fails at once, without blocking, when dir is not a directory (a FIFO).
func readDir(dir string) ([]os.DirEntry, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(maxDirEntries)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}
