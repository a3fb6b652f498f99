#!/usr/bin/env bash
# Stands in for a test/tools build script in toolbin's tests; FAKE_MODE picks
# how it behaves.
set -euo pipefail
dest="${MEDIC_TOOLS_DIR}/fake-v1"
mkdir -p "${dest}"
printf '%s\n' "${MEDIC_TOOLS_LOCK_HELD:-}" >>"${MEDIC_TOOLS_DIR}/runs"
case "${FAKE_MODE}" in
ok)
	printf '#!/bin/sh\n' >"${dest}/a"
	printf '#!/bin/sh\n' >"${dest}/b"
	chmod +x "${dest}/a" "${dest}/b"
	;;
partial)
	printf '#!/bin/sh\n' >"${dest}/a"
	chmod +x "${dest}/a"
	;;
fail)
	head -c 20000 /dev/zero | tr '\0' x >&2
	printf '\nthe end\n' >&2
	exit 3
	;;
esac
printf '%s\n' "${dest}"
