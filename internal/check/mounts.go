package check

import (
	"bufio"
	"bytes"
	"path"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	// Root is the path inside the source filesystem that is mounted.
	Root string
	// Point is where it is mounted in this container.
	Point   string
	Options string
	FSType  string
	Source  string
}

// ParseMountinfo reads /proc/self/mountinfo text. Malformed lines are
// skipped. Octal escapes (\040 for a space) are decoded.
func ParseMountinfo(b []byte) []Mount {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 10 || sep < 0 || sep+2 >= len(f) {
			continue
		}
		out = append(out, Mount{Root: unescape(f[3]), Point: unescape(f[4]), Options: f[5],
			FSType: f[sep+1], Source: unescape(f[sep+2])})
	}
	return out
}

// unescape decodes mountinfo's \ooo octal escapes.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MountFor returns the mount that holds p: the one with the longest mount
// point that is p or a parent of it (the last such, as later mounts hide
// earlier ones).
func MountFor(mounts []Mount, p string) (Mount, bool) {
	p = path.Clean(p)
	best, found := Mount{}, false
	for _, m := range mounts {
		if m.Point == p || m.Point == "/" || strings.HasPrefix(p, strings.TrimSuffix(m.Point, "/")+"/") {
			if !found || len(m.Point) >= len(best.Point) {
				best, found = m, true
			}
		}
	}
	return best, found
}

// anonymousVolume matches the 64-hex names Docker gives anonymous volumes.
func anonymousVolume(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, c := range name {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// MountKind classifies a mount: "bind", "named-volume", "anonymous-volume",
// "tmpfs" or "container-layer" (the container's own ephemeral filesystem).
func MountKind(m Mount) (kind, volume string) {
	switch {
	case m.Point == "/" || m.FSType == "overlay" && m.Point == "/":
		return "container-layer", ""
	case m.FSType == "tmpfs" || m.FSType == "ramfs":
		return "tmpfs", ""
	}
	// Docker and Podman keep volumes at .../volumes/NAME/_data.
	if i := strings.Index(m.Root, "/volumes/"); i >= 0 && strings.HasSuffix(m.Root, "/_data") {
		name := strings.TrimSuffix(m.Root[i+len("/volumes/"):], "/_data")
		if !strings.Contains(name, "/") {
			if anonymousVolume(name) {
				return "anonymous-volume", name
			}
			return "named-volume", name
		}
	}
	if m.FSType == "overlay" {
		return "container-layer", ""
	}
	return "bind", ""
}
