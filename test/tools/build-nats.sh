#!/usr/bin/env bash
# Builds nats-server for medic's cluster tests (test/cluster): real server
# processes, so that a node of a JetStream cluster can be killed with
# SIGKILL, which an in-process server cannot.
#
#   test/tools/build-nats.sh        # prints the directory holding nats-server
#
# Result: <tools>/nats-server-<version>/nats-server, where <tools> is
# $MEDIC_TOOLS_DIR when set, else the per-user tools cache (lib.sh) (whatever
# the caller's cwd). Idempotent: when the binary exists it only prints the
# directory; concurrent callers serialise on a lock file and the binary
# appears by an atomic rename. Progress goes to stderr; stdout carries only
# the directory.
#
# How: unlike the other tools, nats-server is built inside medic's own module
# (go build github.com/nats-io/nats-server/v2), so it is the very version
# medic embeds (go.mod pins it; NATS_VERSION must match it) and every module
# it needs is already in the module cache: no download beyond `go mod
# download`. Cold build: about a minute on 2 cores.
set -euo pipefail

MODULE="github.com/nats-io/nats-server/v2"

log() { printf 'build-nats: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "${script_dir}/lib.sh"
command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }

pinned="$(cd "${repo_root}" && GOWORK=off go list -m -f '{{.Version}}' "${MODULE}")"
NATS_VERSION="${NATS_VERSION:-${pinned}}"
if [[ "${NATS_VERSION}" != "${pinned}" ]]; then
	log "NATS_VERSION=${NATS_VERSION} but go.mod requires ${MODULE} ${pinned}; update one of them"
	exit 1
fi
tool_begin nats-server "${NATS_VERSION}" nats-server

start_s=${SECONDS}
tmp="${dest}/.nats-server.tmp.$$"
trap 'rm -f "${tmp}"' EXIT
mkdir -p "${dest}"
log "go build ${MODULE} ${NATS_VERSION} (cold: about a minute on 2 cores)"
(cd "${repo_root}" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "${tmp}" "${MODULE}")
"${tmp}" --version >/dev/null 2>&1 || { log "built nats-server does not run"; exit 1; }
mv -f "${tmp}" "${dest}/nats-server" # same directory: atomic rename
log "built ${dest}/nats-server in $(took)"
printf '%s\n' "${dest}"
