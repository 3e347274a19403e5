package checks

import (
	"bufio"
	"bytes"
	"context"
	"path/filepath"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/textpath"
)

// DefaultVenv is where the image installs its Python environment.
const DefaultVenv = "/opt/venv"

// trackedPackages are the distributions whose versions the report lists, by
// normalised name (PEP 503, with "_"), with the names a user knows them by.
var trackedPackages = []struct{ norm, name string }{
	{"nemo_safe_synthesizer", "safe-synthesizer"},
	{"safe_synthesizer", "safe-synthesizer"},
	{"torch", "torch"},
	{"vllm", "vllm"},
	{"transformers", "transformers"},
	{"huggingface_hub", "huggingface-hub"},
}

// normalise folds a distribution name as PEP 503 does, with "_".
func normalise(name string) string {
	name = strings.ToLower(name)
	return strings.NewReplacer("-", "_", ".", "_").Replace(name)
}

// PackageVersions reads the installed versions from the .dist-info folders
// of the virtual environment's site-packages, without starting Python.
func PackageVersions(e *check.Env, venv string) map[string]string {
	found := map[string]string{}
	libs, _ := readDir(e.Path(textpath.Join(venv, "lib")))
	for _, lib := range libs {
		if !strings.HasPrefix(lib.Name(), "python3") {
			continue
		}
		sp := e.Path(textpath.Join(venv, "lib/"+lib.Name()+"/site-packages"))
		entries, err := readDir(sp)
		if err != nil {
			continue
		}
		for _, d := range entries {
			n := d.Name()
			if !strings.HasSuffix(n, ".dist-info") {
				continue
			}
			dist, _, _ := strings.Cut(strings.TrimSuffix(n, ".dist-info"), "-")
			for _, p := range trackedPackages {
				if normalise(dist) != p.norm || found[p.name] != "" {
					continue
				}
				if v := metadataVersion(filepath.Join(sp, n, "METADATA")); v != "" {
					found[p.name] = v
				}
			}
		}
	}
	return found
}

// metadataVersion reads the Version: header of a METADATA file.
func metadataVersion(path string) string {
	b, err := check.ReadSmall(path, 16<<10)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Versions lists the versions of the image's key Python packages. Missing
// packages are a warning only when safe-synthesizer itself is missing.
var Versions = check.Check{
	ID: "versions", Title: "installed packages", Timeout: defaultCheckTimeout,
	Paths: func(e *check.Env) []string {
		venv := e.Get("NSS_VENV")
		if venv == "" {
			venv = DefaultVenv
		}
		return readPaths(e, venv)
	},
	Run: func(ctx context.Context, e *check.Env) check.Result {
		venv := e.Get("NSS_VENV")
		if venv == "" {
			venv = DefaultVenv
		}
		got := PackageVersions(e, venv)
		data := map[string]any{"venv": venv}
		var parts, missing []string
		for _, name := range []string{"safe-synthesizer", "torch", "vllm", "transformers", "huggingface-hub"} {
			if v, ok := got[name]; ok {
				data[name] = v
				parts = append(parts, name+" "+v)
			} else {
				data[name] = nil
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			parts = append(parts, "not installed: "+strings.Join(missing, ", "))
		}
		msg := strings.Join(parts, ", ")
		if _, ok := got["safe-synthesizer"]; !ok {
			return check.Result{Status: check.Warn, Data: data, Message: "safe-synthesizer is not installed in " + venv + " (" + msg + ")",
				Hint: "set NSS_VENV to the image's virtual environment, or use the published image"}
		}
		return check.Result{Status: check.OK, Data: data, Message: msg}
	},
}
