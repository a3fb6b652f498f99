#!/usr/bin/env bash
# Entry point for the real third-party tools medic's tests run. Each tool is
# built from pinned sources by the project's own scripts into the ignored
# per-user cache ~/.cache/medic/tools/<name>-<version>/ (or $MEDIC_TOOLS_DIR) and
# reused afterwards by every clone.
#
#   test/tools/tools.sh alertmanager   # path of the alertmanager binary (built if missing)
#   test/tools/tools.sh amtool         # path of amtool (built with alertmanager)
#   test/tools/tools.sh weaviate       # path of weaviate-server (built if missing)
#   test/tools/tools.sh ollama         # path of the ollama binary (built if missing)
#   test/tools/tools.sh kube-apiserver # path of kube-apiserver (built with etcd if missing)
#   test/tools/tools.sh etcd           # path of etcd (built with kube-apiserver)
#   test/tools/tools.sh helm           # path of helm (built if missing)
#   test/tools/tools.sh goreleaser     # path of goreleaser (built if missing)
#   test/tools/tools.sh govulncheck    # path of govulncheck; its offline database is db/ next to it
#   test/tools/tools.sh nats-server    # path of nats-server (the version go.mod pins; built if missing)
#   test/tools/tools.sh dir            # the tools directory
#   test/tools/tools.sh all            # build everything
#   test/tools/tools.sh list           # names this script knows
#
# Paths go to stdout, build logs to stderr. To add a tool, add a build-<name>.sh
# that prints the directory holding its binaries and a case below.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd "${script_dir}/../.." && pwd -P)"

# shellcheck source=lib.sh
source "${script_dir}/lib.sh"

usage() {
	sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in
alertmanager | amtool)
	dir="$("${script_dir}/build-alertmanager.sh")"
	printf '%s/%s\n' "${dir}" "$1"
	;;
weaviate)
	dir="$("${script_dir}/build-weaviate.sh")"
	printf '%s/weaviate-server\n' "${dir}"
	;;
ollama)
	dir="$("${script_dir}/build-ollama.sh")"
	printf '%s/ollama\n' "${dir}"
	;;
kube-apiserver | etcd)
	dir="$("${script_dir}/build-kube.sh")"
	printf '%s/%s\n' "${dir}" "$1"
	;;
helm)
	dir="$("${script_dir}/build-helm.sh")"
	printf '%s/helm\n' "${dir}"
	;;
goreleaser)
	dir="$("${script_dir}/build-goreleaser.sh")"
	printf '%s/goreleaser\n' "${dir}"
	;;
govulncheck)
	dir="$("${script_dir}/build-vulndb.sh")"
	printf '%s/govulncheck\n' "${dir}"
	;;
nats-server)
	dir="$("${script_dir}/build-nats.sh")"
	printf '%s/nats-server\n' "${dir}"
	;;
all)
	"${script_dir}/build-alertmanager.sh" >/dev/null
	"${script_dir}/build-weaviate.sh" >/dev/null
	"${script_dir}/build-ollama.sh" >/dev/null
	"${script_dir}/build-kube.sh" >/dev/null
	"${script_dir}/build-helm.sh" >/dev/null
	"${script_dir}/build-goreleaser.sh" >/dev/null
	"${script_dir}/build-vulndb.sh" >/dev/null
	"${script_dir}/build-nats.sh" >/dev/null
	;;
dir)
	default_tools_dir
	;;
list)
	printf '%s\n' alertmanager amtool weaviate ollama kube-apiserver etcd helm goreleaser govulncheck nats-server
	;;
*)
	printf 'tools.sh: unknown tool %q\n' "$1" >&2
	usage
	;;
esac
