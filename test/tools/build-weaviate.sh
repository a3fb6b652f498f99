#!/usr/bin/env bash
# Builds a real Weaviate server for medic's knowledge-base tests, from the Go
# module proxy only: nothing is installed by hand and nothing outside the tools
# dir is touched (besides the Go module and build caches).
#
#   test/tools/build-weaviate.sh        # prints the directory holding weaviate-server
#
# Result: <tools>/weaviate-<version>/weaviate-server, where <tools> is the
# per-user tools cache (lib.sh: default_tools_dir). Idempotent: when the binary
# exists it only prints the directory; concurrent callers serialise on a lock
# file and the binary appears by an atomic rename. Progress goes to stderr;
# stdout carries only the directory.
#
# v1.39.3 is pinned: v1.39.7 needs a dependency version the proxy refuses.
set -euo pipefail

WEAVIATE_VERSION="${WEAVIATE_VERSION:-v1.39.3}"

log() { printf 'build-weaviate: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "${script_dir}/lib.sh"
tool_begin weaviate "${WEAVIATE_VERSION}" weaviate-server
go_install_tool "github.com/weaviate/weaviate/cmd/weaviate-server@${WEAVIATE_VERSION}" weaviate-server "about 6 CPU-minutes"
