#!/usr/bin/env bash
# Builds a real Ollama server (CPU only) for medic's AI tests, from the Go
# module proxy and the npm registry only: nothing is installed by hand and
# nothing outside the tools dir is touched (besides the Go caches).
#
#   test/tools/build-ollama.sh        # prints the directory holding ollama
#
# Result: <tools>/ollama-<version>/ollama, where <tools> is $MEDIC_TOOLS_DIR
# when set, else the per-user tools cache (lib.sh). Idempotent: when the binary
# exists it only prints the directory; concurrent callers serialise on a lock
# file and the binary appears by an atomic rename. The npm tarball is kept in
# <tools>/ so a rebuild does not download it again. Progress goes to stderr;
# stdout carries only the directory.
#
# Why not `go install github.com/ollama/ollama@v0.17.4`: Go module zips drop
# vendor/ folders, and llama.cpp's vendored headers (nlohmann, miniaudio, stb)
# go with them. The npm package node-llama-cpp@3.22.1 carries a git bundle of
# a full llama.cpp checkout; its vendor/ is copied into a writable copy of the
# Ollama module (see internal/fixtures/testdata/models/README.md). Cold build: about 7-8
# minutes on 2 cores (cgo, gcc/g++).
set -euo pipefail

OLLAMA_VERSION="${OLLAMA_VERSION:-v0.17.4}"
NODE_LLAMA_CPP_VERSION="${NODE_LLAMA_CPP_VERSION:-3.22.1}"
MODULE="github.com/ollama/ollama"

log() { printf 'build-ollama: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "${script_dir}/lib.sh"
tool_begin ollama "${OLLAMA_VERSION}" ollama
bin="${dest}/ollama"

for c in go git npm tar gcc g++; do
	command -v "${c}" >/dev/null 2>&1 || { log "${c} is not on PATH"; exit 1; }
done

start_s=${SECONDS}
work="$(mktemp -d "${TMPDIR:-/tmp}/medic-ollama-build.XXXXXX")"
tmp="${dest}/.ollama.tmp.$$"
cleanup() {
	chmod -R u+w "${work}" 2>/dev/null || true
	rm -rf "${work}"
	rm -f "${tmp}"
}
trap cleanup EXIT

# 1. llama.cpp sources from the npm package (kept in the tools dir for reuse).
tgz="${tools_dir}/node-llama-cpp-${NODE_LLAMA_CPP_VERSION}.tgz"
if [[ ! -s "${tgz}" ]]; then
	log "npm pack node-llama-cpp@${NODE_LLAMA_CPP_VERSION} (about 36 MB)"
	mkdir -p "${work}/npm"
	(cd "${work}/npm" && npm pack --silent "node-llama-cpp@${NODE_LLAMA_CPP_VERSION}" >/dev/null)
	mv -f "${work}/npm/node-llama-cpp-${NODE_LLAMA_CPP_VERSION}.tgz" "${tgz}.tmp.$$"
	mv -f "${tgz}.tmp.$$" "${tgz}"
fi
tar -xzf "${tgz}" -C "${work}" package/llama/gitRelease.bundle
git -c advice.detachedHead=false clone --quiet "${work}/package/llama/gitRelease.bundle" "${work}/llama.cpp"

# 2. a writable copy of the Ollama module. Outside any module and workspace,
# so the repository's go.mod has no say.
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=1
# No debug information and no optimisation for llama.cpp's C/C++ (go's
# default is "-O2 -g"): the test server is never debugged and runs only the
# tiny models of testdata/models (220k parameters, a few milliseconds a
# token even unoptimised), and cgo compiles a package's C/C++ files one after
# another, so this is the longest single chain of a cold make test
# (llama-model.cpp alone: 21 s at -O1, 7.5 s at -O0). ggml-cpu's own
# "#cgo CFLAGS: -O3" still applies to its C kernels.
export CGO_CFLAGS="-O0 -g0" CGO_CXXFLAGS="-O0 -g0"
log "downloading ${MODULE}@${OLLAMA_VERSION}"
mod_json="$(cd "${work}" && go mod download -json "${MODULE}@${OLLAMA_VERSION}")"
mod_dir="$(printf '%s\n' "${mod_json}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
if [[ -z "${mod_dir}" || ! -f "${mod_dir}/go.mod" ]]; then
	log "could not find the module directory in: ${mod_json}"
	exit 1
fi
src="${work}/ollama"
cp -R "${mod_dir}" "${src}"
chmod -R u+w "${src}"

# 3. the vendor/ folder the module zip left out.
rm -rf "${src}/llama/llama.cpp/vendor"
cp -R "${work}/llama.cpp/vendor" "${src}/llama/llama.cpp/vendor"

# 4. build.
mkdir -p "${dest}"
log "go build (cgo, CPU only; cold: about 7-8 minutes on 2 cores)"
(cd "${src}" && go build -trimpath -gcflags="${TOOL_GCFLAGS}" -ldflags "-X ${MODULE}/version.Version=${OLLAMA_VERSION#v}" -o "${tmp}" .)
"${tmp}" --version >/dev/null 2>&1 || "${tmp}" --help >/dev/null 2>&1 || { log "built ollama does not run"; exit 1; }
mv -f "${tmp}" "${bin}" # same directory: atomic rename
log "built ${bin} in $(took)"
printf '%s\n' "${dest}"
