#!/usr/bin/env bash
# `make test` (and so CI): every check and every test, with a progress line at
# least every 30 seconds, on a machine with nothing but Go, gcc, git and npm.
#
# The order is chosen for a cold machine, where building the real third-party
# servers (Alertmanager, kube-apiserver + etcd, Weaviate, Ollama, Helm; about
# 25 CPU-minutes) dominates:
#   1. the tool builds start in the background (test/tools/*.sh, cached in the
#      per-user tools folder, so a warm machine skips them in a second), the
#      longest first;
#   2. meanwhile vet, the gofmt check and every package that needs no
#      third-party server run under the race detector, and the medic binary
#      the process-level tests run is built at a lower priority beside them;
#   3. once the tools are there: the packages that start real servers (found
#      from the import graph: those that import test/toolbin), with the
#      manifests, release-config and govulncheck checks beside them at a lower
#      priority.
# On a cold machine every step shares the two cores; the heartbeat says how
# busy they are.
#
# Go's test cache is on: a package whose test binary, environment and input
# files are unchanged since it last passed is not run again ("(cached)" in
# the output; the count is printed at the end). Packages that run real servers
# key their result on every file of the working tree (test/toolbin/testcache.go),
# since a server reads files Go cannot see. GOTESTFLAGS=-count=1 runs everything.
# Environment: PKGS (default ./...), GO (default go), TEST_TIMEOUT (20m),
# GOTESTFLAGS (extra `go test` flags, e.g. -count=1 or -v).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GO=${GO:-go}
PKGS=${PKGS:-./...}
TEST_TIMEOUT=${TEST_TIMEOUT:-20m}
GOTESTFLAGS=${GOTESTFLAGS:-}
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

# A heartbeat, so that a long compile never looks like a hang. It says how
# busy the machine's CPUs were over those 30 s: a cold run is CPU-bound (the
# tool builds, vet and the race-enabled tests share the cores), and a low
# figure points at a step that waits instead.
cpu_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8; exit }' /proc/stat 2>/dev/null; }
(
	read -r busy0 total0 < <(cpu_ticks || echo 0 0)
	while sleep 30; do
		read -r busy1 total1 < <(cpu_ticks || echo 0 0)
		if ((total1 > total0)); then
			say "still running (CPUs $(((busy1 - busy0) * 100 / (total1 - total0)))% busy)"
		else
			say "still running"
		fi
		busy0=${busy1} total0=${total1}
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

# gotest runs `go test` over packages and counts the results Go's test cache
# replayed, so a fast run says why it was fast.
cached_total=0
ran_total=0
gotest() {
	local out rc
	[[ $# -gt 0 ]] || return 0
	out="$(mktemp "${TMPDIR:-/tmp}/medic-gotest.XXXXXX")"
	# shellcheck disable=SC2086 # GOTESTFLAGS is a list of flags
	# -vet=off: `go vet` ran every analyzer over the same packages above, and
	# go test's own pass (a subset) would only repeat it.
	"${GO}" test -race -vet=off ${GOTESTFLAGS} -timeout "${TEST_TIMEOUT}" "$@" 2>&1 | tee "${out}"
	rc=${PIPESTATUS[0]}
	cached_total=$((cached_total + $(grep -c '^ok .*(cached)' "${out}" || true)))
	# Package lines only ("ok  pkg 1.2s", "FAIL pkg 1.2s"), not -v's "--- PASS".
	ran_total=$((ran_total + $(grep -E '^(ok|FAIL)[[:space:]]+[^[:space:]]' "${out}" | grep -vc '(cached)' || true)))
	rm -f "${out}"
	return "${rc}"
}

# niced runs a command at a lower CPU priority (it and all it starts), for the
# background work that must not slow the tests beside it.
niced() {
	renice -n 10 -p "${BASHPID}" >/dev/null 2>&1 || true
	"$@"
}

# One medic binary for every package that runs medic as a process (test/e2e,
# test/deploy), built the Dockerfile's way (test/toolbin/medic.go), instead of
# one per package, each compiling medic's packages at the same time.
# It lives at a fixed path in the ignored bin/ and is replaced only when the
# build differs: its path and modification time are part of the test cache's
# key for those packages. It is built in the background at a lower priority
# (nice), so the unit tests beside it keep the CPUs first. (On a cold machine
# the CPUs are busy throughout, so this moves the build, it does not hide it:
# test/e2e and test/deploy still wait for it.)
# While it builds, bin/test/medic.building exists: the server tests start
# without waiting for it, and test/toolbin.Medic waits for the marker to go
# ($MEDIC_BINARY_BUILDING) in the packages that run the binary. A failed
# build removes the binary as well, so those tests fail naming it.
build_medic() {
	local rc=0
	"${GO}" run ./test/toolbin/buildmedic -o bin/test/medic.new || rc=$?
	if [[ "${rc}" -ne 0 ]]; then
		rm -f bin/test/medic bin/test/medic.new
	elif cmp -s bin/test/medic.new bin/test/medic; then
		rm -f bin/test/medic.new
	else
		mv -f bin/test/medic.new bin/test/medic
	fi
	rm -f bin/test/medic.building
	return "${rc}"
}
say "building the medic binary the process-level tests share (in the background)"
mkdir -p bin/test
touch bin/test/medic.building
medic_build_log="$(mktemp "${TMPDIR:-/tmp}/medic-build.XXXXXX.log")"
niced build_medic >"${medic_build_log}" 2>&1 &
medic_build_pid=$!
pids+=("${medic_build_pid}")

status=0
say "unit tests: ${#unit[@]} packages, race detector on, while the tools build"
gotest "${unit[@]}" || status=$?

say "waiting for the tool builds"
if ! wait "${tools_pid}"; then
	say "a tool build failed; its log is above (and in ${tools_log})"
	exit 1
fi
rm -f "${tools_log}"

# The checks that need the tools (rendered manifests, release configuration,
# govulncheck) run in the background, at a lower priority, beside the tests
# against real servers, which spend much of their time waiting for a server to
# start; their output is printed, in order, once those tests are done.
vulncheck_key() {
	{
		date -u +%F
		"${GO}" version
		git ls-files -co --exclude-standard -- '*.go' go.mod go.sum test/vulncheck/exceptions.yaml \
			Makefile Makefile.tools.mk 'test/tools/*.sh' | LC_ALL=C sort | xargs -r sha256sum 2>&1 || true
	} | sha256sum | cut -c1-16 # a deleted, still tracked file hashes as its error line
}
run_checks() {
	local rc=0
	say "rendered manifests check"
	make --no-print-directory -s manifests-check || rc=1
	say "release configuration check (goreleaser check)"
	make --no-print-directory -s release-check || rc=1

	# govulncheck analyses the whole module's call graph (about 2 minutes on 2
	# cores). Its answer depends only on the Go files, the module's
	# requirements, the accepted exceptions (whose review dates make it depend
	# on the day), the pinned tool and database versions and the Go toolchain:
	# a pass is remembered under a hash of those in the ignored bin/.checks and
	# not repeated for the same hash. GOTESTFLAGS=-count=1 runs it anyway.
	local key
	key="$(vulncheck_key)"
	if [[ " ${GOTESTFLAGS} " != *" -count=1 "* && -f "bin/.checks/vulncheck-${key}" ]]; then
		say "govulncheck: skipped, it passed on these exact inputs (bin/.checks/vulncheck-${key})"
	else
		say "govulncheck (offline database; accepted findings in test/vulncheck/exceptions.yaml)"
		if make --no-print-directory -s vulncheck; then
			mkdir -p bin/.checks
			rm -f bin/.checks/vulncheck-*
			touch "bin/.checks/vulncheck-${key}"
		else
			rc=1
		fi
	fi
	say "checks done (exit ${rc})"
	return "${rc}"
}
say "checks (manifests, release configuration, govulncheck) in the background; their output follows the server tests"
checks_log="$(mktemp "${TMPDIR:-/tmp}/medic-checks.XXXXXX.log")"
niced run_checks >"${checks_log}" 2>&1 &
checks_pid=$!
pids+=("${checks_pid}")

MEDIC_BINARY="$(pwd -P)/bin/test/medic"
MEDIC_BINARY_BUILDING="$(pwd -P)/bin/test/medic.building"
export MEDIC_BINARY MEDIC_BINARY_BUILDING

say "tests against real servers: ${#servers[@]} packages (those that run the medic binary wait for its build)"
gotest "${servers[@]}" || status=$?

if ! wait "${medic_build_pid}"; then
	cat "${medic_build_log}"
	say "building the medic binary failed (log above)"
	status=1
fi
rm -f "${medic_build_log}"

say "waiting for the checks"
checks_rc=0
wait "${checks_pid}" || checks_rc=$?
cat "${checks_log}"
rm -f "${checks_log}"
if [[ "${checks_rc}" -ne 0 ]]; then
	say "a check failed (output above)"
	status=${checks_rc}
fi

say "test packages run: ${ran_total}, replayed from Go's test cache: ${cached_total} (GOTESTFLAGS=-count=1 runs them all)"
if [[ "${status}" -ne 0 ]]; then
	say "FAILED (exit ${status})"
	exit "${status}"
fi
say "all checks and tests passed"
