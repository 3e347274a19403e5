package containers

import (
	"bufio"
	"context"
	"debug/elf"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	"github.com/rhysd/actionlint"
)

func repoRoot() string { return filepath.Dir(filepath.Dir(DockerfilePath())) }

func load(t *testing.T) *Dockerfile {
	t.Helper()
	d, err := Load(DockerfilePath())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// offlineResolver answers image lookups with an empty config: these
// machines reach no registry, and the lint rules need no image contents.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return ref, digest.FromString(ref), []byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"]}}`), nil
}

// lint runs BuildKit's Dockerfile lint rules, the ones `docker build --check`
// runs, and returns the findings as "Rule: detail (line N)".
func lint(t *testing.T, src []byte) []string {
	t.Helper()
	ctx := context.Background()
	st := llb.Scratch()
	sm := llb.NewSourceMap(&st, "Dockerfile.cuda", "Dockerfile", src)
	def, err := st.Marshal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm.Definition = def
	caps := pb.Caps.CapSet(pb.Caps.All())
	res, err := dockerfile2llb.DockerfileLint(ctx, src, dockerfile2llb.ConvertOpt{
		Config: dockerui.Config{}, SourceMap: sm, MetaResolver: offlineResolver{}, LLBCaps: &caps})
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("lint: the Dockerfile does not convert: %s", res.Error.Message)
	}
	var out []string
	for _, w := range res.Warnings {
		line := 0
		if len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		out = append(out, w.RuleName+": "+w.Detail+" (line "+strconv.Itoa(line)+")")
	}
	return out
}

func TestDockerfileLintIsClean(t *testing.T) {
	d := load(t)
	if findings := lint(t, d.Source); len(findings) > 0 {
		t.Errorf("BuildKit lint findings:\n%s", strings.Join(findings, "\n"))
	}
	// The same linter flags a Dockerfile with known problems, so a clean
	// result above means something.
	bad := []byte("FROM debian:bookworm as build\nENV A 1\nCMD echo hi\nFROM build AS Final\n")
	findings := lint(t, bad)
	for _, rule := range []string{"FromAsCasing", "LegacyKeyValueFormat", "JSONArgsRecommended", "StageNameCasing"} {
		if !slices.ContainsFunc(findings, func(f string) bool { return strings.HasPrefix(f, rule+":") }) {
			t.Errorf("the linter missed %s in a bad Dockerfile; it found %v", rule, findings)
		}
	}
}

func TestStages(t *testing.T) {
	d := load(t)
	var names, bases []string
	for _, s := range d.Stages {
		names, bases = append(names, s.Name), append(bases, s.BaseName)
	}
	if want := []string{"entrypoint", "uv", "runtime", "dev"}; !slices.Equal(names, want) {
		t.Errorf("stages %v, want %v", names, want)
	}
	if want := []string{"${GO_IMAGE}", "${UV_IMAGE}", "${PYTHON_IMAGE}", "runtime"}; !slices.Equal(bases, want) {
		t.Errorf("bases %v, want %v", bases, want)
	}
}

// readmeArgs reads the build-argument table of containers/README.md.
func readmeArgs(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(), "containers", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A default is `value`, or "unset" for an ARG without one.
	row := regexp.MustCompile("^\\| `([A-Z_]+)` \\| (?:`([^`]*)`|unset) \\|")
	args, in := map[string]string{}, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Build arguments"
			continue
		}
		if m := row.FindStringSubmatch(line); in && m != nil {
			args[m[1]] = m[2]
		}
	}
	return args
}

func TestBuildArgumentsMatchTheDocs(t *testing.T) {
	d := load(t)
	got := d.ArgDefaults()
	docs := readmeArgs(t)
	if len(docs) == 0 {
		t.Fatal("no build-argument table in containers/README.md")
	}
	for name, def := range got {
		if docDef, ok := docs[name]; !ok {
			t.Errorf("ARG %s is not documented", name)
		} else if docDef != def {
			t.Errorf("ARG %s defaults to %q, the docs say %q", name, def, docDef)
		}
	}
	for name := range docs {
		if _, ok := got[name]; !ok {
			t.Errorf("the docs list %s, which the Dockerfile lacks", name)
		}
	}
	// The seed's table, verbatim.
	seed := map[string]string{"CONTAINER_EXTRA": "cu129", "CONTAINER_VARIANT": "cu129", "PACKAGE_VERSION": "",
		"PYTHON_VERSION": "3.13", "PYTHON_IMAGE": "python:${PYTHON_VERSION}-slim-bookworm", "UV_IMAGE": "ghcr.io/astral-sh/uv:0.9.30"}
	for name, def := range seed {
		if got[name] != def {
			t.Errorf("ARG %s = %q, the specification says %q", name, got[name], def)
		}
	}
}

func TestRuntimeContract(t *testing.T) {
	d := load(t)
	rt, err := d.RuntimeOf("runtime")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rt.Entrypoint, []string{"tini", "--", "nss-entrypoint"}) || !slices.Equal(rt.Cmd, []string{"--help"}) {
		t.Errorf("ENTRYPOINT %q CMD %q", rt.Entrypoint, rt.Cmd)
	}
	if rt.User != "appuser" || rt.Workdir != "/workspace" {
		t.Errorf("USER %q WORKDIR %q", rt.User, rt.Workdir)
	}
	want := map[string]string{
		"UV_PROJECT_ENVIRONMENT": "/opt/venv", "UV_LINK_MODE": "copy", "UV_COMPILE_BYTECODE": "1",
		"UV_NO_INSTALLER_METADATA": "1", "UV_NO_MANAGED_PYTHON": "1", "UV_FROZEN": "true",
		"UV_DYNAMIC_VERSIONING_BYPASS": "${PACKAGE_VERSION}",
		"NVIDIA_VISIBLE_DEVICES":       "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
	}
	for k, v := range want {
		if rt.Env[k] != v {
			t.Errorf("ENV %s=%q, want %q", k, rt.Env[k], v)
		}
	}
	dev, _ := d.RuntimeOf("dev")
	if dev.User != "root" || dev.Env["UV_FROZEN"] != "true" {
		t.Errorf("dev: USER %q, inherits uv env: %v", dev.User, dev.Env["UV_FROZEN"])
	}
	// docker run nss-gpu-dev make test runs make, not safe-synthesizer.
	if len(dev.Entrypoint) != 0 || !slices.Equal(dev.Cmd, []string{"/bin/bash"}) {
		t.Errorf("dev: ENTRYPOINT %q CMD %q, want [] and a shell", dev.Entrypoint, dev.Cmd)
	}

	st, _ := d.Stage("runtime")
	var runs []string
	var copied []string
	for _, c := range st.Commands {
		switch c := c.(type) {
		case *instructions.RunCommand:
			runs = append(runs, strings.Join(c.CmdLine, " "))
		case *instructions.CopyCommand:
			if c.From == "entrypoint" {
				copied = append(copied, c.SourcePaths...)
				copied = append(copied, c.DestPath)
			}
		}
	}
	if len(runs) < 2 {
		t.Fatalf("runtime RUNs %q", runs)
	}
	// Triton compiles C at run time: gcc and libc6-dev, with libgomp and
	// the CA bundle, as upstream's image has them.
	apt, users := runs[0], runs[1]
	if !strings.Contains(apt, "apt-get install -y --no-install-recommends tini gcc libc6-dev libgomp1 ca-certificates") {
		t.Errorf("the runtime's apt RUN lacks tini and the C toolchain: %s", apt)
	}
	for _, frag := range []string{"useradd --uid 1000", "appuser", "install -d -o appuser -g appuser /workspace"} {
		if !strings.Contains(users, frag) {
			t.Errorf("the runtime's user RUN lacks %q: %s", frag, users)
		}
	}
	if rt.Env["TINI_SUBREAPER"] != "1" {
		t.Errorf("TINI_SUBREAPER=%q: tini warns when it is not PID 1 (docker run --init, Apptainer, enroot)", rt.Env["TINI_SUBREAPER"])
	}
	labels := map[string]string{}
	for _, c := range st.Commands {
		if l, ok := c.(*instructions.LabelCommand); ok {
			for _, kv := range l.Labels {
				labels[kv.Key] = strings.Trim(kv.Value, `"`)
			}
		}
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.vendor":          "NVIDIA",
		"org.opencontainers.image.documentation":   "https://nvidia-nemo.github.io/Safe-Synthesizer/user-guide/docker/",
		"org.opencontainers.image.source":          "https://github.com/NVIDIA-NeMo/Safe-Synthesizer",
		"org.opencontainers.image.version":         "${PACKAGE_VERSION}",
		"com.nvidia.nemo.safe-synthesizer.extra":   "${CONTAINER_EXTRA}",
		"com.nvidia.nemo.safe-synthesizer.variant": "${CONTAINER_VARIANT}",
	} {
		if labels[k] != v {
			t.Errorf("LABEL %s=%q, want %q", k, labels[k], v)
		}
	}
	if u := labels["org.opencontainers.image.usage"]; !strings.Contains(u, "-v ~/.cache/huggingface:/workspace/.hf_cache -e HF_HOME=/workspace/.hf_cache") {
		t.Errorf("the usage label lacks upstream's cache mount: %q", u)
	}
	if !slices.Equal(copied, []string{"/src/dist/nss-entrypoint", "/src/dist/nss-diagnose", "/src/dist/nss-gpu-probe", "/usr/local/bin/"}) {
		t.Errorf("COPY --from=entrypoint %v: the three binaries must land side by side", copied)
	}
}

// TestAptUsesCacheMounts: upstream's style guide keeps apt's lists and
// downloads in cache mounts instead of deleting them in the layer.
func TestAptUsesCacheMounts(t *testing.T) {
	d := load(t)
	found := 0
	for _, name := range []string{"runtime", "dev"} {
		st, _ := d.Stage(name)
		for _, c := range st.Commands {
			r, ok := c.(*instructions.RunCommand)
			if !ok || !strings.Contains(strings.Join(r.CmdLine, " "), "apt-get install") {
				continue
			}
			found++
			script := strings.Join(r.CmdLine, " ")
			if strings.Contains(script, "/var/lib/apt/lists/*") {
				t.Errorf("%s: apt lists are deleted in the layer instead of cached: %s", name, script)
			}
			if err := r.Expand(func(w string) (string, error) { return w, nil }); err != nil {
				t.Fatal(err)
			}
			cached := map[string]bool{}
			for _, m := range instructions.GetMounts(r) {
				if m.Type == instructions.MountTypeCache && m.CacheSharing == instructions.MountSharingLocked {
					cached[m.Target] = true
				}
			}
			if !cached["/var/cache/apt"] || !cached["/var/lib/apt/lists"] {
				t.Errorf("%s: apt RUN without locked cache mounts for /var/cache/apt and /var/lib/apt/lists: %s", name, r.String())
			}
			if name == "dev" && !strings.Contains(script, "git config --system --add safe.directory /workspace") {
				t.Errorf("dev: git does not trust the checkout mounted at /workspace: %s", script)
			}
		}
	}
	if found != 2 {
		t.Errorf("%d apt-get install steps in runtime and dev, want 2", found)
	}
}

// syncFlags returns the flags of each `uv sync` in a stage, in order.
func syncFlags(t *testing.T, st instructions.Stage) [][]string {
	t.Helper()
	var out [][]string
	for _, c := range st.Commands {
		r, ok := c.(*instructions.RunCommand)
		if !ok {
			continue
		}
		cmd := strings.Join(r.CmdLine, " ")
		i := strings.Index(cmd, "uv sync")
		if i < 0 {
			continue
		}
		fields := strings.Fields(strings.ReplaceAll(cmd[i+len("uv sync"):], "\\", " "))
		var flags []string
		for j := 0; j < len(fields); j++ {
			f := fields[j]
			if f == "--extra" || f == "--no-install-package" || f == "--group" || f == "--no-group" {
				f += " " + fields[j+1]
				j++
			}
			flags = append(flags, f)
		}
		slices.Sort(flags)
		out = append(out, flags)
	}
	return out
}

func TestSevenLayeredSyncSteps(t *testing.T) {
	d := load(t)
	st, _ := d.Stage("runtime")
	pkgs := func(names ...string) []string {
		var f []string
		for _, n := range names {
			f = append(f, "--no-install-package "+n)
		}
		return f
	}
	flashinfer := pkgs("flashinfer-python", "flashinfer-cubin", "flashinfer-jit-cache")
	torch := pkgs("torch", "torchvision", "torchaudio", "torchao", "triton")
	vllm := pkgs("vllm")
	cuda := []string{"--no-install-project", "--extra engine", "--extra ${CONTAINER_EXTRA}", "--no-group dev"}
	join := func(parts ...[]string) []string {
		var all []string
		for _, p := range parts {
			all = append(all, p...)
		}
		slices.Sort(all)
		return all
	}
	want := [][]string{
		join([]string{"--no-install-project", "--no-group dev"}),
		join([]string{"--no-install-project", "--extra engine", "--no-group dev"}),
		join(cuda, flashinfer, torch, vllm),
		join(cuda, torch, vllm),
		join(cuda, vllm),
		join(cuda),
		join([]string{"--no-editable", "--extra engine", "--extra ${CONTAINER_EXTRA}", "--no-group dev"}),
	}
	got := syncFlags(t, st)
	if len(got) != len(want) {
		t.Fatalf("%d uv sync steps, want 7: %v", len(got), got)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("step %d:\n got  %v\n want %v", i+1, got[i], want[i])
		}
	}
	dev, _ := d.Stage("dev")
	if g := syncFlags(t, dev); len(g) != 1 || !slices.Contains(g[0], "--group dev") {
		t.Errorf("dev stage sync %v: it must add the dev group", g)
	}
	// Every dependency step reads the lock from the nss context and uses
	// the uv cache; none keeps uv in the runtime image.
	for _, c := range st.Commands {
		r, ok := c.(*instructions.RunCommand)
		if !ok || !strings.Contains(strings.Join(r.CmdLine, " "), "uv sync") {
			continue
		}
		// Mount flags are parsed on expansion; keep every word as written.
		if err := r.Expand(func(w string) (string, error) { return w, nil }); err != nil {
			t.Fatal(err)
		}
		var cache, nss bool
		for _, m := range instructions.GetMounts(r) {
			cache = cache || m.Type == instructions.MountTypeCache && m.Target == "/root/.cache/uv"
			nss = nss || m.From == "nss"
		}
		if !cache || !nss {
			t.Errorf("a sync step lacks the uv cache (%v) or the nss context (%v): %s", cache, nss, r.String())
		}
	}
}

// TestGoBuildStageCommands runs the entrypoint stage's RUN commands here,
// exactly as written, over a copy of the build context, and checks what
// they produce.
func TestGoBuildStageCommands(t *testing.T) {
	d := load(t)
	st, _ := d.Stage("entrypoint")
	ctxDir := t.TempDir()
	// The build context, as .dockerignore leaves it (the Go sources).
	cp := exec.Command("sh", "-c", `tar --exclude='./.git' --exclude='./bin' --exclude='./.gpu-suite' --exclude='./e2e/.work' -cf - . | tar -xf - -C "$0"`, ctxDir)
	cp.Dir = repoRoot()
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("copy the context: %v: %s", err, out)
	}
	args := d.ArgDefaults()
	env := append(os.Environ(), "CONTAINER_VARIANT="+args["CONTAINER_VARIANT"],
		"NSS_ENTRYPOINT_VERSION=test-1.0", "NSS_ENTRYPOINT_COMMIT=abc1234")
	ran := 0
	for _, c := range st.Commands {
		r, ok := c.(*instructions.RunCommand)
		if !ok {
			continue
		}
		script := strings.Join(r.CmdLine, " ")
		if strings.Contains(script, "go mod download") {
			continue // the module cache is already here
		}
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Dir, cmd.Env = ctxDir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("RUN %s: %v\n%s", script, err, out)
		}
		ran++
	}
	if ran != 3 {
		t.Fatalf("ran %d build commands, want 3", ran)
	}
	for _, name := range []string{"nss-entrypoint", "nss-diagnose"} {
		f, err := elf.Open(filepath.Join(ctxDir, "dist", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s from the Dockerfile's commands is not static", name)
			}
		}
		f.Close()
	}
	probe, err := elf.Open(filepath.Join(ctxDir, "dist", "nss-gpu-probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if f, _ := probe.DynValue(elf.DT_FLAGS); len(f) > 0 && f[0]&uint64(elf.DF_BIND_NOW) != 0 {
		t.Error("nss-gpu-probe has BIND_NOW")
	}
	if f, _ := probe.DynValue(elf.DT_FLAGS_1); len(f) > 0 && f[0]&uint64(elf.DF_1_NOW) != 0 {
		t.Error("nss-gpu-probe has FLAGS_1 NOW")
	}
	libs, _ := probe.ImportedLibraries()
	if !slices.Equal(libs, []string{"libc.so.6"}) {
		t.Errorf("nss-gpu-probe needs %v, want glibc alone", libs)
	}
	// The version and variant are stamped in.
	out, err := exec.Command(filepath.Join(ctxDir, "dist", "nss-entrypoint"), "--diagnose", "--format", "json").Output()
	if err != nil && len(out) == 0 {
		t.Fatal(err)
	}
	for _, want := range []string{`"version": "test-1.0"`, `"commit": "abc1234"`, `"cuda_variant": "cu129"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the built entrypoint's report lacks %s", want)
		}
	}
}

func TestDockerignoreKeepsTheContextSmall(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if !slices.Contains(lines, "*") || !slices.Contains(lines, "!cmd/") || !slices.Contains(lines, "!go.sum") {
		t.Errorf(".dockerignore must exclude everything but the Go sources:\n%s", b)
	}
}

// makeDryRun returns `make -n target` with extra variables.
func makeDryRun(t *testing.T, target string, vars ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-n", "--no-print-directory", target}, vars...)...)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CONTAINER_ENGINE=docker")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMakeDryRuns(t *testing.T) {
	tests := []struct {
		target string
		vars   []string
		want   []string
	}{
		{"container-build-gpu", nil, []string{"docker buildx build --load --platform linux/amd64 -f containers/Dockerfile.cuda",
			"--build-context nss=../Safe-Synthesizer", "--build-arg CONTAINER_EXTRA=cu129", "--build-arg CONTAINER_VARIANT=cu129",
			"--build-arg PACKAGE_VERSION= ", "--target runtime -t nss-gpu:latest ."}},
		{"container-build-gpu", []string{"CONTAINER_GPU_EXTRA=cu130", "CONTAINER_GPU_PACKAGE_VERSION=0.1.0", "CONTAINER_GPU_IMAGE=x:y", "CONTAINER_GPU_PLATFORM=linux/arm64", "NSS_SOURCE=/src/nss"},
			[]string{"--platform linux/arm64", "--build-context nss=/src/nss", "CONTAINER_EXTRA=cu130", "CONTAINER_VARIANT=cu130", "PACKAGE_VERSION=0.1.0", "-t x:y ."}},
		{"container-build-gpu", []string{"CONTAINER_ENGINE=podman"}, []string{"podman build --platform linux/amd64"}},
		{"container-build-gpu-dev", nil, []string{"--target dev -t nss-gpu-dev:latest ."}},
		{"container-build-gpu-multiarch", []string{"CONTAINER_GPU_REGISTRY=ghcr.io/nvidia-nemo"},
			[]string{"docker buildx build --platform linux/amd64,linux/arm64", "--target runtime --tag ghcr.io/nvidia-nemo/nss-gpu:latest --push ."}},
		// The run targets build first, create the host cache, mount the Safe
		// Synthesizer checkout (not this repository) and upstream's cache path.
		{"container-run-gpu", []string{"CMD=run --config c.yaml", "CONTAINER_EXTRA_MOUNTS=-v /data:/data", "CONTAINER_HF_CACHE=/hf", "NSS_SOURCE=" + repoRoot() + "/containers"},
			[]string{"--target runtime -t nss-gpu:latest .\nmkdir -p \"/hf\"\ndocker run --rm", "--gpus all --shm-size=1g",
				`-v "` + repoRoot() + `/containers:/workspace"`, `-v "/hf:/workspace/.hf_cache"`, "-e HF_HOME=/workspace/.hf_cache -e HF_TOKEN",
				"-v /data:/data", "nss-gpu:latest run --config c.yaml"}},
		{"container-run-gpu", nil, []string{"nss-gpu:latest --help"}},
		{"container-run-gpu-dev", []string{"CONTAINER_GPU_FLAG=--device nvidia.com/gpu=all"}, []string{"--target dev -t nss-gpu-dev:latest .\nmkdir -p",
			"--device nvidia.com/gpu=all", "nss-gpu-dev:latest make test"}},
		{"container-run-gpu-dev", []string{"CMD=bash"}, []string{"nss-gpu-dev:latest bash"}},
		{"container-run-gpu", []string{"CONTAINER_ENGINE=podman"}, []string{"podman run", "--device nvidia.com/gpu=all"}},
	}
	for _, tc := range tests {
		t.Run(tc.target+" "+strings.Join(tc.vars, " "), func(t *testing.T) {
			out, err := makeDryRun(t, tc.target, tc.vars...)
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("make -n %s lacks %q:\n%s", tc.target, w, out)
				}
			}
			if strings.Contains(out, repoRoot()+":/workspace") {
				t.Errorf("make -n %s mounts this repository at /workspace:\n%s", tc.target, out)
			}
		})
	}
	out, err := makeDryRun(t, "container-build-gpu-multiarch")
	if err == nil || !strings.Contains(out, "CONTAINER_GPU_REGISTRY is required") {
		t.Errorf("multiarch without a registry: err %v, output %s", err, out)
	}
}

func TestMiseTasks(t *testing.T) {
	var cfg struct {
		Env   map[string]string `toml:"env"`
		Tasks map[string]struct {
			Description string `toml:"description"`
			Run         string `toml:"run"`
		} `toml:"tasks"`
	}
	if _, err := toml.DecodeFile(filepath.Join(repoRoot(), "mise.toml"), &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"container:build:gpu": "container-build-gpu", "container:build:gpu-dev": "container-build-gpu-dev",
		"container:build:gpu-multiarch": "container-build-gpu-multiarch",
		"container:run:gpu":             "container-run-gpu", "container:run:gpu-dev": "container-run-gpu-dev",
	}
	if len(cfg.Tasks) != len(want) {
		t.Errorf("tasks %v", cfg.Tasks)
	}
	for task, target := range want {
		got, ok := cfg.Tasks[task]
		if !ok || got.Run != "make "+target || got.Description == "" {
			t.Errorf("task %s = %+v, want run = make %s", task, got, target)
		}
		if out, err := makeDryRun(t, target, "CONTAINER_GPU_REGISTRY=r"); err != nil {
			t.Errorf("task %s calls a target that does not dry-run: %v %s", task, err, out)
		}
	}
	// Each [env] entry is a default that yields to the caller's
	// environment, and it is the Makefile's default.
	tmpl := regexp.MustCompile(`^\{\{ get_env\(name='([A-Z_]+)', default='([^']*)'\) \}\}$`)
	makefile, err := os.ReadFile(filepath.Join(repoRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range cfg.Env {
		if !strings.HasPrefix(k, "CONTAINER_GPU_") {
			t.Errorf("mise env %s is not a documented variable", k)
		}
		m := tmpl.FindStringSubmatch(v)
		if m == nil || m[1] != k {
			t.Errorf("mise env %s = %q overrides the caller's environment; use {{ get_env(name='%s', default=...) }}", k, v, k)
			continue
		}
		if !regexp.MustCompile(`(?m)^` + k + `\s+\?= ` + regexp.QuoteMeta(m[2]) + `$`).Match(makefile) {
			t.Errorf("mise's default %s=%s is not the Makefile's", k, m[2])
		}
	}
}

// TestMiseDefaultsYieldToTheEnvironment runs a real mise: a variable set by
// the caller reaches make, and the default applies when it is unset.
func TestMiseDefaultsYieldToTheEnvironment(t *testing.T) {
	mise, err := exec.LookPath("mise")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mise is not installed; .ci/run installs it (npm install -g @jdxcode/mise)")
		}
		t.Skip("mise is not installed (npm install -g @jdxcode/mise)")
	}
	for _, tc := range []struct {
		env  []string
		want []string
	}{
		{nil, []string{"CONTAINER_EXTRA=cu129 ", "CONTAINER_VARIANT=cu129 ", "-t nss-gpu:latest "}},
		{[]string{"CONTAINER_GPU_EXTRA=cu130"}, []string{"CONTAINER_EXTRA=cu130 ", "CONTAINER_VARIANT=cu130 ", "-t nss-gpu:latest "}},
		{[]string{"CONTAINER_GPU_EXTRA=cu130", "CONTAINER_GPU_VARIANT=cu130-test", "CONTAINER_GPU_IMAGE=mine:1", "CONTAINER_GPU_PLATFORM=linux/arm64"},
			[]string{"CONTAINER_EXTRA=cu130 ", "CONTAINER_VARIANT=cu130-test ", "-t mine:1 ", "--platform linux/arm64 "}},
	} {
		t.Run(strings.Join(tc.env, " "), func(t *testing.T) {
			cmd := exec.Command(mise, "run", "container:build:gpu")
			cmd.Dir = repoRoot()
			// make -n through MAKEFLAGS: mise runs the task's own command.
			env := []string{"MAKEFLAGS=n", "CONTAINER_ENGINE=docker", "MISE_TRUSTED_CONFIG_PATHS=" + repoRoot(), "MISE_YES=1"}
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "CONTAINER_") && !strings.HasPrefix(kv, "MAKEFLAGS=") && !strings.HasPrefix(kv, "MAKELEVEL=") {
					env = append(env, kv)
				}
			}
			cmd.Env = append(env, tc.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("mise run: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("mise run container:build:gpu with %v lacks %q:\n%s", tc.env, w, out)
				}
			}
		})
	}
}

func TestWorkflowsPassActionlint(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot(), ".github", "workflows", "*.yml"))
	if len(files) < 2 {
		t.Fatalf("workflows %v", files)
	}
	opts := &actionlint.LinterOptions{}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc // run: scripts are shellchecked too
	}
	l, err := actionlint.NewLinter(io.Discard, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFiles(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", filepath.Base(e.Filepath), e.Line, e.Column, e.Message, e.Kind)
	}
	// actionlint finds real problems, so a clean result means something.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"), 0o644)
	if errs, _ := l.LintFiles([]string{bad}, nil); len(errs) == 0 {
		t.Error("actionlint found nothing in a broken workflow")
	}
	// Every action is pinned to a full commit.
	pinned := regexp.MustCompile(`uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v`)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "uses: ") && !pinned.MatchString(line) {
				t.Errorf("%s: unpinned action: %s", filepath.Base(f), strings.TrimSpace(line))
			}
		}
	}
}

func TestShellScriptsPassShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("shellcheck is not installed; .ci/run installs it")
		}
		t.Skip("shellcheck is not installed (apt-get install shellcheck)")
	}
	scripts := []string{".ci/run", "e2e/gpu/run.sh"}
	cmd := exec.Command(sc, scripts...)
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

func TestTaskVariablesMatchTheDocs(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "containers", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(repoRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z][A-Z_]+)` \\| ")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = true
	}
	// Every overridable variable of the container targets is documented,
	// and every documented task variable is one the Makefile reads.
	def := regexp.MustCompile(`(?m)^((?:CONTAINER_|NSS_SOURCE|CMD)[A-Z_]*)\s+\?=`)
	defined := map[string]bool{}
	for _, m := range def.FindAllStringSubmatch(string(makefile), -1) {
		defined[m[1]] = true
		if !documented[m[1]] {
			t.Errorf("Makefile variable %s is not in containers/README.md", m[1])
		}
	}
	if len(defined) < 12 {
		t.Fatalf("found only %v in the Makefile", defined)
	}
	args := load(t).ArgDefaults()
	for name := range documented {
		if _, isArg := args[name]; !isArg && !defined[name] {
			t.Errorf("containers/README.md documents %s, which neither the Makefile nor the Dockerfile has", name)
		}
	}
}

// publication is the container-build workflow's build job.
func publication(t *testing.T) *actionlint.Job {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), ".github", "workflows", "container-build.yml"))
	if err != nil {
		t.Fatal(err)
	}
	wf, errs := actionlint.Parse(b)
	if len(errs) > 0 {
		t.Fatalf("parse the workflow: %v", errs[0])
	}
	if wf.Concurrency == nil || wf.Concurrency.Group == nil || !strings.Contains(wf.Concurrency.Group.Value, "github.ref") {
		t.Error("the workflow has no concurrency group per ref")
	}
	job := wf.Jobs["build"]
	if job == nil {
		t.Fatal("no build job")
	}
	return job
}

func stepByID(t *testing.T, job *actionlint.Job, id string) *actionlint.Step {
	t.Helper()
	for _, s := range job.Steps {
		if s.ID != nil && s.ID.Value == id {
			return s
		}
	}
	t.Fatalf("no step with id %s", id)
	return nil
}

// versionStep runs the workflow's version step, as the runner does, in a
// Safe Synthesizer checkout and returns what it writes to $GITHUB_OUTPUT.
func versionStep(t *testing.T, script, checkout string) map[string]string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "output")
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
	cmd.Dir = checkout
	cmd.Env = append(os.Environ(), "GITHUB_OUTPUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("version step: %v\n%s", err, b)
	}
	b, _ := os.ReadFile(out)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	return got
}

// metadataTags evaluates the metadata-action tag rules for one run the way
// the action does for the rule types used: raw (value) and semver (pattern
// over value, {{version}}, {{major}}, {{minor}}), each with enable.
func metadataTags(t *testing.T, rules string, expr map[string]string) []string {
	t.Helper()
	subst := regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)
	var tags []string
	for _, line := range strings.Split(strings.TrimSpace(rules), "\n") {
		line = subst.ReplaceAllStringFunc(strings.TrimSpace(line), func(m string) string {
			e := subst.FindStringSubmatch(m)[1]
			v, ok := expr[e]
			if !ok {
				t.Fatalf("tag rule uses %q, which the test does not know", e)
			}
			return v
		})
		attrs := map[string]string{}
		for _, kv := range strings.Split(line, ",") {
			k, v, _ := strings.Cut(kv, "=")
			attrs[k] = v
		}
		if attrs["enable"] == "false" {
			continue
		}
		switch attrs["type"] {
		case "raw":
			tags = append(tags, attrs["value"])
		case "semver":
			v := attrs["value"]
			m := regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`).FindStringSubmatch(v)
			if m == nil {
				t.Fatalf("semver rule enabled for %q, which is not a release version", v)
			}
			tags = append(tags, strings.NewReplacer("{{version}}", v, "{{major}}", m[1], "{{minor}}", m[2]).Replace(attrs["pattern"]))
		default:
			t.Fatalf("tag rule type %q", attrs["type"])
		}
	}
	slices.Sort(tags)
	return tags
}

// TestPublicationWorkflowVersionAndTags runs the version step against real
// Safe Synthesizer checkouts (a release tag, a plain commit) and evaluates
// the tag rules with its outputs, for a tag push and a manual run.
func TestPublicationWorkflowVersionAndTags(t *testing.T) {
	job := publication(t)
	ver := stepByID(t, job, "version")
	run, ok := ver.Exec.(*actionlint.ExecRun)
	if !ok || run.WorkingDirectory == nil || run.WorkingDirectory.Value != "nss" {
		t.Fatal("the version step must run a script in the Safe Synthesizer checkout (working-directory: nss)")
	}
	// The checkout it reads: the input, a repository variable, else main;
	// never this repository's own tag.
	for _, s := range job.Steps {
		a, ok := s.Exec.(*actionlint.ExecAction)
		if !ok || a.Inputs["repository"] == nil {
			continue
		}
		if ref := a.Inputs["ref"].Value.Value; ref != "${{ inputs.nss_ref || vars.NSS_REF || 'main' }}" {
			t.Errorf("Safe Synthesizer is checked out at %q", ref)
		}
		if fd := a.Inputs["fetch-depth"]; fd == nil || fd.Value.Value != "0" {
			t.Error("the Safe Synthesizer checkout needs its tags (fetch-depth: 0)")
		}
	}

	repo := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "one")
	git("tag", "v1.4.2")
	released := versionStep(t, run.Run.Value, repo)
	sha := git("rev-parse", "HEAD")
	short := sha[:7]
	if want := map[string]string{"version": "1.4.2", "release": "true", "sha": sha, "short_sha": short}; !maps.Equal(released, want) {
		t.Errorf("at a release tag: %v, want %v", released, want)
	}
	git("commit", "-q", "--allow-empty", "-m", "two")
	git("tag", "nightly")
	sha2 := git("rev-parse", "HEAD")
	plain := versionStep(t, run.Run.Value, repo)
	if want := map[string]string{"version": "0.0.0+" + sha2[:7], "release": "false", "sha": sha2, "short_sha": sha2[:7]}; !maps.Equal(plain, want) {
		t.Errorf("past the tag: %v, want %v", plain, want)
	}

	meta := stepByID(t, job, "meta").Exec.(*actionlint.ExecAction)
	if !strings.HasPrefix(meta.Uses.Value, "docker/metadata-action@") {
		t.Fatalf("the meta step uses %s", meta.Uses.Value)
	}
	exprs := func(refType string, out map[string]string, variant string) map[string]string {
		m := map[string]string{"matrix.variant": variant, "github.ref_type == 'tag'": strconv.FormatBool(refType == "tag")}
		for k, v := range out {
			m["steps.version.outputs."+k] = v
		}
		return m
	}
	rules := meta.Inputs["tags"].Value.Value
	for _, tc := range []struct {
		name    string
		refType string
		out     map[string]string
		variant string
		want    []string
	}{
		{"tag push of a release", "tag", released, "cu129", []string{"1.4-cu129", "1.4.2-cu129", "cu129", "latest-cu129", "sha-" + short + "-cu129"}},
		{"tag push, cu130 row", "tag", released, "cu130", []string{"1.4-cu130", "1.4.2-cu130", "cu130", "latest-cu130", "sha-" + short + "-cu130"}},
		{"manual run of main", "branch", plain, "cu129", []string{"sha-" + sha2[:7] + "-cu129"}},
	} {
		if got := metadataTags(t, rules, exprs(tc.refType, tc.out, tc.variant)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: tags %v, want %v", tc.name, got, tc.want)
		}
	}
	labels := meta.Inputs["labels"].Value.Value
	for _, l := range []string{"org.opencontainers.image.vendor=NVIDIA", "org.opencontainers.image.documentation=https://",
		"org.opencontainers.image.version=${{ steps.version.outputs.version }}", "org.opencontainers.image.revision=${{ steps.version.outputs.sha }}",
		"com.nvidia.nemo.safe-synthesizer.extra=${{ matrix.extra }}", "com.nvidia.nemo.safe-synthesizer.variant=${{ matrix.variant }}"} {
		if !strings.Contains(labels, l) {
			t.Errorf("metadata labels lack %s", l)
		}
	}

	// Both variants build, each with its own extra.
	var variants []string
	for _, c := range job.Strategy.Matrix.Include.Combinations {
		str := func(k string) string {
			if a, ok := c.Assigns[k]; ok {
				if s, ok := a.Value.(*actionlint.RawYAMLString); ok {
					return s.Value
				}
			}
			return ""
		}
		v, e := str("variant"), str("extra")
		if v != e {
			t.Errorf("variant %s builds extra %s", v, e)
		}
		variants = append(variants, v)
	}
	if !slices.Equal(variants, []string{"cu129", "cu130"}) {
		t.Errorf("matrix variants %v, want cu129 and cu130", variants)
	}
	var build *actionlint.ExecAction
	for _, s := range job.Steps {
		if a, ok := s.Exec.(*actionlint.ExecAction); ok && strings.HasPrefix(a.Uses.Value, "docker/build-push-action@") {
			build = a
		}
	}
	if build == nil {
		t.Fatal("no build-push-action step")
	}
	for input, want := range map[string]string{
		"cache-to":   "mode=max,oci-mediatypes=true,image-manifest=true",
		"build-args": "PACKAGE_VERSION=${{ steps.version.outputs.version }}",
		"tags":       "${{ steps.meta.outputs.tags }}",
		"labels":     "${{ steps.meta.outputs.labels }}",
	} {
		if in := build.Inputs[input]; in == nil || !strings.Contains(in.Value.Value, want) {
			t.Errorf("build-push-action %s lacks %s", input, want)
		}
	}
}
