package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FSTypeOfMount and FSTypeOfDevice find a mount by its ID (field 1 of the
// mount table) or its device number (field 3), and say so when no mount or
// no table has it.
func TestFSTypeOfMountAndDevice(t *testing.T) {
	table := "21 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n" +
		"30 21 0:45 / /workspace rw,nosuid,nodev,relatime shared:5 - fuse.gcsfuse bucket rw,user_id=0\n" +
		"31 21 0:46 / /mnt/nfs rw - nfs4 srv:/export rw\n" +
		"32 21 0:450 / /odd\\040name rw master:1 - tmpfs tmpfs rw\n" +
		"33 21 254:1 /data /data rw - ext4 /dev/vda rw\n" +
		"malformed line without a separator 0:47\n"
	r := t.TempDir()
	if err := os.MkdirAll(filepath.Join(r, "proc/self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r, "proc/self/mountinfo"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &Env{Root: r}
	for _, tc := range []struct {
		major, minor uint32
		want         string
		found        bool
	}{
		{254, 1, "ext4", true},
		{0, 45, "fuse.gcsfuse", true},
		{0, 46, "nfs4", true},
		{0, 450, "tmpfs", true},
		{0, 4, "", false},
		{0, 47, "", false},
		{45, 0, "", false},
	} {
		got, found := e.FSTypeOfDevice(tc.major, tc.minor)
		if got != tc.want || found != tc.found {
			t.Errorf("FSTypeOfDevice(%d, %d) = %q, %v; want %q, %v", tc.major, tc.minor, got, found, tc.want, tc.found)
		}
	}
	for _, tc := range []struct {
		id    uint64
		want  string
		found bool
	}{
		{21, "ext4", true}, {30, "fuse.gcsfuse", true}, {31, "nfs4", true}, {32, "tmpfs", true},
		{33, "ext4", true}, {1, "", false}, {3, "", false}, {254, "", false},
	} {
		got, found := e.FSTypeOfMount(tc.id)
		if got != tc.want || found != tc.found {
			t.Errorf("FSTypeOfMount(%d) = %q, %v; want %q, %v", tc.id, got, found, tc.want, tc.found)
		}
	}
	none := &Env{Root: t.TempDir()}
	if _, found := none.FSTypeOfDevice(254, 1); found {
		t.Error("found a device without a mount table")
	}
	if _, found := none.FSTypeOfMount(21); found {
		t.Error("found a mount without a mount table")
	}
}

// Locate takes ".." where its walk has got to, as the kernel does: after a
// symbolic link, ".." is the link target's parent, not the link's (a path
// cleaned as text first was judged by another filesystem than the one the
// check then touched).
func TestLocateTakesDotDotAfterALink(t *testing.T) {
	table := "21 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n" +
		"30 21 0:45 / /fuse rw,nosuid,nodev,relatime - fuse.gcsfuse bucket rw,user_id=0\n"
	r := t.TempDir()
	mk := func(p string) string {
		p = filepath.Join(r, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.WriteFile(mk("proc/self/mountinfo"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	// /a/link -> /fuse/x (on the FUSE mount); /b/link -> /c/d (local).
	if err := os.Symlink("/fuse/x", mk("a/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/c/d", mk("b/link")); err != nil {
		t.Fatal(err)
	}
	e := &Env{Root: r}
	for _, tc := range []struct {
		path, resolved string
		unsafe         bool
	}{
		{"/a/link/../data.csv", "/fuse/data.csv", true},
		{"/a/link/..", "/fuse", true},
		{"/b/link/../fuse/x", "/c/fuse/x", false},
		{"/a/../fuse/x", "/fuse/x", true},
		{"/a/./link2/../y", "/a/y", false},
	} {
		loc := e.Locate(tc.path)
		if loc.Unsafe != tc.unsafe || loc.Resolved != tc.resolved {
			t.Errorf("Locate(%q) = resolved %q, unsafe %v; want %q, %v", tc.path, loc.Resolved, loc.Unsafe, tc.resolved, tc.unsafe)
		}
	}
}

// A mount table longer than the bound it is read to may hide the mount that
// holds a path (the FUSE mount last of 15 000): no path is then known to be
// safe, each is left to the separate process, and the message says the
// filesystem cannot be named (it named "/"'s, ext4, before; the check
// then ran in this process and hung the start).
func TestACutMountTableMakesEveryPathUnsafe(t *testing.T) {
	local := "21 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n"
	filler := "22 21 0:99 / /mnt/" + strings.Repeat("x", 200) + " rw - tmpfs tmpfs rw\n"
	for _, tc := range []struct {
		name   string
		table  string
		unsafe bool
	}{
		{"within the bound", local + strings.Repeat(filler, (maxMountinfo-len(local))/len(filler)-1), false},
		{"longer than the bound", local + strings.Repeat(filler, maxMountinfo/len(filler)+1) + "30 21 0:45 / /workspace rw - fuse.gcsfuse b rw\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := t.TempDir()
			if err := os.MkdirAll(filepath.Join(r, "proc/self"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(r, "proc/self/mountinfo"), []byte(tc.table), 0o644); err != nil {
				t.Fatal(err)
			}
			e := &Env{Root: r}
			loc := e.Locate("/workspace/data")
			if loc.Unsafe != tc.unsafe {
				t.Fatalf("Locate: unsafe %v, want %v (%+v)", loc.Unsafe, tc.unsafe, loc)
			}
			if tc.unsafe && loc.Where() != unknownFilesystem {
				t.Errorf("Where() = %q, want %q", loc.Where(), unknownFilesystem)
			}
		})
	}
}
