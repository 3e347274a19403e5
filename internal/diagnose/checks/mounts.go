package checks

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/textpath"

	"context"
	"os"
	"path"
)

// mountTarget is a path the mounts check looks at.
type mountTarget struct {
	label, path string
	// persist: results written here should outlive the container.
	persist bool
}

// mountTargets lists the paths as the start-up checks and the target read
// them: a relative NSS_WORKSPACE against the working directory, HF_HOME
// expanded as huggingface_hub expands it ("~/hf", "$HOME/hf") and, when
// relative or set but empty, read from the working directory (an empty
// HF_HOME is the working directory itself).
func mountTargets(e *check.Env) []mountTarget {
	ws := check.WorkspaceDir(e)
	ts := []mountTarget{{"workspace", ws, true}}
	if _, set := e.Getenv("HF_HOME"); set {
		h := check.HFHome(e)
		if abs, ok := e.InWorkDir(h); ok {
			h = abs
		}
		ts = append(ts, mountTarget{"HF_HOME", h, true})
	}
	art := e.Get("NSS_ARTIFACTS_PATH")
	if art == "" {
		art = "safe-synthesizer-artifacts"
	}
	if !path.IsAbs(art) {
		art = textpath.Join(ws, art) // the working directory is the workspace
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
var Mounts = check.Check{
	ID: "mounts", Title: "mounts", Timeout: 3 * defaultCheckTimeout, Doing: "inspecting mounts and probing writes",
	Paths: func(e *check.Env) []string {
		var ps []string
		for _, t := range mountTargets(e) {
			ps = append(ps, t.path)
		}
		return readPaths(e, ps...)
	},
	Run: func(ctx context.Context, e *check.Env) check.Result {
		b, err := check.ReadSmall(e.Path("/proc/self/mountinfo"), maxMountinfo)
		if err != nil {
			return check.Result{Status: check.Skip, Message: "cannot read /proc/self/mountinfo: " + check.UnwrapPath(err).Error()}
		}
		mounts := check.ParseMountinfo(b)
		if len(mounts) == 0 {
			return check.Result{Status: check.Skip, Message: "/proc/self/mountinfo lists no mount that can be read"}
		}
		rt := e.Runtime()
		worst := check.OK
		var msgs, hints []string
		var items []map[string]any
		targets := mountTargets(e)
		ws := targets[0].path
		// Mounts below the workspace: the usual -v host:/workspace/data, or
		// the relative -v data:/workspace/data mistake.
		// At most maxListed of them are listed and named, however many
		// there are (mountinfo can be megabytes).
		var below []map[string]any
		belowCount, volumes := 0, 0
		for _, m := range mounts {
			if !strings.HasPrefix(m.Point, strings.TrimSuffix(ws, "/")+"/") {
				continue
			}
			belowCount++
			kind, vol := check.MountKind(m)
			if kind == "named-volume" {
				worst = max(worst, check.Warn)
				volumes++
			}
			if belowCount > maxListed {
				continue
			}
			item := map[string]any{"mount_point": m.Point, "kind": kind}
			below = append(below, item)
			if kind == "named-volume" {
				item["volume"] = vol
				msgs = append(msgs, fmt.Sprintf("%s is the Docker named volume %q, not a host folder: a relative -v %s:%s creates an empty volume", m.Point, vol, vol, m.Point))
				hints = append(hints, "use an absolute host path: "+rt.MountHint(`$(pwd)/`+vol, m.Point))
			}
		}
		if belowCount > maxListed {
			msgs = append(msgs, fmt.Sprintf("%d mounts below the workspace (%d of them named volumes); the first %d are listed", belowCount, volumes, maxListed))
		}
		for _, t := range targets {
			item := map[string]any{"label": t.label, "path": t.path}
			items = append(items, item)
			if !e.Exists(t.path) && t.label != "artifacts" {
				// Its own check reports a missing workspace or cache.
				item["exists"] = false
				continue
			}
			// Where the kernel takes the path (links followed, ".." after
			// them), never into a mount that may hang: its mount, and the
			// deepest existing folder at or above it, which is what a
			// write would land in.
			loc := e.Resolve(t.path)
			m := loc.Mount
			if m.Point == "" {
				continue
			}
			dir := loc.Resolved
			for dir != "/" && !e.Exists(dir) {
				dir = path.Dir(dir)
			}
			kind, vol := check.MountKind(m)
			item["mount_point"], item["kind"], item["fs_type"] = m.Point, kind, m.FSType
			if vol != "" {
				item["volume"] = vol
			}
			if fi, err := os.Stat(e.Path(dir)); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					item["owner_uid"] = int(st.Uid)
				}
			}
			if fs, err := e.StatfsPath(e.Path(dir)); err == nil {
				item["free_bytes"] = fs.Free
			}
			werr := writeProbe(e.Path(dir))
			item["writable"] = werr == nil
			status, msg, hint := check.OK, "", ""
			switch {
			case kind == "named-volume" && t.label == "workspace" && m.Point == loc.Resolved:
				status = check.Warn
				msg = fmt.Sprintf("%s (%s) is the Docker named volume %q, not a host folder: a relative -v %s:%s creates an empty volume", t.label, m.Point, vol, vol, m.Point)
				hint = "use an absolute host path: " + rt.MountHint(`$(pwd)/`+vol, m.Point)
			case t.label == "workspace" && kind == "container-layer" && len(below) > 0:
				// The data is mounted below the workspace; fine.
			case t.persist && (kind == "container-layer" || kind == "tmpfs"):
				status = check.Warn
				msg = fmt.Sprintf("%s (%s) is on the container's %s: what is written there is lost when the container exits", t.label, t.path, map[string]string{"tmpfs": "tmpfs", "container-layer": "own filesystem"}[kind])
				hint = "mount a host folder there: " + rt.MountHint(`$(pwd)/`+path.Base(t.path), t.path)
			case werr != nil && t.persist:
				status = check.Warn
				msg = fmt.Sprintf("%s (%s) is not writable by uid %d: %v", t.label, dir, e.EffectiveUID(), werr)
				hint = "run as the owner of the folder: " + rt.UserHint(e.IDs())
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
		if belowCount > maxListed {
			data["below_workspace_count"] = belowCount
		}
		if len(msgs) == 0 {
			var parts []string
			for _, it := range items {
				if k, ok := it["kind"].(string); ok {
					parts = append(parts, fmt.Sprintf("%s: %s", it["label"], k))
				}
			}
			if len(parts) == 0 {
				parts = append(parts, "no mount found for the workspace, HF_HOME or the artifacts")
			}
			return check.Result{Status: check.OK, Data: data, Message: strings.Join(parts, ", ")}
		}
		return check.Result{Status: worst, Data: data, Message: strings.Join(msgs, "; "), Hint: strings.Join(hints, "; ")}
	},
}

// maxListed bounds how many mounts below the workspace the report lists.
const maxListed = 20

// writeProbe creates and removes a file in dir.
func writeProbe(dir string) error {
	f, err := os.CreateTemp(dir, check.WriteProbePrefix+"*")
	if err != nil {
		return check.UnwrapPath(err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
