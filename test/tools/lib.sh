# Sourced by the build-<tool>.sh scripts: where the tools folder is, whether a
# tool is already built, and the lock that serialises concurrent builders
# (parallel make, parallel test packages). The Go side (test/toolbin) takes
# the same lock itself and sets MEDIC_TOOLS_LOCK_HELD=1, so the script must not
# wait on it again.
#
# The sourcing script defines log() first, then calls
#   tool_begin NAME VERSION FILE...
# which sets tools_dir and dest (<tools_dir>/NAME-VERSION) and exits 0,
# printing dest, when every FILE there is already an executable.

lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd "${lib_dir}/../.." && pwd -P)"

# default_tools_dir prints the tools folder: $MEDIC_TOOLS_DIR when set (a
# relative one is relative to the repository root), else a per-user cache
# chosen at run time ($XDG_CACHE_HOME/medic/tools, or $HOME/.cache/medic/tools),
# so that every clone on a machine (CI clones anew for each run) reuses the
# same builds, else .tools at the repository root when there is no usable home.
# test/toolbin.ToolsDir makes the same choice in Go; keep them in step.
default_tools_dir() {
	local d="${MEDIC_TOOLS_DIR:-}"
	if [[ -z "${d}" ]]; then
		if [[ -n "${XDG_CACHE_HOME:-}" && "${XDG_CACHE_HOME}" == /* ]]; then
			d="${XDG_CACHE_HOME}/medic/tools"
		elif [[ -n "${HOME:-}" && "${HOME}" == /* && "${HOME}" != / ]]; then
			d="${HOME}/.cache/medic/tools"
		else
			d=".tools"
		fi
	fi
	[[ "${d}" == /* ]] || d="${repo_root}/${d}"
	printf '%s\n' "${d}"
}

# TOOL_GCFLAGS: the compiler flags of every Go tool build. The tools serve
# medic's tests, not production, so they are built without inlining (-l):
# that measured a quarter less compile CPU (k8s.io/client-go/kubernetes from
# an empty cache: 90 CPU-seconds instead of 119), and a test never notices the
# slower binary. On a cold machine the tool builds are most of `make test`.
# MEDIC_TOOL_GCFLAGS='' builds them as upstream does.
TOOL_GCFLAGS="${MEDIC_TOOL_GCFLAGS-all=-l}"

# cpu_seconds prints the CPU time (user + system, whole seconds) used so far
# by the sourcing script's finished children, the go and gcc processes of the
# build: with the wall time it tells whether a build was slow or starved.
cpu_seconds() {
	local tick
	tick="$(getconf CLK_TCK 2>/dev/null || echo 100)"
	# Fields 16 and 17 of /proc/PID/stat: cutime and cstime, in clock ticks.
	awk -v tick="${tick}" '{ printf "%d\n", ($16 + $17) / tick }' "/proc/$$/stat" 2>/dev/null || echo "?"
}

# took prints "Ns, M CPU-s" since start_s (set by the sourcing script).
took() {
	printf '%ds, %s CPU-s' "$((SECONDS - start_s))" "$(cpu_seconds)"
}

tool_built() {
	local f
	for f in "$@"; do
		[[ -x "${dest}/${f}" ]] || return 1
	done
}

# heartbeat logs "still building" every 30 s while the sourcing script runs,
# so a cold build (minutes of compiling) never looks like a hang. It watches
# the script's PID and ends within 2 s of it, whatever trap the script sets.
heartbeat() {
	local what=$1 parent=$$ started=${SECONDS}
	(
		n=0
		while kill -0 "${parent}" 2>/dev/null; do
			sleep 2
			n=$((n + 2))
			if ((n % 30 == 0)); then
				log "still building ${what}: $((SECONDS - started))s so far"
			fi
		done
	) &
	disown 2>/dev/null || true
}

tool_begin() {
	local name=$1 version=$2
	shift 2
	# A relative MEDIC_TOOLS_DIR is relative to the repository root (as in test/toolbin).
	tools_dir="$(default_tools_dir)"
	mkdir -p "${tools_dir}"
	tools_dir="$(cd "${tools_dir}" && pwd -P)"
	dest="${tools_dir}/${name}-${version}"

	if tool_built "$@"; then
		log "already built: ${dest} ($*)"
		printf '%s\n' "${dest}"
		exit 0
	fi
	local lock_file="${tools_dir}/.${name}-${version}.lock"
	if [[ -z "${MEDIC_TOOLS_LOCK_HELD:-}" ]] && command -v flock >/dev/null 2>&1; then
		exec 9>"${lock_file}"
		if ! flock -n 9; then
			log "another build holds ${lock_file}; waiting"
			flock 9
		fi
		if tool_built "$@"; then
			log "built meanwhile by another process: ${dest}"
			printf '%s\n' "${dest}"
			exit 0
		fi
	fi
	log "building ${name} ${version} into ${dest}"
	heartbeat "${name} ${version}"
}

# go_install_tool PACKAGE@VERSION BINARY [TAKES]: builds one binary with go
# install outside any module and workspace (so the repository's go.mod has no
# say) into ${dest}/BINARY, checks that it runs (BINARY --help or --version),
# and prints ${dest}. Call it after tool_begin. GO_INSTALL_LDFLAGS replaces
# the default "-s -w" (version stamping).
go_install_tool() {
	local pkg=$1 binary=$2 takes=${3:-a few minutes}
	command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }
	local start_s=${SECONDS}
	work="$(mktemp -d "${TMPDIR:-/tmp}/medic-${binary}-build.XXXXXX")"
	tmp="${dest}/.${binary}.tmp.$$"
	trap 'rm -rf "${work}"; rm -f "${tmp}"' EXIT
	mkdir -p "${dest}"
	log "go install ${pkg} (cold: ${takes} on 2 cores)"
	(cd "${work}" && GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOBIN="${work}/bin" \
		go install -trimpath -gcflags="${TOOL_GCFLAGS}" -ldflags="${GO_INSTALL_LDFLAGS:--s -w}" "${pkg}")
	cp "${work}/bin/${binary}" "${tmp}"
	"${tmp}" --help >/dev/null 2>&1 || "${tmp}" --version >/dev/null 2>&1 ||
		{ log "built ${binary} does not run"; exit 1; }
	mv -f "${tmp}" "${dest}/${binary}" # same directory: atomic rename
	log "built ${dest}/${binary} in $(took)"
	printf '%s\n' "${dest}"
}
