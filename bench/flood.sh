#!/usr/bin/env bash
# bench/flood.sh (make bench-flood) measures how much of a registered customer's throughput survives a flood.
#
# Easymail relays smtp-source's messages to smtp-sink, over loopback only. Each run is measured twice, in
# turn: quiet, then while bench/flood hammers the same listener with new connections from unregistered
# addresses (127.0.1.0/24; a share of them talking before the greeting) and holds slowloris sessions from a
# second registered address (127.0.0.60). It prints, as medians over the runs, the customer's accepted msg/s
# (messages / smtp-source's wall time) quiet and under flood, and the share kept (the goal is over 90 %).
# The flood tool, smtp-source, smtp-sink and the relay share the machine's CPUs: the share measured is a
# lower bound of what the relay alone would keep.
#
# Environment:
#   FLOOD_RUNS=3          runs (each one quiet and one under flood)
#   FLOOD_COUNT=2000      messages per measurement
#   FLOOD_SIZE=1024       smtp-source -l payload size
#   FLOOD_SESSIONS=20     parallel smtp-source sessions
#   FLOOD_RATE=500        new unregistered connections per second
#   FLOOD_SLOW=200        slowloris sessions (the per-IP cap of 50 lets 50 in; the others are refused and retry)
#   FLOOD_DIR=            work directory (default: a new one under /var/tmp); must be a real disk
#   FLOOD_KEEP=0          1: keep the work directory and its logs
set -Eeuo pipefail
trap 'echo "flood: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT=$ROOT/bench/.out
RUNS=${FLOOD_RUNS:-3}
COUNT=${FLOOD_COUNT:-2000}
SIZE=${FLOOD_SIZE:-1024}
SESSIONS=${FLOOD_SESSIONS:-20}
RATE=${FLOOD_RATE:-500}
SLOW=${FLOOD_SLOW:-200}
KEEP=${FLOOD_KEEP:-0}

die() {
	echo "flood: error: $*" >&2
	exit 1
}
note() { echo "flood: $*" >&2; }

for v in RUNS COUNT SIZE SESSIONS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "FLOOD_$v must be a positive integer"
done
for v in RATE SLOW; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "FLOOD_$v must be a non-negative integer"
done
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing ($2)"; }
export PATH=$PATH:/usr/local/go/bin
need smtp-sink "apt-get install postfix"
need smtp-source "apt-get install postfix"
need go "Go is expected at /usr/local/go"
need curl "apt-get install curl"
id nobody >/dev/null 2>&1 || die "there is no user nobody for smtp-sink"

mkdir -p "$OUT"
if [[ -n ${FLOOD_DIR:-} ]]; then
	mkdir -p "$FLOOD_DIR"
	WORK=$(mktemp -d "$FLOOD_DIR/easymail-flood.XXXXXX")
else
	WORK=$(mktemp -d /var/tmp/easymail-flood.XXXXXX)
fi
chmod 755 "$WORK"
fstype=$(df --output=fstype "$WORK" | tail -n 1)
[[ $fstype == tmpfs || $fstype == ramfs ]] && die "$WORK is on $fstype, where fsync costs nothing; set FLOOD_DIR"

PIDS=()
FLOOD_PID=
cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	[[ -n $FLOOD_PID ]] && kill "$FLOOD_PID" 2>/dev/null || true
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ $KEEP == 1 || $rc != 0 ]]; then
		note "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TAKEN=" "
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
	local p=$((20000 + RANDOM % 30000)) n
	for n in $(seq 200); do
		if [[ $TAKEN != *" $p "* ]] && ! port_busy "$p"; then
			TAKEN+="$p "
			echo "$p"
			return
		fi
		p=$((p + 1))
	done
	die "no free port on 127.0.0.1"
}
wait_port() {
	local port=$1 pid=$2 name=$3 log=$4 i
	for i in $(seq 300); do
		port_busy "$port" && return 0
		kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2 || true; die "$name exited before listening on $port"; }
		sleep 0.1
	done
	die "$name does not listen on 127.0.0.1:$port after 30 s"
}
PORT_SINK=$(pick_port)
PORT_EM=$(pick_port)
PORT_API=$(pick_port)
PORT_DNS=$(pick_port)

SINK_OUT=$WORK/sink.out
sink_count() {
	local s
	s=$(tail -c 80 "$SINK_OUT" 2>/dev/null) || s=
	[[ $s == *mesg=* ]] || { echo 0; return; }
	s=${s##*mesg=}
	echo "${s%%[!0-9]*}"
}

note "building Easymail, the fake DNS and the flood tool"
go build -o "$OUT/easymail" ./cmd/easymail || die "go build ./cmd/easymail failed"
go build -o "$OUT/dnsfake" ./bench/dnsfake || die "go build ./bench/dnsfake failed"
go build -o "$OUT/flood" ./bench/flood || die "go build ./bench/flood failed"

smtp-sink -u nobody -c -h sink.bench.test "127.0.0.1:$PORT_SINK" 1024 >"$SINK_OUT" 2>"$WORK/sink.err" &
PIDS+=($!)
wait_port "$PORT_SINK" "${PIDS[-1]}" smtp-sink "$WORK/sink.err"
"$OUT/dnsfake" -listen "127.0.0.1:$PORT_DNS" -mx dest.test=sink.bench.test \
	-a sink.bench.test=127.0.0.1,relay.bench.test=127.0.0.1 -ptr 127.0.0.1=relay.bench.test >"$WORK/dnsfake.log" 2>&1 &
PIDS+=($!)
wait_port "$PORT_DNS" "${PIDS[-1]}" dnsfake "$WORK/dnsfake.log"

mkdir -p "$WORK/easymail"
# Compromise detection is off: the benchmark is, by design, a sudden spike from a brand new customer.
cat >"$OUT/flood.yaml" <<EOF
# Written by bench/flood.sh.
hostname: relay.bench.test
data_dir: $WORK/easymail
smtp: { listen: ["127.0.0.1:$PORT_EM"] }
api: { listen: "127.0.0.1:$PORT_API" }
dns: { servers: ["127.0.0.1:$PORT_DNS"] }
delivery: { port: $PORT_SINK }
pools: [ { name: default, ips: [ { address: 127.0.0.1, helo: relay.bench.test } ] } ]
compromise: { enabled: false }
log: { level: warn }
EOF
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
EASYMAIL_ADMIN_TOKEN=$token "$OUT/easymail" serve --config "$OUT/flood.yaml" >"$WORK/easymail.log" 2>&1 &
RELAY=$!
PIDS+=($!)
wait_port "$PORT_API" "$RELAY" easymail "$WORK/easymail.log"
wait_port "$PORT_EM" "$RELAY" easymail "$WORK/easymail.log"
api() {
	local body=$WORK/api.body code
	code=$(curl -sS -o "$body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $token" \
		-H 'Content-Type: application/json' --data "$3" "http://127.0.0.1:$PORT_API$2") || die "API $1 $2: curl failed"
	[[ $code == 2?? ]] || die "API $1 $2 answered $code: $(cat "$body")"
	cat "$body"
}
cid=$(api POST /api/v1/customers '{"name":"bench","contact_email":"ops@bench.test","pool":"default"}' |
	tr -d ' \n' | grep -o '"id":[^,}]*' | head -n 1 | cut -d: -f2 | tr -d '"')
[[ -n $cid ]] || die "POST /api/v1/customers returned no id"
api POST "/api/v1/customers/$cid/domains" '{"domain":"bench.test"}' >/dev/null
api POST "/api/v1/customers/$cid/source-ips" '{"cidr":"127.0.0.1/32"}' >/dev/null
api POST "/api/v1/customers/$cid/source-ips" '{"cidr":"127.0.0.60/32"}' >/dev/null
note "Easymail (pid $RELAY) on 127.0.0.1:$PORT_EM, customer $cid (127.0.0.1, slowloris from 127.0.0.60)"

# measure COUNT: sends COUNT messages, waits until they are delivered, prints accepted msg/s.
measure() {
	local count=$1 base t0 t1 deadline
	base=$(sink_count)
	t0=$EPOCHREALTIME
	if ! smtp-source -s "$SESSIONS" -m "$count" -l "$SIZE" -M client.bench.test -f sender@bench.test \
		-t rcpt@dest.test "127.0.0.1:$PORT_EM" >"$WORK/source.out" 2>&1; then
		cat "$WORK/source.out" >&2
		tail -n 30 "$WORK/easymail.log" >&2 || true
		die "smtp-source failed (it stops at the first non-2xx reply)"
	fi
	t1=$EPOCHREALTIME
	deadline=$((EPOCHSECONDS + 300))
	while [[ $(($(sink_count) - base)) -lt $count ]]; do
		[[ $EPOCHSECONDS -lt $deadline ]] || die "only $(($(sink_count) - base)) of $count delivered in 300 s"
		sleep 0.1
	done
	awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", n / (b - a) }'
}

start_flood() {
	"$OUT/flood" -target "127.0.0.1:$PORT_EM" -rate "$RATE" -from 127.0.1.0/24 -slow "$SLOW" \
		-slow-from 127.0.0.60 >"$WORK/flood.out" 2>&1 &
	FLOOD_PID=$!
	# Let the slowloris sessions connect and the connection rate settle before measuring.
	sleep 4
	kill -0 "$FLOOD_PID" 2>/dev/null || { cat "$WORK/flood.out" >&2; die "the flood tool exited"; }
}
stop_flood() {
	kill -INT "$FLOOD_PID" 2>/dev/null || true
	wait "$FLOOD_PID" 2>/dev/null || true
	FLOOD_PID=
	tail -n 1 "$WORK/flood.out" >&2
}

note "warm-up: 200 messages"
measure 200 >/dev/null
RESULTS=$WORK/results
: >"$RESULTS"
for run in $(seq "$RUNS"); do
	quiet=$(measure "$COUNT")
	start_flood
	flooded=$(measure "$COUNT")
	stop_flood
	note "run $run/$RUNS: quiet $quiet msg/s, under flood $flooded msg/s"
	echo "$quiet $flooded" >>"$RESULTS"
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
q=$(awk '{ print $1 }' "$RESULTS" | median)
f=$(awk '{ print $2 }' "$RESULTS" | median)
echo
echo "Customer throughput under flood: medians of $RUNS runs, $COUNT messages of $SIZE bytes, $SESSIONS sessions"
echo "(flood: $RATE unregistered connections/s from 127.0.1.0/24, 10 % talking first; $SLOW slowloris sessions from a registered IP)"
printf '%-24s %10s\n' "" "msg/s"
printf '%-24s %10.1f\n' "quiet" "$q"
printf '%-24s %10.1f\n' "under flood" "$f"
awk -v q="$q" -v f="$f" 'BEGIN { printf "%-24s %9.1f%%\n", "share kept", 100 * f / q }'
