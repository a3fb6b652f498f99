#!/usr/bin/env bash
# Runs a long-lived command (make run: medic serve) so that stopping it is
# clean however it is stopped:
#
#   hack/foreground.sh PROGRAM [ARG...]
#
# - Ctrl-C on a terminal reaches the program alone: it runs in its own process
#   group, made the terminal's foreground group (job control, as an
#   interactive shell's `fg` does), so make is not interrupted and exits with
#   the program's status: 0 after medic's graceful shutdown, not
#   "make: *** [run] Interrupt".
# - SIGTERM or SIGHUP to make (or to this script) reaches the program too: make
#   signals only its direct child, this script, and a watcher passes the
#   signal on, so medic drains in-flight work and exits rather than being left
#   running in the background.
# - Without a terminal (CI, nohup, a pipe) the program runs the same way,
#   without job control.
set -uo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 PROGRAM [ARG...]" >&2; exit 2; }

# Job control needs the terminal on stderr (bash takes its terminal from fd 2),
# even when make's stderr goes to a file: the program keeps the original
# stderr (fd 3), the script's own fd 2 becomes /dev/tty.
tty=false
if [[ -t 0 ]] && exec 3>&2 2>/dev/tty; then
	tty=true
	set -m # job control: the program gets its own process group
	"$@" 2>&3 3>&- &
else
	"$@" &
fi
pid=$!
self=$$

# The watcher: when this script is signalled (or dies), pass SIGTERM on.
(
	trap '' INT
	while kill -0 "${pid}" 2>/dev/null; do
		if ! kill -0 "${self}" 2>/dev/null; then
			kill -TERM "${pid}" 2>/dev/null
			exit 0
		fi
		sleep 0.5
	done
) &
watcher=$!

if ${tty}; then
	# No traps here: bash runs a trap only after the foreground job ends, so
	# a trapped SIGTERM would wait for the program forever. Untrapped, it ends
	# this script and the watcher passes it on. (fg must keep stderr: with it
	# redirected, bash does not hand the terminal over.)
	fg %1 >/dev/null
	status=$?
	kill "${watcher}" 2>/dev/null
	exit "${status}"
fi

forward() {
	kill "-$1" "${pid}" 2>/dev/null
	wait "${pid}"
	status=$?
	kill "${watcher}" 2>/dev/null
	exit "${status}"
}
trap 'forward TERM' TERM
trap 'forward HUP' HUP
trap 'forward INT' INT
wait "${pid}"
status=$?
kill "${watcher}" 2>/dev/null
exit "${status}"
