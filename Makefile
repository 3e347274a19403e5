# nss-entrypoint build tasks. `make help` lists them.

GO           ?= go
BIN          ?= bin
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT       ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
CUDA_VARIANT ?=
PKG          := github.com/nvidia-nemo/nss-entrypoint
STAMP        := -X $(PKG)/internal/version.Version=$(VERSION) \
                -X $(PKG)/internal/version.Commit=$(COMMIT) \
                -X $(PKG)/internal/version.CUDAVariant=$(CUDA_VARIANT)

# go-nvml's header marks functions we never call as deprecated; the C
# compiler's warnings about them are noise, not news.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

STATICCHECK ?= $(GO) tool staticcheck

.PHONY: all build test bench lint diagnose e2e e2e-gpu gpu-suite clean help

all: build

help: ## list the tasks
	@grep -hE '^[a-zA-Z0-9_.:-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: $(BIN)/nss-entrypoint $(BIN)/nss-diagnose $(BIN)/nss-gpu-probe ## build the three binaries into bin/

# nss-entrypoint: static, no cgo, so it runs in any image and never links NVML.
# -E makes internal/procstate's stub the ELF entry point: it records the
# signal mask, ignored signals and closed descriptors before the Go runtime
# changes them, so that the target inherits them exactly.
ENTRY        := -E $(PKG)/internal/procstate.entry
$(BIN)/nss-entrypoint: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(ENTRY) $(STAMP)" -o $@ ./cmd/nss-entrypoint

# nss-diagnose: static; the report behind nss-entrypoint --diagnose, kept out
# of nss-entrypoint so that its packages never initialise on the start path.
# Linked with the same stub, so that its runtime starts with its own settings
# (the user's GOMEMLIMIT=4G would abort it) and it reports the user's.
$(BIN)/nss-diagnose: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(ENTRY) $(STAMP)" -o $@ ./cmd/nss-diagnose

# nss-gpu-probe: cgo over go-nvml, lazily bound (go-nvml leaves nvml* symbols
# undefined until first call), glibc its only runtime dependency.
$(BIN)/nss-gpu-probe: FORCE
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags "-s -w $(STAMP) -extldflags=-Wl,-z,lazy" -o $@ ./cmd/nss-gpu-probe

FORCE:

test: ## run the unit, script and architecture tests (needs Go and gcc)
	$(GO) test -count=1 ./...
	$(GO) test -race -count=1 ./internal/check/... ./internal/hints ./internal/gpuhelper ./internal/diagnose/...

bench: ## measure whole-process start time of the entrypoint (prints a table)
	$(GO) run ./bench/startbench -rounds $(or $(ROUNDS),300)

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e,gpu ./e2e
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags e2e,gpu ./e2e

e2e: ## build the GPU image with BuildKit and run the end-to-end suite in its containers (needs a Docker engine)
	$(GO) test -tags e2e -count=1 -timeout 45m -v ./e2e

# The GPU-host suite runs prebuilt binaries, so that a GPU host needs
# neither Go nor gcc: gpu-suite lays them out, e2e/gpu/run.sh runs them.
GPU_SUITE ?= .gpu-suite

e2e-gpu: ## run the GPU-host suite here (skips, saying why, without a GPU)
	$(MAKE) gpu-suite GPU_SUITE=$(GPU_SUITE)
	NSS_E2E_BIN=$(abspath $(GPU_SUITE))/bin $(GPU_SUITE)/gpu.test -test.v -test.count=1

gpu-suite: ## prepare $(GPU_SUITE)/ to copy to a GPU host: binaries, fake target, test binary
	$(MAKE) build BIN=$(GPU_SUITE)/bin CUDA_VARIANT=$(or $(CUDA_VARIANT),cu129)
	gcc -static -O2 -o $(GPU_SUITE)/bin/safe-synthesizer testdata/faketarget/faketarget.c
	mkdir -p $(GPU_SUITE)/stubs
	gcc -shared -fPIC -O2 -DFAKE_CUDA_STUB -o $(GPU_SUITE)/stubs/libcuda.so testdata/fakecuda/fakecuda.c
	CGO_ENABLED=0 $(GO) build -o $(GPU_SUITE)/bin/minexec ./testdata/bench/minexec
	CGO_ENABLED=0 $(GO) test -c -tags gpu -o $(GPU_SUITE)/gpu.test ./e2e

diagnose: build ## build, then run the support report on this host
	@# 0 and 1 are complete reports (1: a check failed); 2 and 3 are errors.
	$(BIN)/nss-entrypoint --diagnose; status=$$?; [ $$status -le 1 ]

clean:
	rm -rf $(BIN)

# ---- GPU image (containers/README.md documents these) ----------------------

CONTAINER_ENGINE              ?= $(shell command -v docker >/dev/null 2>&1 && echo docker || echo podman)
CONTAINER_GPU_EXTRA           ?= cu129
CONTAINER_GPU_VARIANT         ?= $(CONTAINER_GPU_EXTRA)
CONTAINER_GPU_PACKAGE_VERSION ?=
CONTAINER_GPU_IMAGE           ?= nss-gpu:latest
CONTAINER_GPU_IMAGE_DEV       ?= nss-gpu-dev:latest
CONTAINER_GPU_PLATFORM        ?= linux/amd64
CONTAINER_GPU_REGISTRY        ?=
CONTAINER_GPU_FLAG            ?= $(if $(filter podman,$(CONTAINER_ENGINE)),--device nvidia.com/gpu=all,--gpus all)
CONTAINER_HF_CACHE            ?= $(HOME)/.cache/huggingface
CONTAINER_EXTRA_MOUNTS        ?=
NSS_SOURCE                    ?= ../Safe-Synthesizer
CMD                           ?=

# The Dockerfile needs BuildKit (named contexts, RUN --mount): docker builds
# through buildx, which --load's the result into the engine whatever the
# builder; podman (buildah) builds it natively.
CONTAINER_BUILD = $(if $(filter podman,$(CONTAINER_ENGINE)),podman build,$(CONTAINER_ENGINE) buildx build --load)

CONTAINER_BUILD_ARGS = -f containers/Dockerfile.cuda \
	--build-context nss=$(NSS_SOURCE) \
	--build-arg CONTAINER_EXTRA=$(CONTAINER_GPU_EXTRA) \
	--build-arg CONTAINER_VARIANT=$(CONTAINER_GPU_VARIANT) \
	--build-arg PACKAGE_VERSION=$(CONTAINER_GPU_PACKAGE_VERSION) \
	--build-arg NSS_ENTRYPOINT_VERSION=$(VERSION) \
	--build-arg NSS_ENTRYPOINT_COMMIT=$(COMMIT)

# The Safe Synthesizer checkout is the workspace (when NSS_SOURCE is a
# folder, not a git URL), and the host's Hugging Face cache is mounted where
# upstream's docs put it.
CONTAINER_RUN_ARGS = --rm $$([ -t 0 ] && echo -it) $(CONTAINER_GPU_FLAG) --shm-size=1g \
	$(if $(wildcard $(NSS_SOURCE)),-v "$(abspath $(NSS_SOURCE)):/workspace") \
	-v "$(CONTAINER_HF_CACHE):/workspace/.hf_cache" \
	-e HF_HOME=/workspace/.hf_cache -e HF_TOKEN \
	$(CONTAINER_EXTRA_MOUNTS)

.PHONY: container-build-gpu container-build-gpu-dev container-build-gpu-multiarch container-run-gpu container-run-gpu-dev

container-build-gpu: ## build the runtime image (CONTAINER_GPU_* variables)
	$(CONTAINER_BUILD) --platform $(CONTAINER_GPU_PLATFORM) $(CONTAINER_BUILD_ARGS) --target runtime -t $(CONTAINER_GPU_IMAGE) .

container-build-gpu-dev: ## build the dev image
	$(CONTAINER_BUILD) --platform $(CONTAINER_GPU_PLATFORM) $(CONTAINER_BUILD_ARGS) --target dev -t $(CONTAINER_GPU_IMAGE_DEV) .

container-build-gpu-multiarch: ## build and push a linux/amd64 + linux/arm64 manifest (needs CONTAINER_GPU_REGISTRY)
	$(if $(CONTAINER_GPU_REGISTRY),,$(error CONTAINER_GPU_REGISTRY is required for a multi-arch build, e.g. CONTAINER_GPU_REGISTRY=ghcr.io/nvidia-nemo))
ifeq ($(CONTAINER_ENGINE),podman)
	podman build --platform linux/amd64,linux/arm64 $(CONTAINER_BUILD_ARGS) --target runtime --manifest $(CONTAINER_GPU_REGISTRY)/$(CONTAINER_GPU_IMAGE) .
	podman manifest push --all $(CONTAINER_GPU_REGISTRY)/$(CONTAINER_GPU_IMAGE)
else
	docker buildx build --platform linux/amd64,linux/arm64 $(CONTAINER_BUILD_ARGS) --target runtime --tag $(CONTAINER_GPU_REGISTRY)/$(CONTAINER_GPU_IMAGE) --push .
endif

# The run targets build first, as upstream's tasks do, and create the host
# cache folder before mounting it (else the engine creates it, owned by root).
container-run-gpu: container-build-gpu ## build, then run CMD (default --help) in the runtime image with GPUs, NSS_SOURCE at /workspace and the HF cache
	mkdir -p "$(CONTAINER_HF_CACHE)"
	$(CONTAINER_ENGINE) run $(CONTAINER_RUN_ARGS) $(CONTAINER_GPU_IMAGE) $(or $(CMD),--help)

container-run-gpu-dev: container-build-gpu-dev ## build, then run CMD (default make test) in the dev image
	mkdir -p "$(CONTAINER_HF_CACHE)"
	$(CONTAINER_ENGINE) run $(CONTAINER_RUN_ARGS) $(CONTAINER_GPU_IMAGE_DEV) $(or $(CMD),make test)
