// Command fakeuv stands in for uv in the e2e image build, where PyPI is out
// of reach. The e2e harness puts it at /uv and /uvx of a stand-in
// ghcr.io/astral-sh/uv image, so containers/Dockerfile.cuda runs it exactly
// where it runs the real uv.
//
// It understands `uv sync` with the flags the Dockerfile uses and nothing
// else (an unknown flag fails the build, as with uv). It records every call
// in $UV_PROJECT_ENVIRONMENT/uv-calls.log, creates the virtual environment
// over the base image's python3, and installs:
//
//   - a .dist-info folder with METADATA for every distribution the sync
//     selects: [project] dependencies, the requested extras of
//     [project.optional-dependencies] and the included [dependency-groups],
//     minus --no-install-package; versions come from "name==version" pins;
//   - unless --no-install-project, the project itself: its dist-info, its
//     packages copied from src/ (or a .pth file for an editable install),
//     and each [project.scripts] entry as the fake safe-synthesizer, which
//     the harness appends to this binary (see payload).
//
// It reads pyproject.toml from the working directory and requires uv.lock
// beside it (UV_FROZEN=true), as a frozen sync does.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// payloadMagic ends the binary when a target is appended: the target's
// bytes, then their length as a little-endian uint64, then the magic.
const payloadMagic = "NSSFAKEUVTARGET1"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "version") {
		fmt.Println("uv 0.9.30 (nss-entrypoint e2e stand-in)")
		return nil
	}
	if len(args) == 0 || args[0] != "sync" {
		return fmt.Errorf("the uv stand-in only runs `uv sync`, not %q", args)
	}
	venv := os.Getenv("UV_PROJECT_ENVIRONMENT")
	if venv == "" {
		return errors.New("UV_PROJECT_ENVIRONMENT is not set")
	}
	if err := record(venv, args); err != nil {
		return err
	}
	opts, err := parseSync(args[1:])
	if err != nil {
		return err
	}
	if os.Getenv("UV_FROZEN") != "true" {
		return errors.New("the uv stand-in only does frozen syncs (UV_FROZEN=true)")
	}
	if _, err := os.Stat("uv.lock"); err != nil {
		return errors.New("unable to find lockfile at `uv.lock`, but `--frozen` was provided")
	}
	var proj pyproject
	if _, err := toml.DecodeFile("pyproject.toml", &proj); err != nil {
		return fmt.Errorf("no usable `pyproject.toml` in the working directory: %w", err)
	}
	return sync(venv, proj, opts)
}

func record(venv string, args []string) error {
	if err := os.MkdirAll(venv, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(venv, "uv-calls.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, strings.Join(args, " "))
	return err
}

type syncOpts struct {
	noProject, noEditable bool
	extras, groups        []string
	noGroups, skip        []string
}

func parseSync(args []string) (syncOpts, error) {
	var o syncOpts
	lists := map[string]*[]string{"--extra": &o.extras, "--group": &o.groups, "--no-group": &o.noGroups, "--no-install-package": &o.skip}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--no-install-project":
			o.noProject = true
		case a == "--no-editable":
			o.noEditable = true
		case lists[a] != nil:
			if i+1 >= len(args) {
				return o, fmt.Errorf("a value is required for '%s <NAME>' but none was supplied", a)
			}
			i++
			*lists[a] = append(*lists[a], args[i])
		default:
			return o, fmt.Errorf("unexpected argument '%s' found", a)
		}
	}
	return o, nil
}

type pyproject struct {
	Project struct {
		Name                 string              `toml:"name"`
		Version              string              `toml:"version"`
		Dynamic              []string            `toml:"dynamic"`
		Dependencies         []string            `toml:"dependencies"`
		OptionalDependencies map[string][]string `toml:"optional-dependencies"`
		Scripts              map[string]string   `toml:"scripts"`
	} `toml:"project"`
	DependencyGroups map[string][]string `toml:"dependency-groups"`
}

var requirement = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([^;\s]+))?`)

func sync(venv string, p pyproject, o syncOpts) error {
	sp, err := makeVenv(venv)
	if err != nil {
		return err
	}
	reqs := slices.Clone(p.Project.Dependencies)
	for _, e := range o.extras {
		deps, ok := p.Project.OptionalDependencies[e]
		if !ok {
			return fmt.Errorf("extra `%s` is not defined in the project's `optional-dependencies` table", e)
		}
		reqs = append(reqs, deps...)
	}
	groups := slices.Clone(o.groups)
	if _, ok := p.DependencyGroups["dev"]; ok && !slices.Contains(o.noGroups, "dev") {
		groups = append(groups, "dev") // uv syncs the dev group by default
	}
	for _, g := range groups {
		deps, ok := p.DependencyGroups[g]
		if !ok {
			return fmt.Errorf("group `%s` is not defined in the project's `dependency-groups` table", g)
		}
		reqs = append(reqs, deps...)
	}
	for _, r := range reqs {
		m := requirement.FindStringSubmatch(r)
		if m == nil {
			return fmt.Errorf("unparsable requirement %q", r)
		}
		if slices.Contains(o.skip, m[1]) {
			continue
		}
		version := m[2]
		if version == "" {
			version = "0.0.0"
		}
		if err := distInfo(sp, m[1], version); err != nil {
			return err
		}
	}
	if o.noProject {
		return nil
	}
	return installProject(venv, sp, p, !o.noEditable)
}

// makeVenv creates the environment over the first python3 on PATH outside
// the environment itself and returns its site-packages.
func makeVenv(venv string) (string, error) {
	py := ""
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" || strings.HasPrefix(dir, venv) {
			continue
		}
		if c := filepath.Join(dir, "python3"); isExecutable(c) {
			py = c
			break
		}
	}
	if py == "" {
		return "", errors.New("no interpreter found (UV_NO_MANAGED_PYTHON: python3 must be on PATH)")
	}
	out, err := exec.Command(py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])").Output()
	if err != nil {
		return "", fmt.Errorf("%s does not run: %w", py, err)
	}
	full := strings.TrimSpace(string(out))
	short := full[:strings.LastIndex(full, ".")]
	sp := filepath.Join(venv, "lib", "python"+short, "site-packages")
	if err := os.MkdirAll(sp, 0o755); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
		return "", err
	}
	for _, name := range []string{"python", "python3", "python" + short} {
		link := filepath.Join(venv, "bin", name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(py, link); err != nil {
				return "", err
			}
		}
	}
	cfg := fmt.Sprintf("home = %s\ninclude-system-site-packages = false\nversion_info = %s\n", filepath.Dir(py), full)
	return sp, os.WriteFile(filepath.Join(venv, "pyvenv.cfg"), []byte(cfg), 0o644)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func normalise(name string) string {
	return strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(name))
}

func distInfo(sp, name, version string) error {
	dir := filepath.Join(sp, normalise(name)+"-"+version+".dist-info")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	meta := fmt.Sprintf("Metadata-Version: 2.4\nName: %s\nVersion: %s\nSummary: stand-in installed by the e2e uv\n", name, version)
	return os.WriteFile(filepath.Join(dir, "METADATA"), []byte(meta), 0o644)
}

func installProject(venv, sp string, p pyproject, editable bool) error {
	name := p.Project.Name
	if name == "" {
		return errors.New("pyproject.toml has no [project] name")
	}
	version := p.Project.Version
	if slices.Contains(p.Project.Dynamic, "version") {
		// uv-dynamic-versioning: the bypass, else no git here, so 0.0.0.
		version = cmpOr(os.Getenv("UV_DYNAMIC_VERSIONING_BYPASS"), "0.0.0")
	}
	if version == "" {
		return errors.New("pyproject.toml has no version")
	}
	src, err := filepath.Abs("src")
	if err != nil {
		return err
	}
	if editable {
		if err := os.WriteFile(filepath.Join(sp, "_"+normalise(name)+".pth"), []byte(src+"\n"), 0o644); err != nil {
			return err
		}
	} else if err := copyTree(src, sp); err != nil {
		return fmt.Errorf("install the project from src/: %w", err)
	}
	if err := distInfo(sp, name, version); err != nil {
		return err
	}
	if len(p.Project.Scripts) == 0 {
		return nil
	}
	target, err := payload()
	if err != nil {
		return err
	}
	for script := range p.Project.Scripts {
		if err := os.WriteFile(filepath.Join(venv, "bin", script), target, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

// payload returns the fake target appended to this executable.
func payload() ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return nil, err
	}
	trailer := 8 + len(payloadMagic)
	if len(b) < trailer || !bytes.Equal(b[len(b)-len(payloadMagic):], []byte(payloadMagic)) {
		return nil, errors.New("this uv stand-in carries no safe-synthesizer stand-in (the harness appends one)")
	}
	n := binary.LittleEndian.Uint64(b[len(b)-trailer:])
	if n > uint64(len(b)-trailer) {
		return nil, errors.New("corrupt payload trailer")
	}
	return b[len(b)-trailer-int(n) : len(b)-trailer], nil
}
