//go:build e2e

package e2e

// The harness that builds containers/Dockerfile.cuda for real, offline:
// BuildKit (buildkitd, buildctl and the dockerfile frontend) built from the
// moby/buildkit module that go.mod requires, the buildx CLI plugin with a
// remote builder on that buildkitd, a registry on 127.0.0.1 that buildkitd
// uses as its mirror for docker.io and ghcr.io, and stand-ins for the four
// images the Dockerfile names and for the Safe Synthesizer project. The
// slow parts are cached under e2e/.work (NSS_E2E_CACHE), keyed by what
// they are made from.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/testbuild"
)

// Pinned tool versions. BuildKit is the version go.mod requires (the
// parser and linter the unit tests use), so the two never drift apart.
const (
	buildxModule = "github.com/docker/buildx/cmd/buildx@v0.38.2"
	craneModule  = "github.com/google/go-containerregistry/cmd/crane@v0.22.1"
	buildkitMod  = "github.com/moby/buildkit"
)

// The images Dockerfile.cuda names, as the registry mirror serves them.
var standInRefs = map[string]string{
	"python":     "library/python:3.13-slim-bookworm",
	"golang":     "library/golang:1.26-bookworm",
	"uv":         "astral-sh/uv:0.9.30",
	"dockerfile": "docker/dockerfile:1.7",
}

// builder is a running BuildKit with its registry mirror, reachable through
// docker buildx.
type builder struct {
	tools     string // buildkitd, buildctl, dockerfile-frontend, docker-buildx, crane
	registry  string // 127.0.0.1:port
	sock      string // buildkitd's socket
	dockerCfg string // DOCKER_CONFIG with the buildx plugin and the remote builder
	procs     []*exec.Cmd
}

func key(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])[:12]
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
}

func runCmd(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out))
	}
	return out, nil
}

// buildTools builds the BuildKit binaries, buildx and crane into a cache
// folder keyed by their versions and the Go toolchain.
func buildTools(cache string) (string, error) {
	gobin := testbuild.Go()
	out, err := runCmd(testbuild.RepoRoot(), nil, gobin, "mod", "download", "-json", buildkitMod)
	if err != nil {
		return "", err
	}
	var mod struct{ Version, Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("go mod download -json %s: %v", buildkitMod, err)
	}
	gover, err := runCmd("", nil, gobin, "env", "GOVERSION")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "tools-"+key(mod.Version, buildxModule, craneModule, string(gover)))
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir, nil
	}
	start := time.Now()
	logf("building BuildKit %s, buildx and crane into %s (minutes, once)", mod.Version, dir)
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	static := []string{"CGO_ENABLED=0"}
	// go install refuses moby/buildkit (its go.mod has exclude
	// directives), so build in the module's own folder.
	if _, err := runCmd(mod.Dir, static, gobin, "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/moby/buildkit/version.Version="+mod.Version,
		"-o", tmp+"/", "./cmd/buildkitd", "./cmd/buildctl", "./frontend/dockerfile/cmd/dockerfile-frontend"); err != nil {
		return "", err
	}
	for _, m := range []string{buildxModule, craneModule} {
		if _, err := runCmd("", append(static, "GOBIN="+tmp, "GOFLAGS=-trimpath"), gobin, "install", "-ldflags=-s -w", m); err != nil {
			return "", err
		}
	}
	if err := os.Rename(filepath.Join(tmp, "buildx"), filepath.Join(tmp, "docker-buildx")); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), nil, 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	logf("built the build tools in %v", time.Since(start).Round(time.Second))
	return dir, nil
}

// rootfs returns a folder holding rootfs.tar, a Debian bookworm minbase
// from debootstrap with the given packages, cached by its recipe.
func rootfs(cache string, include string) (string, error) {
	recipe := "debootstrap --variant=minbase --include=" + include + " bookworm http://deb.debian.org/debian"
	dir := filepath.Join(cache, "rootfs-"+key(recipe))
	tarball := filepath.Join(dir, "rootfs.tar")
	if _, err := os.Stat(tarball); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tree := filepath.Join(cache, "tree-"+key(recipe))
	os.RemoveAll(tree)
	defer os.RemoveAll(tree)
	start := time.Now()
	logf("%s (a minute or two, once)", recipe)
	f := strings.Fields(recipe)
	if _, err := runCmd("", nil, f[0], append(f[1:4], tree, f[4])...); err != nil {
		return "", err
	}
	if _, err := runCmd("", nil, "tar", "--numeric-owner", "--sort=name", "-C", tree, "-cf", tarball+".tmp", "."); err != nil {
		return "", err
	}
	logf("debootstrap --include=%s took %v", include, time.Since(start).Round(time.Second))
	return dir, os.Rename(tarball+".tmp", tarball)
}

func listenPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// daemon starts a long-running helper that dies with the test process.
func (b *builder) daemon(logPath string, name string, args ...string) (*exec.Cmd, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { cmd.Wait(); logFile.Close() }()
	b.procs = append(b.procs, cmd)
	return cmd, nil
}

func waitReady(what string, d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up within %v", what, d)
}

// Stop ends the daemons this harness started, newest first.
func (b *builder) Stop() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		p := b.procs[i]
		if p.Process != nil {
			p.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range b.procs {
		done := make(chan struct{})
		go func() { p.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			p.Process.Kill()
		}
	}
	if b.dockerCfg != "" {
		os.RemoveAll(b.dockerCfg)
	}
}

// startBuilder starts the registry and buildkitd and sets up buildx.
func startBuilder(cache, tools string) (*builder, error) {
	b := &builder{tools: tools}
	port, err := listenPort()
	if err != nil {
		return nil, err
	}
	b.registry = fmt.Sprintf("127.0.0.1:%d", port)
	run := filepath.Join(cache, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		return nil, err
	}
	if _, err := b.daemon(filepath.Join(run, "registry.log"), filepath.Join(tools, "crane"), "registry", "serve", "--address", b.registry); err != nil {
		return nil, err
	}
	if err := waitReady("the registry", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + b.registry + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		b.Stop()
		return nil, err
	}

	// buildkitd keeps its state between runs, keyed by the tools that
	// made it; the socket lives in a short path (sun_path is 108 bytes).
	state := filepath.Join(cache, "buildkitd-"+filepath.Base(tools))
	sockDir, err := os.MkdirTemp("", "nss-bk-")
	if err != nil {
		b.Stop()
		return nil, err
	}
	b.sock = filepath.Join(sockDir, "buildkitd.sock")
	runc, err := exec.LookPath("runc")
	if err != nil {
		b.Stop()
		return nil, errors.New("runc is not installed (apt-get install runc; .ci/run installs it)")
	}
	config := fmt.Sprintf(`root = %q
[grpc]
  address = ["unix://%s"]
[worker.oci]
  enabled = true
  snapshotter = "overlayfs"
  binary = %q
  networkMode = "host"
  gc = true
  gckeepstorage = "20GB"
[worker.containerd]
  enabled = false
[registry."docker.io"]
  mirrors = [%[4]q]
[registry."ghcr.io"]
  mirrors = [%[4]q]
[registry.%[4]q]
  http = true
`, state, b.sock, runc, b.registry)
	if err := os.MkdirAll(state, 0o700); err != nil {
		b.Stop()
		return nil, err
	}
	cfgPath := filepath.Join(run, "buildkitd.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		b.Stop()
		return nil, err
	}
	if _, err := b.daemon(filepath.Join(run, "buildkitd.log"), filepath.Join(tools, "buildkitd"), "--config", cfgPath); err != nil {
		b.Stop()
		return nil, err
	}
	if err := waitReady("buildkitd", 60*time.Second, func() bool {
		return exec.Command(filepath.Join(tools, "buildctl"), "--addr", "unix://"+b.sock, "debug", "workers").Run() == nil
	}); err != nil {
		log, _ := os.ReadFile(filepath.Join(run, "buildkitd.log"))
		b.Stop()
		return nil, fmt.Errorf("%v:\n%s", err, tail(log))
	}

	// A private docker configuration: the buildx plugin and a remote
	// builder on this buildkitd, so the user's own commands run unchanged.
	if b.dockerCfg, err = os.MkdirTemp("", "nss-e2e-docker-config-"); err != nil {
		b.Stop()
		return nil, err
	}
	plugins := filepath.Join(b.dockerCfg, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		b.Stop()
		return nil, err
	}
	if err := os.Symlink(filepath.Join(tools, "docker-buildx"), filepath.Join(plugins, "docker-buildx")); err != nil {
		b.Stop()
		return nil, err
	}
	if out, err := runCmd("", b.env(), "docker", "buildx", "create", "--name", "nss-e2e", "--driver", "remote", "unix://"+b.sock); err != nil {
		b.Stop()
		return nil, fmt.Errorf("docker buildx create: %v\n%s", err, out)
	}
	return b, nil
}

// env is what a user's shell would have: buildx installed, the remote
// builder selected, and plain progress output for the cache assertions.
func (b *builder) env() []string {
	return []string{"DOCKER_CONFIG=" + b.dockerCfg, "BUILDX_BUILDER=nss-e2e", "BUILDKIT_PROGRESS=plain"}
}

// buildctl builds a stand-in image from a generated Dockerfile and pushes
// it to the registry under ref.
func (b *builder) buildctl(ref, dockerfile, context string, named map[string]string) error {
	dfDir, err := os.MkdirTemp("", "nss-e2e-standin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dfDir)
	if err := os.WriteFile(filepath.Join(dfDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	args := []string{"--addr", "unix://" + b.sock, "build", "--progress=plain", "--frontend", "dockerfile.v0",
		"--local", "context=" + context, "--local", "dockerfile=" + dfDir,
		"--output", "type=image,name=" + b.registry + "/" + ref + ",push=true,registry.insecure=true"}
	for name, dir := range named {
		args = append(args, "--local", name+"="+dir, "--opt", "context:"+name+"=local:"+name)
	}
	_, err = runCmd("", nil, filepath.Join(b.tools, "buildctl"), args...)
	return err
}

// writeFiles writes name -> content into a new temporary folder.
func writeFiles(files map[string][]byte, mode os.FileMode) (string, error) {
	dir, err := os.MkdirTemp("", "nss-e2e-files-")
	if err != nil {
		return "", err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, mode); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// fakeUV builds testdata/fakeuv with the fake safe-synthesizer appended,
// the payload it installs as the project's console script.
func fakeUV(target string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "nss-e2e-fakeuv-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "uv")
	if _, err := runCmd(testbuild.RepoRoot(), []string{"CGO_ENABLED=0"}, testbuild.Go(), "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/fakeuv"); err != nil {
		return nil, err
	}
	uv, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	t, err := os.ReadFile(target)
	if err != nil {
		return nil, err
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(t)))
	return bytes.Join([][]byte{uv, t, n[:], []byte("NSSFAKEUVTARGET1")}, nil), nil
}

// pushStandIns builds the four stand-in images and pushes them.
func (b *builder) pushStandIns(cache string, target string) error {
	var pyRoot, goRoot string
	var pyErr, goErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pyRoot, pyErr = rootfs(cache, "python3") }()
	go func() { defer wg.Done(); goRoot, goErr = rootfs(cache, "gcc,libc6-dev,git,ca-certificates") }()
	wg.Wait()
	if err := errors.Join(pyErr, goErr); err != nil {
		return err
	}
	const path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	// python:3.13-slim-bookworm: bookworm's python3 (3.11), bookworm's glibc.
	py := "FROM scratch\nADD rootfs.tar /\nENV " + path + " LANG=C.UTF-8\nCMD [\"python3\"]\n"
	if err := b.buildctl(standInRefs["python"], py, pyRoot, nil); err != nil {
		return fmt.Errorf("python stand-in: %w", err)
	}

	// golang:1.26-bookworm: gcc and this host's Go toolchain, trusting
	// this host's CA bundle (a TLS-inspecting proxy's root included).
	goroot, err := runCmd("", nil, testbuild.Go(), "env", "GOROOT")
	if err != nil {
		return err
	}
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return fmt.Errorf("the host's CA bundle: %w", err)
	}
	files, err := writeFiles(map[string][]byte{"ca-certificates.crt": ca}, 0o644)
	if err != nil {
		return err
	}
	defer os.RemoveAll(files)
	golang := "FROM scratch\nADD rootfs.tar /\nCOPY --from=goroot / /usr/local/go/\nCOPY --from=files ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n" +
		"ENV GOLANG_VERSION=" + runtime.Version() + " GOTOOLCHAIN=local GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nWORKDIR /go\n"
	if err := b.buildctl(standInRefs["golang"], golang, goRoot, map[string]string{"goroot": strings.TrimSpace(string(goroot)), "files": files}); err != nil {
		return fmt.Errorf("golang stand-in: %w", err)
	}

	// ghcr.io/astral-sh/uv:0.9.30: the recording uv, at /uv and /uvx.
	uv, err := fakeUV(target)
	if err != nil {
		return err
	}
	uvDir, err := writeFiles(map[string][]byte{"uv": uv, "uvx": uv}, 0o755)
	if err != nil {
		return err
	}
	defer os.RemoveAll(uvDir)
	if err := b.buildctl(standInRefs["uv"], "FROM scratch\nCOPY uv uvx /\n", uvDir, nil); err != nil {
		return fmt.Errorf("uv stand-in: %w", err)
	}

	// docker/dockerfile:1.7: BuildKit's own frontend, from the same module,
	// labelled as its release image is.
	fe, err := os.ReadFile(filepath.Join(b.tools, "dockerfile-frontend"))
	if err != nil {
		return err
	}
	feDir, err := writeFiles(map[string][]byte{"dockerfile-frontend": fe}, 0o755)
	if err != nil {
		return err
	}
	defer os.RemoveAll(feDir)
	frontend := `FROM scratch
LABEL moby.buildkit.frontend.network.none="true"
LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts,moby.buildkit.frontend.gitquerystring,moby.buildkit.frontend.contexts.zstd"
COPY dockerfile-frontend /bin/dockerfile-frontend
ENTRYPOINT ["/bin/dockerfile-frontend"]
`
	if err := b.buildctl(standInRefs["dockerfile"], frontend, feDir, nil); err != nil {
		return fmt.Errorf("dockerfile frontend stand-in: %w", err)
	}
	return nil
}

// nssProject writes the stand-in Safe Synthesizer project (the nss build
// context) into dir: extras cu129 and cu130 pin different torch builds, so
// the image tells which extra it was built with.
func nssProject(dir string) error {
	files := map[string]string{
		"pyproject.toml": `[project]
name = "nemo-safe-synthesizer"
dynamic = ["version"]
requires-python = ">=3.11"
dependencies = ["huggingface-hub==0.35.3", "transformers==4.57.1", "pandas==2.3.3"]

[project.optional-dependencies]
engine = ["vllm==0.11.0", "flashinfer-python==0.4.1", "flashinfer-cubin==0.4.1", "flashinfer-jit-cache==0.4.1", "unsloth==2025.10.1"]
cu129 = ["torch==2.8.0+cu129", "torchvision==0.23.0+cu129", "torchaudio==2.8.0+cu129", "torchao==0.13.0", "triton==3.4.0"]
cu130 = ["torch==2.9.0+cu130", "torchvision==0.24.0+cu130", "torchaudio==2.9.0+cu130", "torchao==0.14.0", "triton==3.5.0"]

[project.scripts]
safe-synthesizer = "nemo_safe_synthesizer.cli:main"

[dependency-groups]
dev = ["pytest==8.4.2", "ruff==0.14.1"]
`,
		// A frozen sync needs the lock beside pyproject.toml; the stand-in
		// uv reads versions from the pins above.
		"uv.lock":                                 "version = 1\nrevision = 3\nrequires-python = \">=3.11\"\n",
		"README.md":                               "Stand-in Safe Synthesizer project for the nss-entrypoint e2e image build.\n",
		"src/nemo_safe_synthesizer/__init__.py":   "\"\"\"Stand-in package.\"\"\"\n",
		"src/nemo_safe_synthesizer/cli.py":        "def main():\n    raise SystemExit(\"stand-in\")\n",
		"src/nemo_safe_synthesizer/generation.py": "GENERATION = 1\n",
		// make test, as the dev image runs it by default: it proves the
		// checkout is the workspace and that git trusts it.
		"Makefile": "test:\n\tgit -C /workspace rev-parse --is-inside-work-tree\n\t@echo \"stand-in tests ran in $$(pwd) with $$(ls /opt/venv/lib/python3*/site-packages | grep -c dist-info) distributions\"\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// makeTarget runs `make target` in the repository (or in repo), as a user
// would, with the builder's environment and vars, and returns its output.
func (b *builder) makeTarget(repo, target string, vars ...string) (string, time.Duration, error) {
	if repo == "" {
		repo = testbuild.RepoRoot()
	}
	start := time.Now()
	cmd := exec.Command("make", "--no-print-directory", target)
	cmd.Dir = repo
	cmd.Env = append(append(os.Environ(), b.env()...), vars...)
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return string(out), took, fmt.Errorf("make %s: %v\n%s", target, err, tail(out))
	}
	return string(out), took, nil
}

// imageSize is the image's size as the engine reports it.
func imageSize(tag string) (int64, error) {
	out, err := exec.Command("docker", "image", "inspect", "-f", "{{.Size}}", tag).Output()
	if err != nil {
		return 0, fmt.Errorf("docker image inspect %s: %v", tag, err)
	}
	return strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
}
