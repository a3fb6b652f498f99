#!/usr/bin/env bash
# Builds GoReleaser, for `make release-check` (goreleaser check on
# .goreleaser.yaml), from the Go module proxy only.
#
#   test/tools/build-goreleaser.sh        # prints the directory holding goreleaser
#
# Result: <tools>/goreleaser-<version>/goreleaser in the per-user tools cache
# (lib.sh: default_tools_dir); idempotent and locked like the other builds.
set -euo pipefail

GORELEASER_VERSION="${GORELEASER_VERSION:-v2.17.0}"

log() { printf 'build-goreleaser: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "${script_dir}/lib.sh"
tool_begin goreleaser "${GORELEASER_VERSION}" goreleaser
go_install_tool "github.com/goreleaser/goreleaser/v2@${GORELEASER_VERSION}" goreleaser "about 5 CPU-minutes"
