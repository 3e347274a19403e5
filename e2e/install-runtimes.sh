#!/usr/bin/env bash
# Installs what the end-to-end suite's Podman, containerd/nerdctl and Slurm
# scenarios need, as root on Debian bookworm: Debian's packages, the
# unprivileged user for rootless Podman, and nerdctl built from the Go
# module proxy at a pinned version. It starts nothing: each test starts its
# own daemons with private state and stops them. Safe to run again.
set -euo pipefail

NERDCTL_VERSION=${NERDCTL_VERSION:-v2.1.3}
ROOTLESS_USER=nss-e2e

export DEBIAN_FRONTEND=noninteractive
need=()
# podman: rootful and rootless (uidmap's newuidmap); containerd and ctr;
# slurm-wlm's controller, node daemon and client, with munge.
for pkg in podman runc uidmap containerd slurmctld slurmd slurm-client munge; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Debian's packages start no daemons here (no systemd); make sure of it, so
# that the tests' private munge and Slurm are the only ones.
for svc in munge slurmctld slurmd; do
  if pid=$(cat "/run/$svc/$svc.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
    echo "note: a system $svc (pid $pid) runs; the tests use their own on private ports" >&2
  fi
done

if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
  # useradd gives the user a subordinate uid and gid range (/etc/subuid).
  useradd --create-home --shell /bin/sh "$ROOTLESS_USER"
fi

# nerdctl: `go install` is refused by the proxy's deprecation look-up here,
# so it is built from the module's download directory. Its go.mod replaces
# the test-helper module mod/tigron with a directory that the module zip
# leaves out; only nerdctl's own test helpers import its package tig, for one
# interface, so a stand-in package with that interface lets the build load.
if ! nerdctl --version 2>/dev/null | grep -q "${NERDCTL_VERSION#v}"; then
  echo "== building nerdctl $NERDCTL_VERSION"
  src=$(cd / && go mod download -json "github.com/containerd/nerdctl/v2@$NERDCTL_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  if [ -z "$src" ]; then
    echo "go mod download github.com/containerd/nerdctl/v2@$NERDCTL_VERSION failed" >&2
    exit 1
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  mkdir -p "$work/mod/tigron/tig"
  printf 'module github.com/containerd/nerdctl/mod/tigron\n\ngo 1.23\n' >"$work/mod/tigron/go.mod"
  printf 'package tig\n\n// T is the part of testing.T that nerdctl'"'"'s test helpers use.\ntype T interface {\n\tLog(args ...any)\n\tFailNow()\n}\n' >"$work/mod/tigron/tig/tig.go"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/containerd/nerdctl/v2/pkg/version.Version=$NERDCTL_VERSION" -o /usr/local/bin/nerdctl ./cmd/nerdctl)
  nerdctl --version
fi
