#!/bin/bash
# Start a real clamd and a real rspamd on 127.0.0.1 for Easymail's integration tests and make bench-scan,
# offline, as root or as any user, on Debian 12 (apt-get install clamav-daemon rspamd).
#
#   start-scanners.sh [start] DIR   start both, wait until they answer, print
#                                   KEY=VALUE lines (also saved in DIR/scanners.env)
#   start-scanners.sh stop DIR      stop what "start DIR" started (by PID)
#   start-scanners.sh status DIR    exit 0 if everything started in DIR answers
#
# Environment (defaults):
#   SCANNERS="clamd rspamd"     which ones to start
#   CLAMD_PORT=3310  RSPAMD_PORT=11333  RSPAMD_CONTROLLER_PORT=11334
#   DNS_STUB_PORT=10053         UDP port of the NXDOMAIN DNS stub for rspamd
#   RSPAMD_DNS=                 host:port of your own DNS server (on loopback);
#                               when set, no stub is started
#   RSPAMD_HS_CACHE=/var/tmp/rspamd-hs-cache   keep it between runs (-UID appended for a user other
#                               than root: a cache written by another user cannot be reused)
#   READY_TIMEOUT=120           seconds to wait for each daemon
# shellcheck disable=SC2016 # the bash -c scripts take their arguments as $0 and $1
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCANNERS=${SCANNERS:-clamd rspamd}
CLAMD_PORT=${CLAMD_PORT:-3310}
RSPAMD_PORT=${RSPAMD_PORT:-11333}
RSPAMD_CONTROLLER_PORT=${RSPAMD_CONTROLLER_PORT:-11334}
DNS_STUB_PORT=${DNS_STUB_PORT:-10053}
RSPAMD_DNS=${RSPAMD_DNS:-}
if [ "$(id -u)" -eq 0 ]; then
	RSPAMD_HS_CACHE=${RSPAMD_HS_CACHE:-/var/tmp/rspamd-hs-cache}
else
	RSPAMD_HS_CACHE=${RSPAMD_HS_CACHE:-/var/tmp/rspamd-hs-cache-$(id -u)}
fi
READY_TIMEOUT=${READY_TIMEOUT:-120}

die() { echo "start-scanners: $*" >&2; exit 1; }

# Send PAYLOAD (a printf format) to 127.0.0.1:PORT over TCP, print the reply.
tcp_query() {
	timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1; printf "$1" >&3; head -c 4096 <&3' \
		"$1" "$2" 2>/dev/null || true
}
port_in_use() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null; }
clamd_ready() {
	local r
	r=$(tcp_query "$CLAMD_PORT" 'zPING\0' | tr -d '\0')
	[ "$r" = PONG ]
}
http_ping() {
	local r
	r=$(tcp_query "$1" 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n')
	[[ $r == "HTTP/1."?" 200"* && $r == *pong* ]]
}
rspamd_ready() { http_ping "$RSPAMD_PORT" && http_ping "$RSPAMD_CONTROLLER_PORT"; }
dns_ready() { # one query for "a." to the stub; any 12+ byte answer will do
	local n
	n=$(timeout 2 bash -c 'exec 3<>"/dev/udp/127.0.0.1/$0" || exit 1
		printf "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01" >&3
		head -c 12 <&3' "$DNS_STUB_PORT" 2>/dev/null | wc -c) || true
	[ "${n:-0}" -ge 12 ]
}

# wait_ready NAME PID CHECK LOG...
wait_ready() {
	local name=$1 pid=$2 check=$3 t0=$SECONDS
	shift 3
	while ! $check; do
		if ! alive "$pid"; then
			tail -n 20 "$@" >&2 2>/dev/null || true
			die "$name (pid $pid) exited during start-up; logs: $*"
		fi
		if ((SECONDS - t0 >= READY_TIMEOUT)); then
			tail -n 20 "$@" >&2 2>/dev/null || true
			die "$name (pid $pid) not ready after ${READY_TIMEOUT}s; logs: $*"
		fi
		sleep 0.1
	done
	# Something else may have answered (an old daemon on the same port).
	alive "$pid" || die "$name (pid $pid) exited; is an old one still running? logs: $*"
}

# alive PID: running and not a zombie (an exited daemon whose parent is init
# can stay a zombie for a while, and kill -0 still succeeds on it).
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st%% *}" != Z ]
}

# stop_pid NAME PID COMM: SIGTERM, wait up to 10 s, then SIGKILL; for rspamd the
# workers (same process group, the script starts it with setsid) as well.
stop_pid() {
	local name=$1 pid=$2 comm=$3 i
	[ -n "$pid" ] || return 0
	if ! alive "$pid"; then echo "$name (pid $pid) not running"; return 0; fi
	if ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$comm"; then
		echo "$name: pid $pid is not $comm any more, left alone" >&2; return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
	if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
	# rspamd workers outlive a SIGKILLed main process: end them by PID.
	local left
	left=$(pgrep -g "$pid" -r R,S,D,T 2>/dev/null || true)
	if [ -n "$left" ]; then
		# shellcheck disable=SC2086 # $left is a list of PIDs
		kill -TERM $left 2>/dev/null || true; sleep 1
		left=$(pgrep -g "$pid" -r R,S,D,T 2>/dev/null || true)
		# shellcheck disable=SC2086
		[ -z "$left" ] || kill -KILL $left 2>/dev/null || true
	fi
	echo "$name (pid $pid) stopped"
}

cmd=start
case "${1:-}" in start | stop | status) cmd=$1; shift ;; esac
[ $# -eq 1 ] || die "usage: $0 [start|stop|status] DIR"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
ENVFILE=$DIR/scanners.env

stop_all() {
	local CLAMD_PID='' RSPAMD_PID='' DNS_STUB_PID=''
	# shellcheck disable=SC1090
	. "$ENVFILE"
	stop_pid rspamd "${RSPAMD_PID:-}" "rspamd"
	stop_pid clamd "${CLAMD_PID:-}" "clamd"
	stop_pid dnsstub "${DNS_STUB_PID:-}" "dnsstub.pl"
	mv "$ENVFILE" "$ENVFILE.stopped"
}

if [ "$cmd" = stop ]; then
	[ -f "$ENVFILE" ] || die "no $ENVFILE: nothing was started in $DIR"
	stop_all
	exit 0
fi

if [ "$cmd" = status ]; then
	[ -f "$ENVFILE" ] || die "no $ENVFILE"
	# shellcheck disable=SC1090
	. "$ENVFILE"
	ok=0
	if [ -n "${CLAMD_PID:-}" ]; then
		CLAMD_PORT=${CLAMD_ADDR##*:}
		if clamd_ready; then echo "clamd ok"; else echo "clamd DOWN"; ok=1; fi
	fi
	if [ -n "${RSPAMD_PID:-}" ]; then
		RSPAMD_PORT=${RSPAMD_ADDR##*:} RSPAMD_CONTROLLER_PORT=${RSPAMD_CONTROLLER_ADDR##*:}
		if rspamd_ready; then echo "rspamd ok"; else echo "rspamd DOWN"; ok=1; fi
	fi
	exit $ok
fi

# ---- start ----
[ ! -f "$ENVFILE" ] || die "$ENVFILE exists: run '$0 stop $DIR' first"
want() { case " $SCANNERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
ms_since() { echo $(((${EPOCHREALTIME//[.,]/} - $1) / 1000)); }
# The env file is written as things start, so that a failed start can be
# cleaned up (here, or later with "stop").
: >"$ENVFILE"
trap 'echo "start-scanners: start failed, stopping what was started" >&2; stop_all >&2' EXIT

if want clamd; then
	command -v clamd >/dev/null || die "clamd missing: apt-get install -y clamav-daemon"
	! port_in_use "$CLAMD_PORT" || die "127.0.0.1:$CLAMD_PORT already in use (an old clamd?)"
	C=$DIR/clamav
	mkdir -p "$C/db" "$C/tmp"
	cp "$HERE/clamav/eicar.ndb" "$C/db/"
	sed -e "s#@DIR@#$C#g" -e "s#@PORT@#$CLAMD_PORT#g" "$HERE/clamav/clamd.conf.in" >"$C/clamd.conf"
	t0=${EPOCHREALTIME//[.,]/}
	setsid clamd -c "$C/clamd.conf" </dev/null >"$C/clamd.log" 2>&1 &
	CLAMD_PID=$!
	echo "CLAMD_PID=$CLAMD_PID" >>"$ENVFILE"
	wait_ready clamd "$CLAMD_PID" clamd_ready "$C/clamd.log"
	echo "clamd ready after $(ms_since "$t0") ms" >&2
	echo "CLAMD_ADDR=127.0.0.1:$CLAMD_PORT" >>"$ENVFILE"
fi

if want rspamd; then
	command -v rspamd >/dev/null || die "rspamd missing: apt-get install -y rspamd"
	for p in "$RSPAMD_PORT" "$RSPAMD_CONTROLLER_PORT"; do
		! port_in_use "$p" || die "127.0.0.1:$p already in use (an old rspamd, or the packaged rspamd.service?)"
	done
	R=$DIR/rspamd
	mkdir -p "$R/conf" "$R/db" "$R/run" "$R/log" "$RSPAMD_HS_CACHE"
	cp -r "$HERE/rspamd/local.d" "$HERE/rspamd/override.d" "$R/conf/"
	if [ -z "$RSPAMD_DNS" ]; then
		setsid perl "$HERE/rspamd/dnsstub.pl" 127.0.0.1 "$DNS_STUB_PORT" </dev/null >"$R/dnsstub.log" 2>&1 &
		DNS_STUB_PID=$!
		echo "DNS_STUB_PID=$DNS_STUB_PID" >>"$ENVFILE"
		wait_ready dnsstub "$DNS_STUB_PID" dns_ready "$R/dnsstub.log"
		RSPAMD_DNS=127.0.0.1:$DNS_STUB_PORT
		echo "DNS_STUB_ADDR=$RSPAMD_DNS" >>"$ENVFILE"
	fi
	t0=${EPOCHREALTIME//[.,]/}
	setsid rspamd -f -i -c /etc/rspamd/rspamd.conf \
		--var="LOCAL_CONFDIR=$R/conf" --var="DBDIR=$R/db" --var="RUNDIR=$R/run" --var="LOGDIR=$R/log" \
		--var="RSPAMD_PORT=$RSPAMD_PORT" --var="RSPAMD_CONTROLLER_PORT=$RSPAMD_CONTROLLER_PORT" \
		--var="RSPAMD_DNS=$RSPAMD_DNS" --var="RSPAMD_HS_CACHE=$RSPAMD_HS_CACHE" \
		</dev/null >"$R/stdout.log" 2>&1 &
	RSPAMD_PID=$!
	echo "RSPAMD_PID=$RSPAMD_PID" >>"$ENVFILE"
	wait_ready rspamd "$RSPAMD_PID" rspamd_ready "$R/stdout.log" "$R/log/rspamd.log"
	echo "rspamd ready after $(ms_since "$t0") ms" >&2
	echo "RSPAMD_ADDR=127.0.0.1:$RSPAMD_PORT" >>"$ENVFILE"
	echo "RSPAMD_CONTROLLER_ADDR=127.0.0.1:$RSPAMD_CONTROLLER_PORT" >>"$ENVFILE"
fi

trap - EXIT
cat "$ENVFILE"
