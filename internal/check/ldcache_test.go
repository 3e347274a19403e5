package check_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
)

// ldcache writes a glibc ld.so.cache in the new format (old: false) or in
// the old format followed by the new one, as ldconfig before glibc 2.32 did.
func ldcache(old bool, entries ...check.LDCacheEntry) []byte {
	le := binary.LittleEndian
	var strs bytes.Buffer
	type off struct{ k, v uint32 }
	var offs []off
	// String offsets of the new format count from its header; the table
	// follows the header and the entries.
	base := uint32(48 + 24*len(entries))
	for _, e := range entries {
		k := base + uint32(strs.Len())
		strs.WriteString(e.Name + "\x00")
		v := base + uint32(strs.Len())
		strs.WriteString(e.Path + "\x00")
		offs = append(offs, off{k, v})
	}
	var nb bytes.Buffer
	nb.WriteString("glibc-ld.so.cache1.1")
	binary.Write(&nb, le, uint32(len(entries)))
	binary.Write(&nb, le, uint32(strs.Len()))
	nb.Write(make([]byte, 48-nb.Len()))
	for i, e := range entries {
		binary.Write(&nb, le, e.Flags)
		binary.Write(&nb, le, offs[i].k)
		binary.Write(&nb, le, offs[i].v)
		binary.Write(&nb, le, uint32(0))
		binary.Write(&nb, le, uint64(0))
	}
	nb.Write(strs.Bytes())
	if !old {
		return nb.Bytes()
	}
	// The old entries point into the same strings: their offsets count
	// from the end of the old entries, where the new header starts.
	var ob bytes.Buffer
	ob.WriteString("ld.so-1.7.0\x00")
	binary.Write(&ob, le, uint32(len(entries)))
	for i, e := range entries {
		binary.Write(&ob, le, e.Flags)
		binary.Write(&ob, le, offs[i].k)
		binary.Write(&ob, le, offs[i].v)
	}
	for ob.Len()%8 != 0 {
		ob.WriteByte(0)
	}
	ob.Write(nb.Bytes())
	return ob.Bytes()
}

const x8664 = 0x0303

func TestParseLDCache(t *testing.T) {
	entries := []check.LDCacheEntry{
		{Name: "libnvidia-ml.so.1", Path: "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", Flags: x8664},
		{Name: "libcuda.so.1", Path: "/usr/lib/i386-linux-gnu/libcuda.so.1", Flags: 0x0003},
		{Name: "libcuda.so.1", Path: "/usr/lib/x86_64-linux-gnu/libcuda.so.1", Flags: x8664},
		{Name: "libcuda.so.1", Path: "/usr/lib/aarch64-linux-gnu/libcuda.so.1", Flags: 0x0a03},
	}
	newFmt := ldcache(false, entries...)
	tests := []struct {
		name    string
		data    []byte
		want    int
		wantErr string
	}{
		{"new format", newFmt, 4, ""},
		{"old then new", ldcache(true, entries...), 4, ""},
		{"empty cache", ldcache(false), 0, ""},
		{"not a cache", []byte("hello"), 0, "unknown format"},
		{"header truncated", newFmt[:30], 0, "truncated"},
		{"entries truncated", newFmt[:60], 0, "do not fit"},
		{"old header truncated", []byte("ld.so-1.7.0\x00\x01"), 0, "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := check.ParseLDCache(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("%d entries, want %d: %+v", len(got), tc.want, got)
			}
			for i := range got {
				if got[i] != entries[i] {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], entries[i])
				}
			}
			if tc.want > 0 {
				if p := check.LDCacheLookup(got, "libcuda.so.1", check.LDFlagX8664); p != "/usr/lib/x86_64-linux-gnu/libcuda.so.1" {
					t.Errorf("x86-64 lookup %q", p)
				}
				if p := check.LDCacheLookup(got, "libcuda.so.1", check.LDFlagAArch64); p != "/usr/lib/aarch64-linux-gnu/libcuda.so.1" {
					t.Errorf("aarch64 lookup %q", p)
				}
				if p := check.LDCacheLookup(got, "libnvidia-ml.so.1", check.LDFlagAArch64); p != "" {
					t.Errorf("lookup of a library of another architecture %q", p)
				}
			}
		})
	}
}

// TestParseThisMachinesLDCache reads the real cache of the machine the
// tests run on: glibc's own ldconfig wrote it, not our test writer.
func TestParseThisMachinesLDCache(t *testing.T) {
	b, err := os.ReadFile("/etc/ld.so.cache")
	if err != nil {
		t.Skip("no /etc/ld.so.cache here")
	}
	entries, err := check.ParseLDCache(b)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Name == "libc.so.6" && strings.HasPrefix(e.Path, "/") && strings.HasSuffix(e.Path, "/libc.so.6") {
			found = true
		}
	}
	if !found {
		t.Errorf("libc.so.6 is not among the %d entries", len(entries))
	}
}

func FuzzParseLDCache(f *testing.F) {
	f.Add(ldcache(false, check.LDCacheEntry{Name: "libcuda.so.1", Path: "/x/libcuda.so.1", Flags: x8664}))
	f.Add(ldcache(true, check.LDCacheEntry{Name: "a", Path: "b", Flags: 3}))
	f.Add([]byte("glibc-ld.so.cache1.1"))
	f.Add([]byte("ld.so-1.7.0\x00\xff\xff\xff\x7f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := check.ParseLDCache(b)
		if err != nil && entries != nil && !bytes.HasPrefix(b, []byte("ld.so-1.7.0")) {
			t.Errorf("entries and an error: %v", err)
		}
		// Every entry's strings come from the input.
		for _, e := range entries {
			if !bytes.Contains(b, []byte(e.Name)) || !bytes.Contains(b, []byte(e.Path)) {
				t.Errorf("entry %+v is not in the input", e)
			}
		}
	})
}

func TestParseDriverVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu Oct  2 17:54:44 UTC 2025\nGCC version:  gcc version 12.2.0\n", "580.159.04"},
		{"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  575.57.08  Release Build  (dvs-builder@U16-I3-B03-4-3)  Wed May 21 2025\n", "575.57.08"},
		{"NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  570.86.15  Release Build\n", "570.86.15"},
		{"NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.42  Mon\n", "470.42"},
		{"GCC version: gcc 12.2.0\n", ""},
		{"", ""},
		{"NVRM version: garbage 1.2 3.4.5\n", ""},
	}
	for _, tc := range tests {
		if got := check.ParseDriverVersion([]byte(tc.in)); got != tc.want {
			t.Errorf("ParseDriverVersion(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParseDriverVersion(f *testing.F) {
	f.Add([]byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v := check.ParseDriverVersion(b)
		if v != "" && !bytes.Contains(b, []byte(v)) {
			t.Errorf("version %q is not in the input", v)
		}
	})
}
