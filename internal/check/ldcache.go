package check

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// LDCacheEntry is one library in /etc/ld.so.cache: its soname, the path the
// loader maps it to, and glibc's flags (the ABI and architecture it is for).
type LDCacheEntry struct {
	Name  string
	Path  string
	Flags int32
}

// The ld.so.cache formats glibc writes: the new one alone (glibc 2.32 and
// later), or the old one followed by the new one (older ldconfig).
var (
	ldCacheOld = []byte("ld.so-1.7.0")
	ldCacheNew = []byte("glibc-ld.so.cache1.1")
)

// ld.so.cache flags: the library type in the low byte, the architecture
// in the next.
const (
	ldFlagTypeMask = 0x00ff
	ldFlagELFLibc6 = 0x0003
	ldFlagArchMask = 0xff00
	// LDFlagX8664 and LDFlagAArch64 mark 64-bit x86 and Arm libraries.
	LDFlagX8664   = 0x0300
	LDFlagAArch64 = 0x0a00
)

// ParseLDCache decodes /etc/ld.so.cache (little-endian, as on x86-64 and
// aarch64) into its entries, in file order (glibc sorts them by name,
// the highest priority first). It reads the new format, alone or after the
// old one; a cache in the old format only yields the old entries.
func ParseLDCache(b []byte) ([]LDCacheEntry, error) {
	le := binary.LittleEndian
	off := 0
	var old []LDCacheEntry
	if bytes.HasPrefix(b, ldCacheOld) {
		// struct cache_file { char magic[11]; uint32 nlibs; struct
		// file_entry { int32 flags; uint32 key, value; } libs[]; }
		// The old format's string offsets count from the string table
		// after the entries, which is where the new format starts.
		hdr := len(ldCacheOld) + 1 // magic, then padding to 4
		if len(b) < hdr+4 {
			return nil, errors.New("ld.so.cache: old header truncated")
		}
		n := int(le.Uint32(b[hdr:]))
		start := hdr + 4
		if n < 0 || n > (len(b)-start)/12 {
			return nil, fmt.Errorf("ld.so.cache: %d old entries do not fit", n)
		}
		strtab := start + 12*n
		for i := 0; i < n; i++ {
			e := b[start+12*i:]
			k, v := str(b, strtab, le.Uint32(e[4:])), str(b, strtab, le.Uint32(e[8:]))
			old = append(old, LDCacheEntry{Name: k, Path: v, Flags: int32(le.Uint32(e))})
		}
		// The new format follows, aligned to 8 bytes.
		off = (strtab + 7) &^ 7
		if i := bytes.Index(b[min(off, len(b)):], ldCacheNew); i >= 0 {
			off += i
		} else {
			return old, nil
		}
	}
	nb := b[off:]
	if !bytes.HasPrefix(nb, ldCacheNew) {
		return nil, errors.New("ld.so.cache: unknown format")
	}
	// struct cache_file_new { char magic[17]; char version[3]; uint32
	// nlibs; uint32 len_strings; uint8 flags; uint8 pad[3]; uint32
	// extension_offset; uint32 unused[3]; struct file_entry_new { int32
	// flags; uint32 key, value; uint32 osversion; uint64 hwcap; } libs[]; }
	const hdr, size = 48, 24
	if len(nb) < hdr {
		return nil, errors.New("ld.so.cache: header truncated")
	}
	n := int(le.Uint32(nb[20:]))
	if n < 0 || n > (len(nb)-hdr)/size {
		return nil, fmt.Errorf("ld.so.cache: %d entries do not fit in %d bytes", n, len(nb))
	}
	out := make([]LDCacheEntry, 0, n)
	for i := 0; i < n; i++ {
		e := nb[hdr+size*i:]
		// The new format's string offsets count from its own header.
		k, v := str(nb, 0, le.Uint32(e[4:])), str(nb, 0, le.Uint32(e[8:]))
		out = append(out, LDCacheEntry{Name: k, Path: v, Flags: int32(le.Uint32(e))})
	}
	return out, nil
}

// str reads the NUL-terminated string at base+off in b, or "" when it lies
// outside b.
func str(b []byte, base int, off uint32) string {
	i := base + int(off)
	if int(off) < 0 || i < 0 || i >= len(b) {
		return ""
	}
	end := bytes.IndexByte(b[i:], 0)
	if end < 0 {
		return ""
	}
	return string(b[i : i+end])
}

// LDCacheLookup returns the path the cache maps name to for a 64-bit
// library of arch (LDFlagX8664 or LDFlagAArch64), or "".
func LDCacheLookup(entries []LDCacheEntry, name string, arch int32) string {
	for _, e := range entries {
		if e.Name == name && e.Flags&ldFlagTypeMask == ldFlagELFLibc6 && e.Flags&ldFlagArchMask == arch {
			return e.Path
		}
	}
	return ""
}
