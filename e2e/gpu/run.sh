#!/usr/bin/env bash
# Runs the GPU-host suite from a folder that `make gpu-suite` prepared (no Go
# or gcc needed on the GPU host) and writes what it found under $OUT:
# host.txt (card, driver), gpu-suite.log, probe.json, diagnose.json and
# diagnose.txt (redacted), startup-hints.txt, gpu-start-times.md and
# no-gpu-start-times.md, cuda-timings.md (the CUDA stage's cost, which decides
# whether cuInit may run on the start path) and probe-diagnose.json (the CUDA
# stage and hardware health); the summary goes to stdout.
set -u
suite=$(cd "${1:-.gpu-suite}" && pwd)
out=${OUT:-/tmp/nss-gpu-out}
mkdir -p "$out"
bin=$suite/bin

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  uname -srm
  grep -E '^(PRETTY_NAME)=' /etc/os-release
  ldd --version 2>&1 | head -n 1
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap,persistence_mode,mig.mode.current --format=csv
  nvidia-smi -q | grep -E 'CUDA Version|NVML Version' 
  ls -l /dev/nvidia* 2>&1
} >"$out/host.txt" 2>&1

export NSS_E2E_BIN=$bin NSS_E2E_OUT=$out
"$suite/gpu.test" -test.v -test.count=1 -test.timeout=240s >"$out/gpu-suite.log" 2>&1
suite_rc=$?

# UUIDs and PCI addresses identify the lent machine: keep them out of files
# that are committed.
scrub() { sed -E 's/GPU-[0-9a-f-]{36}/GPU-[uuid]/g; s/"pci_bus_id": *"[^"]*"/"pci_bus_id":"[pci]"/g'; }
"$bin/nss-gpu-probe" | scrub >"$out/probe.json" 2>&1
"$bin/nss-gpu-probe" --diagnose | scrub >"$out/probe-diagnose.json" 2>&1
(cd / && "$bin/nss-entrypoint" --diagnose --format json) >"$out/diagnose.json" 2>>"$out/gpu-suite.log"
(cd / && "$bin/nss-entrypoint" --diagnose --verbose) >"$out/diagnose.txt" 2>>"$out/gpu-suite.log"
PATH=$bin:$PATH FAKE_TARGET_STDOUT='' "$bin/nss-entrypoint" run 2>"$out/startup-hints.txt"

echo "gpu suite exit status: $suite_rc"
grep -E '^(--- |ok|PASS|FAIL)' "$out/gpu-suite.log"
cat "$out/host.txt" "$out/startup-hints.txt"
cat "$out/gpu-start-times.md" "$out/no-gpu-start-times.md" "$out/cuda-timings.md" 2>/dev/null
exit "$suite_rc"
