#!/usr/bin/env bash
# bench/run.sh compares Easymail with Postfix as a smarthost on this machine, over loopback (127.0.0.1) only.
#
# Both relays receive the same load from smtp-source and deliver to the same smtp-sink, which plays every
# remote MX. For each message size and relay it measures, over several runs, and prints the medians of:
#   accepted msg/s   messages / smtp-source's wall time (the 250 after DATA)
#   delivered msg/s  messages / time from the first connection until smtp-sink has received all of them
#   CPU ms/msg       CPU time (user+system) of the relay's whole process tree, per message
# The load tools share the CPU with the relay: above ~1,500 msg/s they are the limit, not the relay. Single
# runs vary by about 12 %: compare only figures from the same invocation.
#
# Environment:
#   BENCH_ONLY=postfix|easymail   measure one relay only (default: both)
#   BENCH_RUNS=3                  runs per size and relay
#   BENCH_SIZES="1024:2000 5120:2000 102400:500"   size:count pairs (size is smtp-source's -l payload)
#   BENCH_SESSIONS=20             parallel smtp-source sessions
#   BENCH_REUSE=0                 1: smtp-source keeps each connection for several messages (-d)
#   BENCH_TIMEOUT=300             seconds to wait for one run's deliveries
#   BENCH_DIR=                    work directory for the spools (default: a new one under /var/tmp); must be
#                                 a real disk, not tmpfs, or fsync costs nothing
#   BENCH_KEEP=0                  1: keep the work directory and its logs
#   BENCH_DKIM=0                  1: Easymail DKIM-signs every message (RSA-2048), as it does by default; the
#                                 Postfix beside it never signs, so 0 compares like for like
#   BENCH_SCAN=auto               1: also measure "easymail-scan", a second Easymail scanning every message
#                                 with a real clamd and rspamd (started on loopback by
#                                 internal/testkit/scanners/start-scanners.sh); 0: not; auto: 1 when root
#                                 and clamd and rspamd are installed
set -Eeuo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT=$ROOT/bench/.out
ONLY=${BENCH_ONLY:-}
RUNS=${BENCH_RUNS:-3}
SIZES=${BENCH_SIZES:-"1024:2000 5120:2000 102400:500"}
SESSIONS=${BENCH_SESSIONS:-20}
TIMEOUT=${BENCH_TIMEOUT:-300}
KEEP=${BENCH_KEEP:-0}
DKIM=${BENCH_DKIM:-0}
SCAN=${BENCH_SCAN:-auto}
SENDER=sender@bench.test
RCPT=rcpt@dest.test

die() {
	echo "bench: error: $*" >&2
	exit 1
}
note() { echo "bench: $*" >&2; }

case "$ONLY" in
"") RELAYS=(easymail postfix) ;;
easymail | postfix) RELAYS=("$ONLY") ;;
*) die "BENCH_ONLY must be empty, easymail or postfix, not '$ONLY'" ;;
esac
if [[ $SCAN == auto ]]; then
	SCAN=0
	[[ $(id -u) == 0 ]] && command -v clamd >/dev/null && command -v rspamd >/dev/null && SCAN=1
fi
# The scanning Easymail runs beside the plain one, in the same invocation, so that their ratio holds.
if [[ $SCAN == 1 && " ${RELAYS[*]} " == *" easymail "* ]]; then
	RELAYS=(easymail easymail-scan "${RELAYS[@]:1}")
fi
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ $SESSIONS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SESSIONS must be a positive integer"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT must be a positive integer"
for sc in $SIZES; do
	[[ $sc =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || die "BENCH_SIZES: '$sc' is not size:count"
done
SOURCE_FLAGS=()
[[ ${BENCH_REUSE:-0} == 1 ]] && SOURCE_FLAGS=(-d)

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing ($2)"; }
need smtp-sink "apt-get install postfix"
need smtp-source "apt-get install postfix"
need awk "apt-get install mawk"
if [[ " ${RELAYS[*]} " == *" postfix "* ]]; then
	[[ -x /usr/sbin/postfix ]] || die "/usr/sbin/postfix is missing (apt-get install postfix)"
	id postfix >/dev/null 2>&1 || die "there is no postfix user (apt-get install postfix)"
fi
if [[ " ${RELAYS[*]} " == *" easymail "* ]]; then
	export PATH=$PATH:/usr/local/go/bin
	need go "Go is expected at /usr/local/go"
	need curl "apt-get install curl"
fi
id nobody >/dev/null 2>&1 || die "there is no user nobody for smtp-sink"
CLK_TCK=$(getconf CLK_TCK)

# --- work directory and cleanup -------------------------------------------------------------------------------
mkdir -p "$OUT"
if [[ -n ${BENCH_DIR:-} ]]; then
	mkdir -p "$BENCH_DIR"
	WORK=$(mktemp -d "$BENCH_DIR/easymail-bench.XXXXXX")
else
	WORK=$(mktemp -d /var/tmp/easymail-bench.XXXXXX)
fi
chmod 755 "$WORK"
fstype=$(df --output=fstype "$WORK" | tail -n 1)
[[ $fstype == tmpfs || $fstype == ramfs ]] &&
	die "$WORK is on $fstype, where fsync costs nothing; set BENCH_DIR to a directory on a real disk"

PIDS=()
PF_CONF=
SCANNERS_DIR=
cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	if [[ -n $SCANNERS_DIR ]]; then
		"$ROOT/internal/testkit/scanners/start-scanners.sh" stop "$SCANNERS_DIR" >/dev/null 2>&1 || true
	fi
	if [[ -n $PF_CONF ]]; then
		/usr/sbin/postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
	fi
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

# --- ports ------------------------------------------------------------------------------------------------------
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
PORT_SINK=$(pick_port)
PORT_EM=$(pick_port)
PORT_API=$(pick_port)
PORT_DNS=$(pick_port)
PORT_PF=$(pick_port)
PORT_EMS=$(pick_port)
PORT_APIS=$(pick_port)

# wait_port PORT PID NAME LOG: waits until 127.0.0.1:PORT accepts connections while PID lives.
wait_port() {
	local port=$1 pid=$2 name=$3 log=$4 i
	for i in $(seq 300); do
		port_busy "$port" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "--- last lines of $log:" >&2
			tail -n 30 "$log" >&2 || true
			die "$name exited before listening on 127.0.0.1:$port"
		fi
		sleep 0.1
	done
	echo "--- last lines of $log:" >&2
	tail -n 30 "$log" >&2 || true
	die "$name does not listen on 127.0.0.1:$port after 30 s"
}

# --- measuring --------------------------------------------------------------------------------------------------
# tree_cpu PID: CPU ticks (user+system, with reaped children) of PID and all its live descendants. The Postfix
# master reaps its daemons, so their time moves to its cutime/cstime when they exit.
tree_cpu() {
	# Processes that end between the glob and the read make cat fail; that is expected.
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$1" '
	{
		pid = $1; rest = $0
		sub(/^[^(]*\(.*\) /, "", rest)   # the command may hold spaces and parentheses
		split(rest, f, " ")
		ppid[pid] = f[2]; cpu[pid] = f[12] + f[13] + f[14] + f[15]
	}
	END {
		if (!(root in cpu)) { print -1; exit }
		mem[root] = 1
		do {
			grew = 0
			for (p in ppid) if (!(p in mem) && (ppid[p] in mem)) { mem[p] = 1; grew = 1 }
		} while (grew)
		t = 0
		for (p in mem) t += cpu[p]
		print t
	}'
}

SINK_OUT=$WORK/sink.out
# sink_count: messages smtp-sink has received so far: the last "mesg=N" of its -c counter, which it rewrites
# after a "\r" at every message. One small process per call: the poll must not steal the relays' CPU.
sink_count() {
	local s
	s=$(tail -c 80 "$SINK_OUT" 2>/dev/null) || s=
	if [[ $s != *mesg=* ]]; then
		echo 0
		return
	fi
	s=${s##*mesg=}
	echo "${s%%[!0-9]*}"
}

now() { echo "$EPOCHREALTIME"; }

RELAY_PID_easymail=
RELAY_PID_easymail_scan=
RELAY_PID_postfix=
relay_port() {
	case $1 in
	easymail) echo "$PORT_EM" ;;
	easymail-scan) echo "$PORT_EMS" ;;
	*) echo "$PORT_PF" ;;
	esac
}
relay_pid() {
	case $1 in
	easymail) echo "$RELAY_PID_easymail" ;;
	easymail-scan) echo "$RELAY_PID_easymail_scan" ;;
	*) sed 1q "$WORK/postfix/queue/pid/master.pid" | tr -d ' ' ;;
	esac
}
relay_log() { if [[ $1 == easymail* ]]; then echo "$WORK/$1.log"; else echo "$WORK/postfix/maillog"; fi; }

# scanner_cpu RELAY: CPU ticks of clamd and rspamd (with its workers) for easymail-scan, 0 for the others.
CLAMD_PID=
RSPAMD_PID=
scanner_cpu() {
	if [[ $1 != easymail-scan ]]; then
		echo 0
		return
	fi
	echo $(($(tree_cpu "$CLAMD_PID") + $(tree_cpu "$RSPAMD_PID")))
}

# one_run RELAY SIZE COUNT: sends COUNT messages, waits for their delivery, prints "accepted delivered cpu_ms
# scanners_cpu_ms".
one_run() {
	local relay=$1 size=$2 count=$3 port pid base c0 t0 t1 t2 c1 s0 s1 got deadline
	port=$(relay_port "$relay")
	pid=$(relay_pid "$relay")
	base=$(sink_count)
	c0=$(tree_cpu "$pid")
	s0=$(scanner_cpu "$relay")
	[[ $c0 -ge 0 ]] || die "$relay (pid $pid) is not running; see $(relay_log "$relay")"
	t0=$(now)
	if ! smtp-source "${SOURCE_FLAGS[@]}" -s "$SESSIONS" -m "$count" -l "$size" -M client.bench.test \
		-f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >"$WORK/source.out" 2>&1; then
		cat "$WORK/source.out" >&2
		echo "--- last lines of $(relay_log "$relay"):" >&2
		tail -n 30 "$(relay_log "$relay")" >&2 || true
		die "smtp-source against $relay failed (it stops at the first non-2xx reply)"
	fi
	t1=$(now)
	deadline=$((${t1%.*} + TIMEOUT))
	while :; do
		got=$(($(sink_count) - base))
		[[ $got -ge $count ]] && break
		if [[ ${EPOCHSECONDS} -ge $deadline ]]; then
			echo "--- last lines of $(relay_log "$relay"):" >&2
			tail -n 30 "$(relay_log "$relay")" >&2 || true
			die "$relay delivered $got of $count messages of $size bytes within ${TIMEOUT}s"
		fi
		sleep 0.05
	done
	t2=$(now)
	c1=$(tree_cpu "$pid")
	s1=$(scanner_cpu "$relay")
	[[ $c1 -ge 0 ]] || die "$relay (pid $pid) died during the run; see $(relay_log "$relay")"
	awk -v n="$count" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v c0="$c0" -v c1="$c1" -v s0="$s0" -v s1="$s1" -v hz="$CLK_TCK" \
		'BEGIN { printf "%.1f %.1f %.3f %.3f\n", n / (t1 - t0), n / (t2 - t0), (c1 - c0) * 1000 / hz / n, (s1 - s0) * 1000 / hz / n }'
}

# --- the sink ---------------------------------------------------------------------------------------------------
note "work directory $WORK ($fstype)"
smtp-sink -u nobody -c -h sink.bench.test "127.0.0.1:$PORT_SINK" 1024 >"$SINK_OUT" 2>"$WORK/sink.err" &
PIDS+=($!)
wait_port "$PORT_SINK" "${PIDS[-1]}" smtp-sink "$WORK/sink.err"
note "smtp-sink on 127.0.0.1:$PORT_SINK"

# --- Easymail ---------------------------------------------------------------------------------------------------
# start_easymail [NAME]: NAME is easymail (default) or easymail-scan (scanning with the running scanners).
start_easymail() {
	local token data cid code name=${1:-easymail} port=$PORT_EM port_api=$PORT_API scan_conf=
	if [[ $name == easymail-scan ]]; then
		port=$PORT_EMS port_api=$PORT_APIS
		scan_conf="scan: { clamd: \"tcp://$CLAMD_ADDR\", rspamd: \"http://$RSPAMD_ADDR\" }"
	fi
	if [[ ! -x $WORK/.built ]]; then
		note "building Easymail and the fake DNS"
		go build -o "$OUT/easymail" ./cmd/easymail || die "go build ./cmd/easymail failed"
		go build -o "$OUT/dnsfake" ./bench/dnsfake || die "go build ./bench/dnsfake failed"

		"$OUT/dnsfake" -listen "127.0.0.1:$PORT_DNS" -mx dest.test=sink.bench.test \
			-a sink.bench.test=127.0.0.1,relay.bench.test=127.0.0.1 -ptr 127.0.0.1=relay.bench.test \
			>"$WORK/dnsfake.log" 2>&1 &
		PIDS+=($!)
		wait_port "$PORT_DNS" "${PIDS[-1]}" dnsfake "$WORK/dnsfake.log"
		install -m 755 /dev/null "$WORK/.built"
	fi

	data=$WORK/$name
	mkdir -p "$data"
	cat >"$OUT/$name.yaml" <<EOF
# Written by bench/run.sh.
hostname: relay.bench.test
data_dir: $data
smtp: { listen: ["127.0.0.1:$port"] }
api: { listen: "127.0.0.1:$port_api" }
$scan_conf
dns: { servers: ["127.0.0.1:$PORT_DNS"] }
delivery: { port: $PORT_SINK }
pools: [ { name: default, ips: [ { address: 127.0.0.1, helo: relay.bench.test } ] } ]
# The benchmark is a sudden spike from a brand new customer: compromise detection would hold it.
compromise: { enabled: false }
# Like for like: the Postfix beside it signs nothing. BENCH_DKIM=1 measures with RSA-2048 signing.
dkim: { sign: $([[ $DKIM == 1 ]] && echo true || echo false) }
EOF
	token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	EASYMAIL_ADMIN_TOKEN=$token "$OUT/easymail" serve --config "$OUT/$name.yaml" >"$WORK/$name.log" 2>&1 &
	printf -v "RELAY_PID_${name//-/_}" %s $!
	PIDS+=($!)
	wait_port "$port_api" "${PIDS[-1]}" "$name" "$WORK/$name.log"
	wait_port "$port" "${PIDS[-1]}" "$name" "$WORK/$name.log"

	# api METHOD PATH JSON: calls the admin API, fails on a non-2xx status, prints the body.
	api() {
		local body=$WORK/api.body code
		code=$(curl -sS -o "$body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $token" \
			-H 'Content-Type: application/json' --data "$3" "http://127.0.0.1:$port_api$2") ||
			die "API $1 $2: curl failed"
		[[ $code == 2?? ]] || die "API $1 $2 answered $code: $(cat "$body")"
		cat "$body"
	}
	cid=$(api POST /api/v1/customers '{"name":"bench","contact_email":"ops@bench.test","pool":"default"}' |
		tr -d ' \n' | grep -o '"id":[^,}]*' | head -n 1 | cut -d: -f2 | tr -d '"')
	[[ -n $cid ]] || die "POST /api/v1/customers returned no id"
	api POST "/api/v1/customers/$cid/domains" '{"domain":"bench.test"}' >/dev/null
	api POST "/api/v1/customers/$cid/source-ips" '{"cidr":"127.0.0.0/8"}' >/dev/null
	note "Easymail $name (pid ${PIDS[-1]}) on 127.0.0.1:$port, customer $cid"
}

# start_easymail-scan: clamd and rspamd on loopback (the integration tests' set-up), then an Easymail that
# scans every message with them.
start_easymail-scan() {
	SCANNERS_DIR=$(mktemp -d /tmp/easymail-bench-scanners.XXXXXX)
	note "starting clamd and rspamd in $SCANNERS_DIR (rspamd's first start compiles for ~15 s)"
	"$ROOT/internal/testkit/scanners/start-scanners.sh" start "$SCANNERS_DIR" >"$WORK/scanners.env" ||
		die "the scanners did not start"
	while IFS== read -r k v; do
		case $k in
		CLAMD_ADDR) CLAMD_ADDR=$v ;; RSPAMD_ADDR) RSPAMD_ADDR=$v ;;
		CLAMD_PID) CLAMD_PID=$v ;; RSPAMD_PID) RSPAMD_PID=$v ;;
		esac
	done <"$WORK/scanners.env"
	start_easymail easymail-scan
}

# --- Postfix ----------------------------------------------------------------------------------------------------
start_postfix() {
	local d=$WORK/postfix
	mkdir -p "$d/conf" "$d/queue" "$d/data"
	chmod 755 "$d" "$d/conf" "$d/queue" "$d/data"
	chown postfix: "$d/data"
	runuser -u postfix -- test -x "$d/data" ||
		die "the postfix user cannot reach $d (a parent directory is closed); set BENCH_DIR elsewhere"
	# A customer's Postfix as shipped, relaying everything to the sink: only paths, names and routing differ
	# from the defaults; every service is unchrooted because the new queue directory has no chroot files.
	cat >"$d/conf/main.cf" <<EOF
# Written by bench/run.sh.
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
maillog_file = $d/maillog
maillog_file_prefixes = $d
myhostname = relay-postfix.bench.test
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
default_transport = smtp:[127.0.0.1]:$PORT_SINK
relay_transport = smtp:[127.0.0.1]:$PORT_SINK
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtp_tls_security_level = may
biff = no
append_dot_mydomain = no
EOF
	{
		echo "127.0.0.1:$PORT_PF inet n - n - - smtpd"
		cat <<'EOF'
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
EOF
	} >"$d/conf/master.cf"
	# Postfix prints early errors only to a terminal; script(1) gives it one.
	if ! script -qec "/usr/sbin/postfix -c '$d/conf' check" /dev/null >"$WORK/postfix-check.out" 2>&1; then
		cat "$WORK/postfix-check.out" "$d/maillog" >&2 2>/dev/null || true
		die "postfix check failed for $d/conf"
	fi
	PF_CONF=$d/conf
	if ! /usr/sbin/postfix -c "$d/conf" start >"$WORK/postfix-start.out" 2>&1; then
		cat "$WORK/postfix-start.out" "$d/maillog" >&2 2>/dev/null || true
		die "postfix start failed"
	fi
	wait_port "$PORT_PF" "$(relay_pid postfix)" postfix "$d/maillog"
	note "Postfix $(/usr/sbin/postconf -h mail_version) (master pid $(relay_pid postfix)) on 127.0.0.1:$PORT_PF"
}

for r in "${RELAYS[@]}"; do
	"start_$r"
done

# --- warm-up: proves each path end to end before anything is measured ----------------------------------------
for r in "${RELAYS[@]}"; do
	note "warm-up: 100 messages through $r"
	one_run "$r" 1024 100 >/dev/null
done

# --- the runs ---------------------------------------------------------------------------------------------------
RESULTS=$WORK/results
: >"$RESULTS"
for sc in $SIZES; do
	size=${sc%:*}
	count=${sc#*:}
	for run in $(seq "$RUNS"); do
		for r in "${RELAYS[@]}"; do
			res=$(one_run "$r" "$size" "$count")
			note "size $size run $run/$RUNS $r: accepted/s delivered/s cpu-ms/msg = $res"
			echo "$size $r $res" >>"$RESULTS"
		done
	done
done

# --- the table --------------------------------------------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { awk -v s="$1" -v r="$2" -v c="$3" '$1 == s && $2 == r { print $c }' "$RESULTS" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

{
	echo
	[[ $SCAN == 1 ]] && echo "easymail-scan: Easymail scanning every message with clamd and rspamd (EMS/EM: its ratio to Easymail without scanning)"
	echo "Easymail vs Postfix as a smarthost: medians of $RUNS runs, $SESSIONS smtp-source sessions$([[ ${BENCH_REUSE:-0} == 1 ]] && echo ', connections reused'), spool on $fstype, Easymail DKIM signing $([[ $DKIM == 1 ]] && echo on || echo off)"
	echo "(load tools share the 2 CPUs with the relay; CPU ms/msg counts the relay's processes only, scanners ms/msg"
	echo " the CPU of clamd and rspamd for easymail-scan)"
	printf '%-8s %-13s %8s %14s %15s %11s %15s\n' size relay messages "accepted msg/s" "delivered msg/s" "CPU ms/msg" \
		"scanners ms/msg"
	for sc in $SIZES; do
		size=${sc%:*}
		count=${sc#*:}
		for r in "${RELAYS[@]}"; do
			printf '%-8s %-13s %8s %14.1f %15.1f %11.3f %15.3f\n' "$size" "$r" "$count" \
				"$(med "$size" "$r" 3)" "$(med "$size" "$r" 4)" "$(med "$size" "$r" 5)" "$(med "$size" "$r" 6)"
		done
		if [[ " ${RELAYS[*]} " == *" easymail-scan "* ]]; then
			printf '%-8s %-13s %8s %14s %15s %11s\n' "$size" "EMS/EM" "" \
				"$(ratio "$(med "$size" easymail-scan 3)" "$(med "$size" easymail 3)")" \
				"$(ratio "$(med "$size" easymail-scan 4)" "$(med "$size" easymail 4)")" \
				"$(ratio "$(med "$size" easymail-scan 5)" "$(med "$size" easymail 5)")"
		fi
		if [[ " ${RELAYS[*]} " == *" easymail "* && " ${RELAYS[*]} " == *" postfix "* ]]; then
			printf '%-8s %-13s %8s %14s %15s %11s\n' "$size" "EM/PF" "" \
				"$(ratio "$(med "$size" easymail 3)" "$(med "$size" postfix 3)")" \
				"$(ratio "$(med "$size" easymail 4)" "$(med "$size" postfix 4)")" \
				"$(ratio "$(med "$size" easymail 5)" "$(med "$size" postfix 5)")"
		fi
	done
	if [[ " ${RELAYS[*]} " == *" postfix "* ]]; then
		echo "Postfix deferrals during the bench: $(grep -c 'status=deferred' "$WORK/postfix/maillog" || true)"
	fi
} | tee "$OUT/results.txt"
