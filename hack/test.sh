#!/usr/bin/env bash
# `make test` (and so CI): every check and every test, with a progress line at
# least every 30 seconds, on a machine with nothing but Go, gcc, git and npm.
#
# The order is chosen for a cold machine, where building the real third-party
# servers (Alertmanager, kube-apiserver + etcd, Weaviate, Ollama, Helm; about
# 25 CPU-minutes) dominates:
#   1. the tool builds start in the background (test/tools/*.sh, cached in the
#      per-user tools folder, so a warm machine skips them in a second);
#   2. meanwhile vet, the gofmt check and every package that needs no
#      third-party server run under the race detector;
#   3. once the tools are there: the manifests, release-config and govulncheck
#      checks, and the packages that start real servers (found from the import
#      graph: those that import test/toolbin).
# Environment: PKGS (default ./...), GO (default go), TEST_TIMEOUT (20m).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GO=${GO:-go}
PKGS=${PKGS:-./...}
TEST_TIMEOUT=${TEST_TIMEOUT:-20m}
start=${SECONDS}
say() { printf '[make test %s +%dm%02ds] %s\n' "$(date +%H:%M:%S)" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*"; }

MEDIC_TOOLS_DIR="$(bash test/tools/tools.sh dir)"
export MEDIC_TOOLS_DIR
say "tools folder: ${MEDIC_TOOLS_DIR} (built once per machine, reused by every clone)"

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "${p}" 2>/dev/null || true
	done
}
trap cleanup EXIT

# A heartbeat, so that a long compile never looks like a hang.
(
	while sleep 30; do
		say "still running"
	done
) &
pids+=($!)

# 1. The tools, in the background. Each build logs its start, a heartbeat and
# its end with the time taken (test/tools/lib.sh).
tools_log="$(mktemp "${TMPDIR:-/tmp}/medic-tools.XXXXXX.log")"
(
	make --no-print-directory -s -j2 tools 2>&1 | sed -u 's/^/[tools] /'
	exit "${PIPESTATUS[0]}"
) >"${tools_log}" 2>&1 &
tools_pid=$!
pids+=("${tools_pid}")
# Its lines go to the terminal as they come.
tail -n +1 -f "${tools_log}" --pid="${tools_pid}" &
pids+=($!)

# 2. Checks and the packages that need no third-party server.
# -race: vet then compiles the dependencies exactly as the race-enabled test
# builds below do, so a cold machine compiles them once, not twice.
say "go vet"
"${GO}" vet -race ${PKGS}
say "gofmt"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))"
if [[ -n "${unformatted}" ]]; then
	say "gofmt would change:"
	printf '%s\n' "${unformatted}"
	exit 1
fi

# Packages whose tests start a real server import test/toolbin.
mapfile -t all < <("${GO}" list ${PKGS})
mapfile -t needs_tools < <("${GO}" list -test -f '{{.ImportPath}}{{range .Deps}} {{.}}{{end}}' ${PKGS} |
	awk '{ for (i = 2; i <= NF; i++) if ($i == "github.com/medichq/medic/test/toolbin") { print $1; break } }' |
	sed -e 's/ .*//' -e 's/\.test$//' -e 's/_test$//' | sort -u)
unit=()
servers=()
for p in "${all[@]}"; do
	if printf '%s\n' "${needs_tools[@]}" | grep -qxF "${p}"; then
		servers+=("${p}")
	else
		unit+=("${p}")
	fi
done

status=0
say "unit tests: ${#unit[@]} packages, race detector on, while the tools build"
"${GO}" test -race -count=1 -timeout "${TEST_TIMEOUT}" "${unit[@]}" || status=$?

say "waiting for the tool builds"
if ! wait "${tools_pid}"; then
	say "a tool build failed; its log is above (and in ${tools_log})"
	exit 1
fi
rm -f "${tools_log}"

say "rendered manifests check"
make --no-print-directory -s manifests-check || status=$?
say "release configuration check (goreleaser check)"
make --no-print-directory -s release-check || status=$?

say "govulncheck (offline database; accepted findings in test/vulncheck/exceptions.yaml)"
make --no-print-directory -s vulncheck || status=$?

# One medic binary for every package that runs medic as a process (test/e2e,
# test/deploy), built the Dockerfile's way (test/toolbin/medic.go), instead of
# one per package, each compiling medic's packages at the same time.
say "building the medic binary the process-level tests share"
medic_bin_dir="$(mktemp -d "${TMPDIR:-/tmp}/medic-test-bin.XXXXXX")"
trap 'cleanup; rm -rf "${medic_bin_dir}"' EXIT
"${GO}" run ./test/toolbin/buildmedic -o "${medic_bin_dir}/medic"
export MEDIC_BINARY="${medic_bin_dir}/medic"

say "tests against real servers: ${#servers[@]} packages"
"${GO}" test -race -count=1 -timeout "${TEST_TIMEOUT}" "${servers[@]}" || status=$?

if [[ "${status}" -ne 0 ]]; then
	say "FAILED (exit ${status})"
	exit "${status}"
fi
say "all checks and tests passed"
