#!/usr/bin/env bash
# Builds a real Weaviate server for medic's knowledge-base tests, from the Go
# module proxy only: nothing is installed by hand and nothing outside the tools
# dir is touched (besides the Go module and build caches).
#
#   test/tools/build-weaviate.sh        # prints the directory holding weaviate-server
#
# Result: <tools>/weaviate-<version>/weaviate-server, where <tools> is
# $MEDIC_TOOLS_DIR when set, else .tools at the repository root. Idempotent:
# when the binary exists it only prints the directory; concurrent callers
# serialise on a lock file and the binary appears by an atomic rename. Progress
# goes to stderr; stdout carries only the directory.
#
# v1.39.3 is pinned: v1.39.7 needs a dependency version the proxy refuses. A
# cold build takes about 3.5 minutes on 2 cores (182 MiB binary).
set -euo pipefail

WEAVIATE_VERSION="${WEAVIATE_VERSION:-v1.39.3}"
MODULE="github.com/weaviate/weaviate"

log() { printf 'build-weaviate: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "${script_dir}/lib.sh"
tool_begin weaviate "${WEAVIATE_VERSION}" weaviate-server
bin="${dest}/weaviate-server"

command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }

start_s=${SECONDS}
work="$(mktemp -d "${TMPDIR:-/tmp}/medic-weaviate-build.XXXXXX")"
tmp="${dest}/.weaviate-server.tmp.$$"
cleanup() {
	rm -rf "${work}"
	rm -f "${tmp}"
}
trap cleanup EXIT

# Outside any module and workspace, so the repository's go.mod has no say.
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0
mkdir -p "${dest}"
log "go install ${MODULE}/cmd/weaviate-server@${WEAVIATE_VERSION} (cold: about 3.5 minutes on 2 cores)"
(cd "${work}" && GOBIN="${work}/bin" go install -trimpath -ldflags='-s -w' "${MODULE}/cmd/weaviate-server@${WEAVIATE_VERSION}")
cp "${work}/bin/weaviate-server" "${tmp}"
"${tmp}" --help >/dev/null 2>&1 || { log "built weaviate-server does not run"; exit 1; }
mv -f "${tmp}" "${bin}" # same directory: atomic rename
log "built ${bin} in $((SECONDS - start_s))s"
printf '%s\n' "${dest}"
