#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the finding-page browser test
# (interact/chromium_test.go). Idempotent: when a chromium binary is already on
# PATH it only prints its path.
#
#   test/tools/install-chromium.sh     # prints the path of the chromium binary
#
# It needs root (or sudo) and a reachable Debian mirror; without either it
# exits 1 and the browser test is skipped with a message saying so.
set -euo pipefail

log() { printf 'install-chromium: %s\n' "$*" >&2; }

find_chromium() {
	local c
	for c in chromium chromium-browser google-chrome-stable google-chrome; do
		if command -v "${c}" >/dev/null 2>&1; then
			command -v "${c}"
			return 0
		fi
	done
	return 1
}

if path="$(find_chromium)"; then
	log "already installed: ${path}"
	printf '%s\n' "${path}"
	exit 0
fi

sudo=""
if [[ "$(id -u)" != 0 ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo="sudo -n"
	else
		log "not root and no password-less sudo: cannot apt-get install chromium"
		exit 1
	fi
fi
command -v apt-get >/dev/null 2>&1 || { log "apt-get not found (not Debian/Ubuntu)"; exit 1; }

# Serialise concurrent installers (parallel test packages); dpkg has its own
# lock but fails rather than waits.
lock="${TMPDIR:-/tmp}/medic-install-chromium.lock"
exec 9>"${lock}"
command -v flock >/dev/null 2>&1 && flock 9
if path="$(find_chromium)"; then
	log "installed meanwhile by another process: ${path}"
	printf '%s\n' "${path}"
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get install chromium (a few minutes the first time)"
if ! ${sudo} apt-get install -y --no-install-recommends chromium >&2; then
	log "install failed; refreshing the package lists and trying again"
	${sudo} apt-get update >&2
	${sudo} apt-get install -y --no-install-recommends chromium >&2
fi
path="$(find_chromium)" || { log "chromium is still not on PATH"; exit 1; }
printf '%s\n' "${path}"
