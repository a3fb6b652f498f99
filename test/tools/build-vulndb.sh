#!/usr/bin/env bash
# Builds govulncheck and an offline Go vulnerability database for
# `make vulncheck`, from the Go module proxy only: the proxy serves
# golang.org/x/vuln (govulncheck) and golang.org/x/vulndb, whose data/osv
# folder is the whole database as OSV JSON files. Nothing is installed by
# hand and nothing outside the tools dir is touched (besides the Go module and
# build caches).
#
#   test/tools/build-vulndb.sh      # prints the directory holding govulncheck and db/
#
# Result: <tools>/vulndb-<vuln>-<vulndb>/govulncheck and .../db (the v1
# database layout: index/db.json, index/modules.json, index/vulns.json,
# ID/GO-….json) for `govulncheck -db file://<dir>/db`. <tools> is
# $MEDIC_TOOLS_DIR when set, else the per-user cache (see lib.sh).
# Idempotent: when both exist it only prints the directory; concurrent callers
# serialise on a lock file and the database appears by an atomic rename.
# Progress goes to stderr; stdout carries only the directory.
#
# How: `go install golang.org/x/vuln/cmd/govulncheck@<version>` and
# `go install golang.org/x/vulndb/cmd/indexdb@<version>` (neither module has
# replace directives), then `indexdb -vulns <vulndb>/data/osv -out db`, the
# command the Go team uses to build a v1 database from a folder of OSV files.
# Both versions are pinned: the database is as of VULNDB_VERSION's commit, so a
# run is reproducible; bump VULNDB_VERSION to pick up new reports. Cold build:
# about a minute on 2 cores (the module is about 20 MiB of OSV files).
set -euo pipefail

VULN_VERSION="${VULN_VERSION:-v1.9.0}"
VULNDB_VERSION="${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}"

log() { printf 'build-vulndb: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "${script_dir}/lib.sh"
# govulncheck is moved in last, so its presence means the database is whole.
tool_begin vulndb "${VULN_VERSION}-${VULNDB_VERSION##*-}" govulncheck

command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }

start_s=${SECONDS}
work="$(mktemp -d "${TMPDIR:-/tmp}/medic-vulndb-build.XXXXXX")"
tmpdb="${dest}/.db.tmp.$$"
cleanup() {
	rm -rf "${work}" "${tmpdb}" 2>/dev/null || true
}
trap cleanup EXIT

# Outside any module and workspace, so the repository's go.mod has no say.
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

mkdir -p "${dest}"
log "go install golang.org/x/vuln/cmd/govulncheck@${VULN_VERSION} and golang.org/x/vulndb/cmd/indexdb@${VULNDB_VERSION} (module proxy: $(go env GOPROXY))"
for pkg in "golang.org/x/vuln/cmd/govulncheck@${VULN_VERSION}" "golang.org/x/vulndb/cmd/indexdb@${VULNDB_VERSION}"; do
	(cd "${work}" && GOBIN="${work}/bin" go install -trimpath -ldflags='-s -w' "${pkg}")
done

log "go mod download golang.org/x/vulndb@${VULNDB_VERSION} (its data/osv is the database)"
src="$(cd "${work}" && go mod download -json "golang.org/x/vulndb@${VULNDB_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "${src}/data/osv" ]] || { log "no data/osv in ${src}"; exit 1; }

log "indexing $(find "${src}/data/osv" -name '*.json' | wc -l) OSV reports"
rm -rf "${tmpdb}"
"${work}/bin/indexdb" -vulns "${src}/data/osv" -out "${tmpdb}"
[[ -s "${tmpdb}/index/db.json" && -s "${tmpdb}/index/modules.json" ]] || { log "indexdb wrote no index"; exit 1; }

rm -rf "${dest}/db"
mv "${tmpdb}" "${dest}/db" # same directory: atomic rename
mv -f "${work}/bin/govulncheck" "${dest}/govulncheck"
"${dest}/govulncheck" -version >/dev/null 2>&1 || { log "built govulncheck does not run"; exit 1; }

log "built ${dest} (govulncheck ${VULN_VERSION}, database golang.org/x/vulndb@${VULNDB_VERSION}) in $(took)"
printf '%s\n' "${dest}"
