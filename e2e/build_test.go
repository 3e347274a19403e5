//go:build e2e

package e2e

// Tests of the image itself and of the user's build and run commands: what
// the build put in the image, BuildKit's layer cache, the mise and make
// tasks, and the fixes that came from comparing with upstream's image.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

// vertex is one step of BuildKit's plain progress output.
type vertex struct {
	name   string
	cached bool
}

// progressSteps parses BuildKit's plain progress ("#7 [runtime  5/14] RUN
// ...", "#7 CACHED") into the steps in the order they were announced.
func progressSteps(out string) []vertex {
	line := regexp.MustCompile(`(?m)^#(\d+) (.*)$`)
	var order []string
	names, cached := map[string]string{}, map[string]bool{}
	for _, m := range line.FindAllStringSubmatch(out, -1) {
		id, text := m[1], strings.TrimSpace(m[2])
		if _, ok := names[id]; !ok {
			names[id] = text
			order = append(order, id)
		}
		if text == "CACHED" {
			cached[id] = true
		}
	}
	var vs []vertex
	for _, id := range order {
		vs = append(vs, vertex{names[id], cached[id]})
	}
	return vs
}

// stageSteps returns the steps of a stage that contain all of words.
func stageSteps(vs []vertex, stage string, words ...string) []vertex {
	var out []vertex
	for _, v := range vs {
		if !strings.HasPrefix(v.name, "["+stage+" ") {
			continue
		}
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(v.name, w)
		}
		if ok {
			out = append(out, v)
		}
	}
	return out
}

func describe(vs []vertex) string {
	var b strings.Builder
	for _, v := range vs {
		state := "ran   "
		if v.cached {
			state = "CACHED"
		}
		name := v.name
		if len(name) > 110 {
			name = name[:110] + "..."
		}
		b.WriteString(state + " " + name + "\n")
	}
	return b.String()
}

// copyTree copies the files git knows in from (tracked and untracked, not
// ignored) into to.
func copyRepo(t *testing.T, from, to string) {
	t.Helper()
	out, err := exec.Command("git", "-C", from, "ls-files", "-z", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(from, rel)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a link
		}
		dst := filepath.Join(to, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

func copyNSS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := nssProject(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func rmi(tag string) { exec.Command("docker", "rmi", "-f", tag).Run() }

// TestLayerCache asserts the seed's promise from BuildKit's own progress
// output: a change to one Safe Synthesizer source file rebuilds the
// project sync (step 7) and what follows, nothing before it; a change to
// nss-entrypoint's Go source reruns the Go build and no uv sync.
func TestLayerCache(t *testing.T) {
	// BuildKit keeps its cache between runs: each run changes the sources
	// in a way no earlier run did.
	nonce := strconv.FormatInt(time.Now().UnixNano(), 10)
	t.Run("a Safe Synthesizer source file", func(t *testing.T) {
		nss := copyNSS(t)
		p := filepath.Join(nss, "src", "nemo_safe_synthesizer", "generation.py")
		if err := os.WriteFile(p, []byte("GENERATION = "+nonce+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tag := "nss-e2e-gpu:layer-cache-nss"
		defer rmi(tag)
		vars := append(buildVars(nss), "CONTAINER_GPU_IMAGE="+tag)
		out, _, err := bk.makeTarget("", "container-build-gpu", vars...)
		if err != nil {
			t.Fatal(err)
		}
		vs := progressSteps(out)
		syncs := stageSteps(vs, "runtime", "uv sync")
		if len(syncs) != 7 {
			t.Fatalf("%d uv sync steps in the progress output, want 7:\n%s", len(syncs), describe(vs))
		}
		for i, s := range syncs[:6] {
			if !s.cached {
				t.Errorf("sync step %d ran again after a source change:\n%s", i+1, describe(vs))
			}
		}
		if syncs[6].cached {
			t.Errorf("the project sync (step 7) came from the cache after a source change:\n%s", describe(vs))
		}
		for _, s := range append(stageSteps(vs, "runtime", "apt-get install"), stageSteps(vs, "entrypoint", "go build")...) {
			if !s.cached {
				t.Errorf("%q ran again after a Safe Synthesizer source change", s.name)
			}
		}
		for _, s := range stageSteps(vs, "runtime", "COPY --from=entrypoint") {
			if s.cached {
				t.Errorf("%q, after step 7, came from the cache", s.name)
			}
		}
		r := run(t, tag, "--entrypoint", "sh", "--", "-c", "cat /opt/venv/lib/python3*/site-packages/nemo_safe_synthesizer/generation.py")
		if strings.TrimSpace(r.stdout) != "GENERATION = "+nonce {
			t.Errorf("the rebuilt image has %q, not the changed source", r.stdout+r.stderr)
		}
	})
	t.Run("nss-entrypoint's Go source", func(t *testing.T) {
		repo := t.TempDir()
		copyRepo(t, testbuild.RepoRoot(), repo)
		main := filepath.Join(repo, "cmd", "nss-entrypoint", "layercache.go")
		if err := os.WriteFile(main, []byte("package main\n\n// layerCacheProbe changes the Go source.\nvar layerCacheProbe = \""+nonce+"\"\n\nfunc init() { _ = layerCacheProbe }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tag := "nss-e2e-gpu:layer-cache-go"
		defer rmi(tag)
		// The suite's own version stamps, so that only the source differs.
		stamp := func(args ...string) string {
			out, _ := exec.Command("git", append([]string{"-C", testbuild.RepoRoot()}, args...)...).Output()
			return strings.TrimSpace(string(out))
		}
		vars := append(buildVars(nssDir), "CONTAINER_GPU_IMAGE="+tag,
			"VERSION="+stamp("describe", "--tags", "--always", "--dirty"), "COMMIT="+stamp("rev-parse", "--short", "HEAD"))
		out, _, err := bk.makeTarget(repo, "container-build-gpu", vars...)
		if err != nil {
			t.Fatal(err)
		}
		vs := progressSteps(out)
		syncs := stageSteps(vs, "runtime", "uv sync")
		if len(syncs) != 7 {
			t.Fatalf("%d uv sync steps in the progress output, want 7:\n%s", len(syncs), describe(vs))
		}
		for i, s := range syncs {
			if !s.cached {
				t.Errorf("uv sync step %d ran again after a Go change:\n%s", i+1, describe(vs))
			}
		}
		builds := stageSteps(vs, "entrypoint", "go build")
		if len(builds) != 3 {
			t.Fatalf("%d go build steps, want 3:\n%s", len(builds), describe(vs))
		}
		suite := progressSteps(suiteBuild)
		for _, s := range builds {
			if s.cached {
				t.Errorf("%q came from the cache after a Go change", s.name)
			}
			// The same command as the suite's build ran it: only the
			// source changed, not the version stamps.
			if !slices.ContainsFunc(suite, func(v vertex) bool { return v.name == s.name }) {
				t.Errorf("%q is not the suite build's command", s.name)
			}
		}
	})
}

// diagnoseDoc runs --diagnose --format json in image.
func diagnoseDoc(t *testing.T, image string) (tool map[string]string, checks map[string]map[string]any) {
	t.Helper()
	r := run(t, image, "--entrypoint", "nss-entrypoint", "--shm-size=1g", "--", "--diagnose", "--format", "json")
	var doc struct {
		Tool   map[string]string `json:"tool"`
		Checks []struct {
			ID   string         `json:"id"`
			Data map[string]any `json:"data"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("--diagnose --format json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	checks = map[string]map[string]any{}
	for _, c := range doc.Checks {
		checks[c.ID] = c.Data
	}
	return doc.Tool, checks
}

func labels(t *testing.T, image string) map[string]string {
	t.Helper()
	r := docker(t, "image", "inspect", "-f", "{{json .Config.Labels}}", image)
	var l map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("labels of %s: %v %s", image, err, r.stderr)
	}
	return l
}

// TestWhatTheBuildInstalled reads back what the seven syncs, the build
// arguments and the labels put in the runtime image.
func TestWhatTheBuildInstalled(t *testing.T) {
	img := suiteImage(t)
	r := run(t, img, "--entrypoint", "cat", "--", "/opt/venv/uv-calls.log")
	var calls []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.Contains(l, "--group dev") {
			continue
		}
		calls = append(calls, l)
	}
	if len(calls) != 7 || !strings.HasPrefix(calls[0], "sync --no-install-project --no-group dev") ||
		!strings.HasPrefix(calls[6], "sync --no-editable --extra engine --extra cu129 --no-group dev") {
		t.Errorf("uv calls in the runtime image:\n%s", r.stdout)
	}
	tool, checks := diagnoseDoc(t, img)
	if tool["cuda_variant"] != "cu129" {
		t.Errorf("cuda_variant %q", tool["cuda_variant"])
	}
	for k, want := range map[string]string{"safe-synthesizer": e2ePackageVersion, "torch": "2.8.0+cu129", "vllm": "0.11.0",
		"transformers": "4.57.1", "huggingface-hub": "0.35.3"} {
		if got, _ := checks["versions"][k].(string); got != want {
			t.Errorf("--diagnose: %s %q, want %q", k, got, want)
		}
	}
	l := labels(t, img)
	for k, want := range map[string]string{
		"org.opencontainers.image.vendor":          "NVIDIA",
		"org.opencontainers.image.version":         e2ePackageVersion,
		"com.nvidia.nemo.safe-synthesizer.extra":   "cu129",
		"com.nvidia.nemo.safe-synthesizer.variant": "cu129",
	} {
		if l[k] != want {
			t.Errorf("label %s=%q, want %q", k, l[k], want)
		}
	}
	if !strings.Contains(l["org.opencontainers.image.usage"], "/workspace/.hf_cache") {
		t.Errorf("usage label %q", l["org.opencontainers.image.usage"])
	}
	// uv stays out of the runtime image: its stage is mounted, not copied.
	if r := run(t, img, "--entrypoint", "sh", "--", "-c", "command -v uv"); r.code == 0 {
		t.Errorf("uv is in the runtime image at %s", r.stdout)
	}
}

// TestRuntimeImageCompilesC: Triton compiles C at run time ("Failed to find
// C compiler" otherwise).
func TestRuntimeImageCompilesC(t *testing.T) {
	src := "#include <stdio.h>\n#include <omp.h>\nint main(void) { printf(\"compiled, %d\\n\", omp_get_max_threads() > 0); return 42; }\n"
	r := run(t, suiteImage(t), "--entrypoint", "sh", "--", "-c",
		"printf '%s' \"$0\" > /tmp/t.c && gcc -fopenmp -o /tmp/t /tmp/t.c && /tmp/t", src)
	if r.code != 42 || strings.TrimSpace(r.stdout) != "compiled, 1" {
		t.Errorf("gcc in the runtime image: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestDevImage: no entrypoint, a shell by default, git trusts /workspace.
func TestDevImage(t *testing.T) {
	dev := devImage(t)
	r := run(t, dev, "--", "true")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("docker run %s true: exit %d stdout %q stderr %q", dev, r.code, r.stdout, r.stderr)
	}
	r = run(t, dev, "--", "sh", "-c", "echo $0")
	if strings.TrimSpace(r.stdout) != "sh" {
		t.Errorf("docker run %s sh -c 'echo $0': %q %q", dev, r.stdout, r.stderr)
	}
	r = run(t, dev) // the default command: bash, which ends with stdin
	if r.code != 0 || r.stdout != "" {
		t.Errorf("docker run %s: exit %d stdout %q stderr %q", dev, r.code, r.stdout, r.stderr)
	}
	if got := docker(t, "image", "inspect", "-f", "{{json .Config.Cmd}}", dev).stdout; strings.TrimSpace(got) != `["/bin/bash"]` {
		t.Errorf("dev CMD %s", got)
	}
	// A checkout owned by another user is still a repository to git.
	repo := hostDir(t, map[string]string{"README": "x\n"})
	if out, err := exec.Command("git", "-C", repo, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	exec.Command("chown", "-R", "1000:1000", repo).Run()
	r = run(t, dev, "-v", repo+":/workspace", "--", "git", "-C", "/workspace", "status", "--short")
	if r.code != 0 {
		t.Errorf("git status in /workspace: exit %d %s", r.code, r.stderr)
	}
}

// TestTiniIsQuietWhenNotPID1: under docker run --init (and Apptainer,
// enroot) tini is not PID 1; TINI_SUBREAPER=1 keeps it from warning.
func TestTiniIsQuietWhenNotPID1(t *testing.T) {
	const warning = "Tini is not running as PID 1"
	for _, flags := range [][]string{{"--init"}, {"--pid=host"}} {
		r := run(t, suiteImage(t), append(flags, "--shm-size=1g", "--", "run")...)
		if r.code != 0 {
			t.Errorf("%v: exit %d: %s", flags, r.code, r.stderr)
		}
		lacks(t, strings.Join(flags, " ")+" stderr", r.stderr, warning)
		report(t, r)
	}
	// Without the variable the same start warns, so the check above can fail.
	r := run(t, suiteImage(t), "--init", "--entrypoint", "env", "--", "-u", "TINI_SUBREAPER", "tini", "--", "nss-entrypoint", "run")
	contains(t, "stderr without TINI_SUBREAPER", r.stderr, warning)
}

// TestMiseBuildsTheVariantTheCallerAsksFor runs a real mise:
// CONTAINER_GPU_EXTRA=cu130 mise run container:build:gpu builds cu130.
func TestMiseBuildsTheVariantTheCallerAsksFor(t *testing.T) {
	mise, err := exec.LookPath("mise")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mise is not installed; .ci/run installs it (npm install -g @jdxcode/mise)")
		}
		t.Skip("mise is not installed (npm install -g @jdxcode/mise)")
	}
	tag := "nss-e2e-gpu:cu130"
	defer rmi(tag)
	cmd := exec.Command(mise, "run", "container:build:gpu")
	cmd.Dir = testbuild.RepoRoot()
	cmd.Env = append(append(os.Environ(), bk.env()...), "NSS_SOURCE="+nssDir, "CONTAINER_GPU_IMAGE="+tag,
		"CONTAINER_GPU_EXTRA=cu130", "MISE_TRUSTED_CONFIG_PATHS="+testbuild.RepoRoot(), "MISE_YES=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mise run container:build:gpu: %v\n%s", err, tail(out))
	}
	l := labels(t, tag)
	if l["com.nvidia.nemo.safe-synthesizer.extra"] != "cu130" || l["com.nvidia.nemo.safe-synthesizer.variant"] != "cu130" {
		t.Errorf("labels %v", l)
	}
	tool, checks := diagnoseDoc(t, tag)
	if tool["cuda_variant"] != "cu130" {
		t.Errorf("cuda_variant %q", tool["cuda_variant"])
	}
	if got, _ := checks["versions"]["torch"].(string); got != "2.9.0+cu130" {
		t.Errorf("torch %q, want the cu130 extra's 2.9.0+cu130", got)
	}
}

// TestRunTargets runs make container-run-gpu and container-run-gpu-dev as a
// user would (without a GPU flag here): they build, mount the Safe
// Synthesizer checkout and create the cache folder.
func TestRunTargets(t *testing.T) {
	// A checkout as users have one: a git repository owned by them (uid
	// 1000, appuser's uid), so the dev image's root needs safe.directory.
	nss := copyNSS(t)
	if out, err := exec.Command("git", "-C", nss, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	if out, err := exec.Command("chown", "-R", "1000:1000", nss).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	os.Chmod(nss, 0o755)
	hf := filepath.Join(t.TempDir(), "not", "yet", "huggingface")
	vars := append(buildVars(nss), "CONTAINER_GPU_FLAG=", "CONTAINER_HF_CACHE="+hf)
	out, _, err := bk.makeTarget("", "container-run-gpu", append(vars, "CMD=run --config /workspace/pyproject.toml")...)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(hf); err != nil || !fi.IsDir() {
		t.Errorf("the host cache %s was not created: %v", hf, err)
	}
	i := strings.Index(out, `{"args_hex"`)
	if i < 0 {
		t.Fatalf("no target report in make's output:\n%s", tail([]byte(out)))
	}
	r := result{stdout: strings.SplitN(out[i:], "\n", 2)[0]}
	rep := report(t, r)
	if args := rep.Args(); !slices.Equal(args, []string{"safe-synthesizer", "run", "--config", "/workspace/pyproject.toml"}) {
		t.Errorf("argv %q", args)
	}
	if !slices.Contains(rep.Env(), "HF_HOME=/workspace/.hf_cache") {
		t.Errorf("env %q", rep.Env())
	}
	lacks(t, "make container-run-gpu", out, "warning: /workspace")
	lacks(t, "make container-run-gpu", out, "warning: HF_HOME is not set")
	lacks(t, "make container-run-gpu", out, "does not exist")

	out, _, err = bk.makeTarget("", "container-run-gpu-dev", vars...)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`stand-in tests ran in /workspace with (\d+) distributions`).FindStringSubmatch(out)
	if want == nil {
		t.Fatalf("make container-run-gpu-dev did not run make test in the checkout:\n%s", tail([]byte(out)))
	}
	if n, _ := strconv.Atoi(want[1]); n < 15 {
		t.Errorf("the dev image has %d distributions, want the runtime's and the dev group's", n)
	}
}
