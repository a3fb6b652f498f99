#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd for medic's tests (test/kubeapi), from
# the module proxy only: nothing is installed by hand and nothing outside the
# tools dir is touched (besides the Go module and build caches).
#
#   test/tools/build-kube.sh        # prints the directory holding both binaries
#
# Result: <tools>/kube-<version>/{kube-apiserver,etcd}, where <tools> is
# $MEDIC_TOOLS_DIR when set, else the per-user tools cache (lib.sh: default_tools_dir) (whatever the
# caller's cwd). Idempotent: when both binaries exist it only prints the
# directory. Progress goes to stderr; stdout carries only the directory.
#
# How: there is no Debian package and setup-envtest cannot download here, so
# the wrapper module test/tools/kube (its own go.mod: k8s.io/kubernetes plus a
# replace line for every staging module, and go.etcd.io/etcd/server/v3) holds
# two small mains, upstream's kube-apiserver main and etcdmain.Main. Cold
# build: etcd about 40 s, kube-apiserver about 5 minutes on 2 cores.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"

log() { printf 'build-kube: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
wrapper="${script_dir}/kube"
# shellcheck source=lib.sh
source "${script_dir}/lib.sh"
tool_begin kube "${KUBE_VERSION}" kube-apiserver etcd

# The wrapper module pins the version; refuse a mismatch rather than build
# something else under a misleading name.
if ! grep -q "k8s.io/kubernetes ${KUBE_VERSION}\$" "${wrapper}/go.mod"; then
	log "${wrapper}/go.mod does not require k8s.io/kubernetes ${KUBE_VERSION}"
	exit 1
fi

command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }

start_s=${SECONDS}
cleanup() {
	rm -f "${dest}"/.kube-apiserver.tmp.* "${dest}"/.etcd.tmp.* 2>/dev/null || true
}
trap cleanup EXIT

# The wrapper is its own module: no workspace, and go.sum must already pin
# everything (-mod=readonly), so a build never edits the repository.
export GOWORK=off GOFLAGS="-buildvcs=false -mod=readonly" CGO_ENABLED=0

mkdir -p "${dest}"
# The same version stamping as upstream's hack/lib/version.sh, so that
# /version answers v1.36.3 and clients do not warn about skew.
ver="${KUBE_VERSION#v}"
major="${ver%%.*}"
rest="${ver#*.}"
minor="${rest%%.*}"
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X ${p}.gitVersion=${KUBE_VERSION} -X ${p}.gitMajor=${major} -X ${p}.gitMinor=${minor}"
	ldflags+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=1970-01-01T00:00:00Z"
done

for cmd in etcd kube-apiserver; do
	tmp="${dest}/.${cmd}.tmp.$$"
	case "${cmd}" in
	etcd) log "go build ./cmd/etcd (cold: about 40 s on 2 cores)" ;;
	kube-apiserver) log "go build ./cmd/kube-apiserver (cold: about 5 minutes on 2 cores)" ;;
	esac
	t0=${SECONDS}
	(cd "${wrapper}" && go build -trimpath -gcflags="${TOOL_GCFLAGS}" -ldflags="${ldflags}" -o "${tmp}" "./cmd/${cmd}")
	"${tmp}" --version >/dev/null 2>&1 || { log "built ${cmd} does not run"; exit 1; }
	mv -f "${tmp}" "${dest}/${cmd}" # same directory: atomic rename
	log "built ${cmd} in $((SECONDS - t0))s"
done

log "built ${dest}/kube-apiserver and ${dest}/etcd in $(took)"
printf '%s\n' "${dest}"
