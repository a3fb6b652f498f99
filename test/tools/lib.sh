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

tool_built() {
	local f
	for f in "$@"; do
		[[ -x "${dest}/${f}" ]] || return 1
	done
}

tool_begin() {
	local name=$1 version=$2
	shift 2
	# A relative MEDIC_TOOLS_DIR is relative to the repository root (as in test/toolbin).
	tools_dir="${MEDIC_TOOLS_DIR:-.tools}"
	[[ "${tools_dir}" == /* ]] || tools_dir="${repo_root}/${tools_dir}"
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
}
