package diag

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
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

// mountTarget is a path the mounts check looks at.
type mountTarget struct {
	label, path string
	// persist: results written here should outlive the container.
	persist bool
}

func mountTargets(e *Env) []mountTarget {
	ws := e.Get("NSS_WORKSPACE")
	if ws == "" {
		ws = DefaultWorkspace
	}
	ts := []mountTarget{{"workspace", ws, true}}
	if h := e.Get("HF_HOME"); h != "" {
		ts = append(ts, mountTarget{"HF_HOME", h, true})
	}
	art := e.Get("NSS_ARTIFACTS_PATH")
	if art == "" {
		art = "safe-synthesizer-artifacts"
	}
	if !path.IsAbs(art) {
		art = path.Join(ws, art) // the working directory is the workspace
	}
	ts = append(ts, mountTarget{"artifacts", art, true})
	if v := e.Get("VLLM_CACHE_ROOT"); v != "" {
		ts = append(ts, mountTarget{"VLLM_CACHE_ROOT", v, false})
	}
	return ts
}

// Mounts checks how the workspace, the Hugging Face cache, the artifacts
// folder and vLLM's cache are mounted, who owns them, whether they can be
// written (a real create-and-remove probe) and how much space is free.
var Mounts = Check{
	ID: "mounts", Title: "mounts", Timeout: 3 * defaultCheckTimeout, Doing: "inspecting mounts and probing writes",
	Run: func(ctx context.Context, e *Env) Result {
		b, err := os.ReadFile(e.Path("/proc/self/mountinfo"))
		if err != nil {
			return Result{Status: Skip, Message: "cannot read /proc/self/mountinfo: " + unwrapPath(err).Error()}
		}
		mounts := ParseMountinfo(b)
		rt := e.Runtime()
		worst := OK
		var msgs, hints []string
		var items []map[string]any
		targets := mountTargets(e)
		ws := targets[0].path
		// Mounts below the workspace: the usual -v host:/workspace/data, or
		// the relative -v data:/workspace/data mistake.
		var below []map[string]any
		for _, m := range mounts {
			if !strings.HasPrefix(m.Point, strings.TrimSuffix(ws, "/")+"/") {
				continue
			}
			kind, vol := MountKind(m)
			item := map[string]any{"mount_point": m.Point, "kind": kind}
			below = append(below, item)
			if kind == "named-volume" {
				item["volume"] = vol
				worst = max(worst, Warn)
				msgs = append(msgs, fmt.Sprintf("%s is the Docker named volume %q, not a host folder: a relative -v %s:%s creates an empty volume", m.Point, vol, vol, m.Point))
				hints = append(hints, "use an absolute host path: "+rt.MountHint(`$(pwd)/`+vol, m.Point))
			}
		}
		for _, t := range targets {
			item := map[string]any{"label": t.label, "path": t.path}
			items = append(items, item)
			if !e.Exists(t.path) && t.label != "artifacts" {
				// Its own check reports a missing workspace or cache.
				item["exists"] = false
				continue
			}
			// The deepest existing folder at or above the path is what a
			// write would land in.
			dir := t.path
			for dir != "/" && !e.Exists(dir) {
				dir = path.Dir(dir)
			}
			m, ok := MountFor(mounts, t.path)
			if !ok {
				continue
			}
			kind, vol := MountKind(m)
			item["mount_point"], item["kind"], item["fs_type"] = m.Point, kind, m.FSType
			if vol != "" {
				item["volume"] = vol
			}
			if fi, err := os.Stat(e.Path(dir)); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					item["owner_uid"] = int(st.Uid)
				}
			}
			if fs, err := e.statfs(e.Path(dir)); err == nil {
				item["free_bytes"] = fs.Free
			}
			werr := writeProbe(e.Path(dir))
			item["writable"] = werr == nil
			status, msg, hint := OK, "", ""
			switch {
			case kind == "named-volume" && t.label == "workspace" && m.Point == t.path:
				status = Warn
				msg = fmt.Sprintf("%s (%s) is the Docker named volume %q, not a host folder: a relative -v %s:%s creates an empty volume", t.label, m.Point, vol, vol, m.Point)
				hint = "use an absolute host path: " + rt.MountHint(`$(pwd)/`+vol, m.Point)
			case t.label == "workspace" && kind == "container-layer" && len(below) > 0:
				// The data is mounted below the workspace; fine.
			case t.persist && (kind == "container-layer" || kind == "tmpfs"):
				status = Warn
				msg = fmt.Sprintf("%s (%s) is on the container's %s: what is written there is lost when the container exits", t.label, t.path, map[string]string{"tmpfs": "tmpfs", "container-layer": "own filesystem"}[kind])
				hint = "mount a host folder there: " + rt.MountHint(`$(pwd)/`+path.Base(t.path), t.path)
			case werr != nil && t.persist:
				status = Warn
				msg = fmt.Sprintf("%s (%s) is not writable by uid %d: %v", t.label, dir, uid(e), werr)
				hint = "run as the owner of the folder: " + rt.UserHint()
			}
			if status > worst {
				worst = status
			}
			if msg != "" {
				msgs = append(msgs, msg)
				hints = append(hints, hint)
			}
		}
		data := map[string]any{"paths": items, "below_workspace": below}
		if len(msgs) == 0 {
			var parts []string
			for _, it := range items {
				if k, ok := it["kind"].(string); ok {
					parts = append(parts, fmt.Sprintf("%s: %s", it["label"], k))
				}
			}
			return Result{Status: OK, Data: data, Message: strings.Join(parts, ", ")}
		}
		return Result{Status: worst, Data: data, Message: strings.Join(msgs, "; "), Hint: strings.Join(hints, "; ")}
	},
}

// writeProbePrefix names the mounts check's probe files; the workspace
// check does not count them as content.
const writeProbePrefix = ".nss-write-probe-"

// writeProbe creates and removes a file in dir.
func writeProbe(dir string) error {
	f, err := os.CreateTemp(dir, writeProbePrefix+"*")
	if err != nil {
		return unwrapPath(err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
