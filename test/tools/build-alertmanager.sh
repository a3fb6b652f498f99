#!/usr/bin/env bash
# Builds a real Alertmanager (and amtool) for medic's tests, from the module
# proxy only: nothing is installed by hand and nothing outside the tools dir is
# touched (besides the Go module and build caches).
#
#   test/tools/build-alertmanager.sh        # prints the directory holding both binaries
#
# Result: <tools>/alertmanager-<version>/{alertmanager,amtool}, where <tools> is
# $MEDIC_TOOLS_DIR when set, else the per-user tools cache (lib.sh: default_tools_dir) (whatever the
# caller's cwd). Idempotent: when both binaries exist it only prints the
# directory. Progress goes to stderr; stdout carries only the directory.
#
# Why not `go install …/cmd/alertmanager@v0.34.2`: ui/web.go embeds ui/app/dist
# (the compiled web UI), which is not part of the module zip, so the build
# fails. We copy the module into a writable temp dir, add a placeholder UI and
# build there.
set -euo pipefail

ALERTMANAGER_VERSION="${ALERTMANAGER_VERSION:-v0.34.2}"
MODULE="github.com/prometheus/alertmanager"

log() { printf 'build-alertmanager: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "${script_dir}/lib.sh"
tool_begin alertmanager "${ALERTMANAGER_VERSION}" alertmanager amtool

command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }

start_s=${SECONDS}
work="$(mktemp -d "${TMPDIR:-/tmp}/medic-alertmanager-build.XXXXXX")"
cleanup() {
	chmod -R u+w "${work}" 2>/dev/null || true
	rm -rf "${work}"
	rm -f "${dest}"/.alertmanager.tmp.* "${dest}"/.amtool.tmp.* 2>/dev/null || true
}
trap cleanup EXIT

# Outside any module and workspace, so the repository's go.mod has no say.
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

log "downloading ${MODULE}@${ALERTMANAGER_VERSION} (module proxy: $(go env GOPROXY))"
mod_json="$(cd "${work}" && go mod download -json "${MODULE}@${ALERTMANAGER_VERSION}")"
mod_dir="$(printf '%s\n' "${mod_json}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
if [[ -z "${mod_dir}" || ! -f "${mod_dir}/go.mod" ]]; then
	log "could not find the module directory in: ${mod_json}"
	exit 1
fi
log "module cache copy: ${mod_dir}"

src="${work}/alertmanager"
cp -R "${mod_dir}" "${src}"
chmod -R u+w "${src}"

# Every //go:embed pattern must match something. ui/web.go embeds app/dist
# (absent from the module zip); the others (template/*.tmpl, …) ship with it.
# Create a placeholder for any embed directory that is missing.
while IFS= read -r line; do
	file="${line%%:*}"
	read -r -a patterns <<<"${line#*//go:embed}"
	for p in "${patterns[@]}"; do
		p="${p//\"/}"
		p="${p#all:}"
		case "${p}" in *'*'* | *'?'* | *'['*) continue ;; esac
		target="$(dirname "${file}")/${p}"
		if [[ ! -e "${target}" ]]; then
			log "placeholder for //go:embed ${p} (${file#"${src}"/})"
			mkdir -p "${target}"
			printf '<!doctype html><title>Alertmanager</title><p>UI not built (medic test build).</p>\n' >"${target}/index.html"
		fi
	done
done < <(grep -rn --include='*.go' --exclude='*_test.go' '^//go:embed ' "${src}" | sed 's/^\([^:]*\):[0-9]*:/\1:/')
# The known case, stated explicitly in case the scan above ever misses it.
if [[ ! -f "${src}/ui/app/dist/index.html" ]]; then
	mkdir -p "${src}/ui/app/dist"
	printf '<!doctype html><title>Alertmanager</title><p>UI not built (medic test build).</p>\n' >"${src}/ui/app/dist/index.html"
fi

# Same tags and version stamping as upstream's .promu.yml, so `--version` and
# the webhook User-Agent ("Alertmanager/0.34.2") look like a release build.
vpkg=github.com/prometheus/common/version
ldflags="-s -w -X ${vpkg}.Version=${ALERTMANAGER_VERSION#v} -X ${vpkg}.Branch=HEAD -X ${vpkg}.BuildUser=medic-tools"

mkdir -p "${dest}"
for cmd in amtool alertmanager; do
	tmp="${dest}/.${cmd}.tmp.$$"
	log "go build ./cmd/${cmd} (cold: about 1-2 minutes on 2 cores)"
	(cd "${src}" && go build -trimpath -gcflags="${TOOL_GCFLAGS}" -tags netgo -ldflags="${ldflags}" -o "${tmp}" "./cmd/${cmd}")
	"${tmp}" --version >/dev/null 2>&1 || { log "built ${cmd} does not run"; exit 1; }
	mv -f "${tmp}" "${dest}/${cmd}" # same directory: atomic rename
done

log "built ${dest}/alertmanager and ${dest}/amtool in $(took)"
printf '%s\n' "${dest}"
