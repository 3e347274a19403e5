//go:build e2e

package e2e

// Which image the container suite runs, decided in one place.
//
// Every scenario runs the runtime stage of containers/Dockerfile.cuda, built
// by the user's own command (make container-build-gpu) through BuildKit and
// loaded into the Docker engine: suiteImage. Nothing is assembled by hand
// any more. The one comparison that needs a second start, "the same image
// started as tini -- safe-synthesizer", runs the same image with
// --entrypoint tini: directFlags.

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The tags the suite builds. They are not the Makefile's defaults, so that
// a run of make e2e leaves a user's nss-gpu:latest alone.
const (
	runtimeTag = "nss-e2e-gpu:test"
	devTag     = "nss-e2e-gpu-dev:test"
	// e2ePackageVersion is stamped into the stand-in project's metadata
	// through CONTAINER_GPU_PACKAGE_VERSION.
	e2ePackageVersion = "0.1.0.dev0"
)

var (
	bk     *builder
	nssDir string // the stand-in Safe Synthesizer checkout (NSS_SOURCE)
	// suiteBuild is the output of the suite's make container-build-gpu.
	suiteBuild string
)

// suiteImage returns the image the container scenarios run, in Docker and
// (through imageUnderTest) in Podman, containerd and Slurm: the runtime
// stage of containers/Dockerfile.cuda, built in TestMain. t may be nil.
func suiteImage(testing.TB) string {
	return runtimeTag
}

// devImage returns the dev stage of containers/Dockerfile.cuda.
func devImage(t testing.TB) string {
	t.Helper()
	return devTag
}

// directFlags are the docker run flags that start suiteImage as
// tini -- safe-synthesizer, bypassing nss-entrypoint; the arguments then
// begin with "--", "safe-synthesizer".
func directFlags() (flags, argsPrefix []string) {
	return []string{"--entrypoint", "tini"}, []string{"--", "safe-synthesizer"}
}

// buildVars are the variables a user would set to build the images the
// suite runs from the stand-in project.
func buildVars(nss string) []string {
	return []string{"NSS_SOURCE=" + nss, "CONTAINER_GPU_IMAGE=" + runtimeTag, "CONTAINER_GPU_IMAGE_DEV=" + devTag,
		"CONTAINER_GPU_PACKAGE_VERSION=" + e2ePackageVersion}
}

// buildSuiteImages starts the builder, pushes the stand-ins and builds both
// targets with the Makefile, reporting times and the image's size.
func buildSuiteImages(target string) error {
	cache := cacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	start := time.Now()
	tools, err := buildTools(cache)
	if err != nil {
		return err
	}
	if bk, err = startBuilder(cache, tools); err != nil {
		return err
	}
	if err := bk.pushStandIns(cache, target); err != nil {
		return err
	}
	logf("build tools, registry %s, buildkitd and stand-ins ready in %v", bk.registry, time.Since(start).Round(time.Second))
	if nssDir, err = os.MkdirTemp("", "nss-e2e-safe-synthesizer-"); err != nil {
		return err
	}
	if err := nssProject(nssDir); err != nil {
		return err
	}
	for _, target := range []string{"container-build-gpu", "container-build-gpu-dev"} {
		out, took, err := bk.makeTarget("", target, buildVars(nssDir)...)
		if err != nil {
			return err
		}
		if target == "container-build-gpu" {
			suiteBuild = out
		}
		logf("make %s: %v", target, took.Round(100*time.Millisecond))
	}
	// The same command again, nothing changed: every step from the cache.
	_, took, err := bk.makeTarget("", "container-build-gpu", buildVars(nssDir)...)
	if err != nil {
		return err
	}
	logf("make container-build-gpu again, nothing changed: %v", took.Round(100*time.Millisecond))
	for _, tag := range []string{runtimeTag, devTag} {
		size, err := imageSize(tag)
		if err != nil {
			return err
		}
		logf("image %s: %.0f MB", tag, float64(size)/1e6)
	}
	logf("image build total %v (cache %s)", time.Since(start).Round(time.Second), cache)
	return nil
}

// stopBuilder stops the daemons and removes the stand-in project.
func stopBuilder() {
	if bk != nil {
		bk.Stop()
		os.RemoveAll(filepath.Dir(bk.sock))
	}
	if nssDir != "" {
		os.RemoveAll(nssDir)
	}
}
