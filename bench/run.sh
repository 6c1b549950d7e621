#!/usr/bin/env bash
# bench/run.sh compares Easymail with Postfix on this machine, over loopback (127.0.0.1) only, in three modes,
# each against its like-for-like anchor, all in the same invocation:
#
#   plain  Easymail with dkim.sign: false        vs Postfix as a plain smarthost
#   sign   Easymail signing (RSA-2048)           vs Postfix + OpenDKIM (RSA-2048) as a milter
#   scan   Easymail scanning (clamd + rspamd)    vs Postfix + clamav-milter + rspamd's milter (proxy worker in
#          and signing                              milter mode) + OpenDKIM, with the same clamd and rspamd
#   tls    one Easymail (no signing) delivering over STARTTLS to bench/tlssink, an MX with a certificate from a
#          CA made at start (trusted through delivery.tls_ca_file), to three destinations on that MX:
#            tls-may     may.test, tls_policy may (opportunistic: STARTTLS, the certificate not checked)
#            tls-sts     sts.test, an MTA-STS enforce policy served over HTTPS by bench/tlssink, fetched
#                        once (in the warm-up) and then cached
#            tls-verify  vfy.test, delivery.tls_policies {vfy.test: verify}
#          ratios tls-sts/tls-may and tls-verify/tls-may: the cost of the policy checks. Easymail reuses
#          its connections to the MX (as it does by default), so few sessions verify a certificate.
#   tls1   the same with one message per connection (a shaping provider for mx.tls.test with
#          messages_per_connection: 1): every message a new TLS session, its certificate verified under
#          sts and verify, the worst case of the policy checks.
#          The policy fetch goes to mta-sts.sts.test:443, which these Easymails alone resolve to 127.0.0.3
#          (a private /etc/hosts in their own mount namespace, unshare -m); 127.0.0.3:443 must be free.
#
# Every relay gets the same load from bench/load (N concurrent sessions, one message per connection, like
# smtp-source -s 20 -m N) and delivers to the same smtp-sink, which plays every remote MX; the DNS is
# bench/dnsfake. For each run bench/load measures:
#   accepted/s      messages / wall time of the load (every 250 after DATA)
#   delivered/s     messages / time from the first connection until smtp-sink has received all of them
#   p50/p99 ms      time from the end of DATA (the ".") to the 250
#   CPU ms/msg      user+system CPU of each process tree (the relay: for Postfix its master and all its
#                   children; the milters; the scanners), from /proc/PID/stat, and their total
#   RSS/PSS MB      peak memory of the relay and its milters (sampled every 100 ms), and of the scanners
# Each mode and size runs BENCH_ROUNDS rounds, Easymail and its anchor back to back (the order alternates);
# the table shows the medians, and the medians of the per-round Easymail/anchor ratios. The load tools share
# the CPU with the relays: compare only figures of one invocation.
#
# Environment:
#   BENCH_QUICK=0          1: one size (5 KB) and one round per mode
#   BENCH_MODES=auto       modes to run, e.g. "plain sign"; auto: plain, sign when OpenDKIM is installed,
#                          scan when clamd, rspamd, clamav-milter and OpenDKIM are, tls and tls1 when
#                          unshare is
#   BENCH_ROUNDS=3         rounds (BENCH_RUNS is the old name)
#   BENCH_SIZES="1024:2000 5120:2000 102400:500"   size:count pairs of the plain mode (size: body bytes)
#   BENCH_SIGN_SIZES="5120:2000"  BENCH_SCAN_SIZES="5120:2000"  BENCH_TLS_SIZES="5120:2000"   the same for
#                          the sign, scan, tls and tls1 modes
#   BENCH_SESSIONS=20      concurrent sessions
#   BENCH_ONLY=            easymail or anchor: run one side only
#   BENCH_SMTP_SOURCE=1    1: after each run, the same load with smtp-source too (its accepted/s is one more
#                          column; doubles the time of the rounds); 0 with BENCH_QUICK=1
#   BENCH_MILTER_SOCKETS=unix   how Postfix reaches its milters: unix (UNIX-domain sockets, as Debian's
#                          opendkim and clamav-milter packages set up) or inet (TCP on 127.0.0.1)
#   BENCH_TIMEOUT=300      seconds one run may take, deliveries included
#   BENCH_DIR=             work directory for the spools (default: a new one under /var/tmp); must be a real
#                          disk, not tmpfs, or fsync costs nothing
#   BENCH_KEEP=0           1: keep the work directory and its logs
#
# Needs root (Postfix and smtp-sink switch users) and, for the anchors of sign and scan, `make bench-deps`.
set -Eeuo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT=$ROOT/bench/.out
QUICK=${BENCH_QUICK:-0}
ROUNDS=${BENCH_ROUNDS:-${BENCH_RUNS:-3}}
SIZES=${BENCH_SIZES:-"1024:2000 5120:2000 102400:500"}
SIGN_SIZES=${BENCH_SIGN_SIZES:-"5120:2000"}
SCAN_SIZES=${BENCH_SCAN_SIZES:-"5120:2000"}
TLS_SIZES=${BENCH_TLS_SIZES:-"5120:2000"}
if [[ $QUICK == 1 ]]; then
	ROUNDS=${BENCH_ROUNDS:-1}
	SIZES=${BENCH_SIZES:-"5120:2000"}
fi
MODES=${BENCH_MODES:-auto}
ONLY=${BENCH_ONLY:-}
SESSIONS=${BENCH_SESSIONS:-20}
TIMEOUT=${BENCH_TIMEOUT:-300}
KEEP=${BENCH_KEEP:-0}
SMTP_SOURCE=${BENCH_SMTP_SOURCE:-$([[ $QUICK == 1 ]] && echo 0 || echo 1)}
MILTER_SOCKETS=${BENCH_MILTER_SOCKETS:-unix}
SENDER=sender@bench.test
RCPT=rcpt@dest.test
DEPS="apt-get install --no-install-recommends postfix opendkim opendkim-tools clamav-daemon clamav-milter rspamd (or make bench-deps)"

die() {
	echo "bench: error: $*" >&2
	exit 1
}
note() { echo "bench: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

[[ $(id -u) == 0 ]] || die "run as root: Postfix, smtp-sink and the milters switch users"
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
have go || die "go is missing (expected at /usr/local/go)"
for t in smtp-sink smtp-source postconf; do have "$t" || die "$t is missing: apt-get install postfix"; done
[[ -x /usr/sbin/postfix ]] && id postfix >/dev/null 2>&1 || die "Postfix is missing: apt-get install postfix"
have curl || die "curl is missing: apt-get install curl"
id nobody >/dev/null 2>&1 || die "there is no user nobody for smtp-sink"

can_sign() { have opendkim && have opendkim-genkey; }
can_scan() { can_sign && have clamd && have rspamd && have clamav-milter; }
can_tls() { have unshare && have mount; }
if [[ $MODES == auto ]]; then
	MODES=plain
	if can_sign; then MODES+=" sign"; else note "no OpenDKIM: the sign mode is left out ($DEPS)"; fi
	if can_scan; then MODES+=" scan"; else note "no clamd, rspamd or clamav-milter: the scan mode is left out ($DEPS)"; fi
	if can_tls; then MODES+=" tls tls1"; else note "no unshare: the tls modes are left out (apt-get install util-linux mount)"; fi
fi
for m in $MODES; do
	case $m in
	plain) ;;
	sign) can_sign || die "the sign mode needs opendkim and opendkim-genkey: $DEPS" ;;
	scan) can_scan || die "the scan mode needs opendkim, clamd, rspamd and clamav-milter: $DEPS" ;;
	tls | tls1) can_tls || die "the $m mode needs unshare and mount: apt-get install util-linux mount" ;;
	*) die "BENCH_MODES: unknown mode '$m' (plain, sign, scan, tls, tls1)" ;;
	esac
done
case $MILTER_SOCKETS in unix | inet) ;; *) die "BENCH_MILTER_SOCKETS must be unix or inet, not '$MILTER_SOCKETS'" ;; esac
case $ONLY in "" | easymail | anchor) ;; *) die "BENCH_ONLY must be empty, easymail or anchor, not '$ONLY'" ;; esac
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ $SESSIONS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SESSIONS must be a positive integer"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT must be a positive integer"
for sc in $SIZES $SIGN_SIZES $SCAN_SIZES $TLS_SIZES; do
	[[ $sc =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || die "'$sc' is not size:count"
done
has_mode() { [[ " $MODES " == *" $1 "* ]]; }
mode_sizes() {
	case $1 in plain) echo "$SIZES" ;; sign) echo "$SIGN_SIZES" ;; scan) echo "$SCAN_SIZES" ;; tls | tls1) echo "$TLS_SIZES" ;; esac
}
# The pair of relays of each mode: Easymail first, then its anchor. The tls modes have three each, all one
# Easymail (instance_of): the policies, and the baseline (may), the "anchor" of their ratios.
mode_relays() {
	local e a
	if [[ $1 == tls || $1 == tls1 ]]; then
		[[ $ONLY == anchor ]] || echo "easymail-$1-sts easymail-$1-verify easymail-$1-may"
		return
	fi
	case $1 in
	plain) e=easymail a=postfix ;;
	sign) e=easymail-sign a=postfix-dkim ;;
	scan) e=easymail-scan a=postfix-scan ;;
	esac
	case $ONLY in easymail) echo "$e" ;; anchor) echo "$a" ;; *) echo "$e $a" ;; esac
}
RELAYS=()
for m in $MODES; do
	# shellcheck disable=SC2207 # relay names have no spaces
	RELAYS+=($(mode_relays "$m"))
done
need_milter() { # need_milter opendkim|clamav: whether a relay to be started uses it
	local r
	for r in "${RELAYS[@]}"; do
		case $1:$r in opendkim:postfix-dkim | opendkim:postfix-scan | clamav:postfix-scan) return 0 ;; esac
	done
	return 1
}
need_scanners() { [[ " ${RELAYS[*]} " == *"-scan "* ]]; }
# instance_of RELAY: the process that RELAY names (each tls mode's three relays are one Easymail).
instance_of() {
	case $1 in easymail-tls-*) echo easymail-tls ;; easymail-tls1-*) echo easymail-tls1 ;; *) echo "$1" ;; esac
}
# The tls Easymails.
tls_instances() {
	local i
	for i in "${INSTANCES[@]}"; do [[ $i == easymail-tls* ]] && echo "$i"; done
	return 0
}
INSTANCES=()
for r in "${RELAYS[@]}"; do
	i=$(instance_of "$r")
	[[ " ${INSTANCES[*]} " == *" $i "* ]] || INSTANCES+=("$i")
done
need_tls() { [[ " ${INSTANCES[*]} " == *" easymail-tls"* ]]; }
# The recipient of RELAY's load: the tls relays each have their destination on the TLS sink.
rcpt_of() {
	case $1 in
	easymail-tls*-may) echo rcpt@may.test ;;
	easymail-tls*-sts) echo rcpt@sts.test ;;
	easymail-tls*-verify) echo rcpt@vfy.test ;;
	*) echo "$RCPT" ;;
	esac
}

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
PF_CONFS=()
CLAMD_DIR=
RSPAMD_PID=
cleanup() {
	local rc=$? pid i c
	trap - EXIT INT TERM
	for c in "${PF_CONFS[@]}"; do
		/usr/sbin/postfix -c "$c" stop >/dev/null 2>&1 || true
	done
	if [[ -n $CLAMD_DIR ]]; then
		"$ROOT/internal/testkit/scanners/start-scanners.sh" stop "$CLAMD_DIR" >/dev/null 2>&1 || true
	fi
	# rspamd's workers outlive their main process when it is killed: SIGTERM it first, and it stops them.
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
	if [[ -n $RSPAMD_PID ]]; then
		# Its workers, if the main process had to be killed (same process group: started with setsid).
		pkill -TERM -g "$RSPAMD_PID" 2>/dev/null || true
	fi
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
	# Below the kernel's ephemeral ports (32768-60999 by default): a port picked there could be taken by an
	# outgoing connection (the relays', the load's) before the server meant for it binds.
	local p=$((20000 + RANDOM % 12000 - 200)) n
	for n in $(seq 200); do
		if [[ $TAKEN != *" $p "* ]] && ! port_busy "$p" && ! (exec 3<>"/dev/tcp/127.0.0.2/$p") 2>/dev/null &&
			! (exec 3<>"/dev/tcp/127.0.0.3/$p") 2>/dev/null; then
			TAKEN+="$p "
			echo "$p"
			return
		fi
		p=$((p + 1))
	done
	die "no free port on 127.0.0.1"
}
PORT_SINK=$(pick_port)
PORT_DNS=$(pick_port)
PORT_CLAMD=$(pick_port)
PORT_RSPAMD=$(pick_port)
PORT_RSPAMD_CTL=$(pick_port)
PORT_RSPAMD_MILTER=$(pick_port)
PORT_CLAMAV_MILTER=$(pick_port)
PORT_OPENDKIM=$(pick_port)
declare -A PORT API PID LOG TOKEN
for r in "${INSTANCES[@]}"; do
	PORT[$r]=$(pick_port)
	[[ $r == easymail* ]] && API[$r]=$(pick_port)
done
if need_tls; then
	(exec 3<>/dev/tcp/127.0.0.3/443) 2>/dev/null &&
		die "127.0.0.3:443 is taken: the tls mode serves the MTA-STS policy there (BENCH_MODES without tls)"
fi

# wait_port PORT PID NAME LOG: waits until 127.0.0.1:PORT accepts connections while PID lives.
wait_port() {
	local port=$1 pid=$2 name=$3 log=$4 i
	for i in $(seq 600); do
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
	die "$name does not listen on 127.0.0.1:$port after 60 s"
}

# wait_milter SPEC PID NAME LOG: waits until the milter at SPEC (Postfix's notation: inet:127.0.0.1:PORT or
# unix:PATH) listens while PID lives.
wait_milter() {
	local spec=$1 pid=$2 name=$3 log=$4 i
	if [[ $spec == inet:* ]]; then
		wait_port "${spec##*:}" "$pid" "$name" "$log"
		return
	fi
	for i in $(seq 600); do
		[[ -S ${spec#unix:} ]] && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "--- last lines of $log:" >&2
			tail -n 30 "$log" >&2 || true
			die "$name exited before listening on ${spec#unix:}"
		fi
		sleep 0.1
	done
	die "$name does not listen on ${spec#unix:} after 60 s"
}

# The milters' addresses, as Postfix writes them.
if [[ $MILTER_SOCKETS == unix ]]; then
	MILTER_OPENDKIM=unix:$WORK/opendkim/opendkim.sock
	MILTER_CLAMAV=unix:$WORK/clamav-milter/clamav-milter.sock
	MILTER_RSPAMD=unix:$WORK/rspamd/run/milter.sock
	RSPAMD_MILTER_BIND="${MILTER_RSPAMD#unix:} mode=0666"
else
	MILTER_OPENDKIM=inet:127.0.0.1:$PORT_OPENDKIM
	MILTER_CLAMAV=inet:127.0.0.1:$PORT_CLAMAV_MILTER
	MILTER_RSPAMD=inet:127.0.0.1:$PORT_RSPAMD_MILTER
	RSPAMD_MILTER_BIND=127.0.0.1:$PORT_RSPAMD_MILTER
fi

# --- the load tool, the fake DNS and the sinks ---------------------------------------------------------------
note "work directory $WORK ($fstype); modes: $MODES; rounds: $ROUNDS"
note "building Easymail, bench/load, bench/dnsfake and bench/tlssink"
go build -o "$OUT/easymail" ./cmd/easymail || die "go build ./cmd/easymail failed"
go build -o "$OUT/load" ./bench/load || die "go build ./bench/load failed"
go build -o "$OUT/dnsfake" ./bench/dnsfake || die "go build ./bench/dnsfake failed"
go build -o "$OUT/tlssink" ./bench/tlssink || die "go build ./bench/tlssink failed"
LOAD=$OUT/load

# dest.test is where the load goes (the sink on 127.0.0.1); verify.test goes to a second sink on 127.0.0.2
# that keeps each message, for the checks that each relay signs or scans as it should. may.test, sts.test
# (with its _mta-sts record) and vfy.test are the tls mode's, on the TLS sink mx.tls.test (127.0.0.3).
"$OUT/dnsfake" -listen "127.0.0.1:$PORT_DNS" -mx dest.test=sink.bench.test,verify.test=verify.bench.test \
	-mx may.test=mx.tls.test,sts.test=mx.tls.test,vfy.test=mx.tls.test \
	-a sink.bench.test=127.0.0.1,verify.bench.test=127.0.0.2,relay.bench.test=127.0.0.1 \
	-a mx.tls.test=127.0.0.3,mta-sts.sts.test=127.0.0.3 -txt '_mta-sts.sts.test=v=STSv1; id=bench1' \
	-ptr 127.0.0.1=relay.bench.test >"$WORK/dnsfake.log" 2>&1 &
PIDS+=($!)
wait_port "$PORT_DNS" "${PIDS[-1]}" dnsfake "$WORK/dnsfake.log"

SINK_OUT=$WORK/sink.out
smtp-sink -u nobody -c -h sink.bench.test "127.0.0.1:$PORT_SINK" 1024 >"$SINK_OUT" 2>"$WORK/sink.err" &
PIDS+=($!)
wait_port "$PORT_SINK" "${PIDS[-1]}" smtp-sink "$WORK/sink.err"
VERIFY=$WORK/verify
mkdir -p "$VERIFY"
chown nobody "$VERIFY"
smtp-sink -u nobody -h verify.bench.test -d "$VERIFY/%H%M%S." "127.0.0.2:$PORT_SINK" 64 \
	>"$WORK/verify-sink.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.2/$PORT_SINK") 2>/dev/null && break
	kill -0 "${PIDS[-1]}" 2>/dev/null || die "the verifying smtp-sink on 127.0.0.2 exited: $(cat "$WORK/verify-sink.log")"
	sleep 0.1
done
note "smtp-sink on 127.0.0.1:$PORT_SINK (and 127.0.0.2 for the checks), fake DNS on 127.0.0.1:$PORT_DNS"

# The tls mode's MX: STARTTLS with a certificate for mx.tls.test (and mta-sts.sts.test) from the CA it
# writes to $TLS_DIR/ca.pem, and the MTA-STS policy of sts.test on 127.0.0.3:443.
TLS_DIR=$WORK/tls
TLS_SINK_OUT=$TLS_DIR/sink.out
if need_tls; then
	mkdir -p "$TLS_DIR"
	"$OUT/tlssink" -smtp "127.0.0.3:$PORT_SINK" -https 127.0.0.3:443 -host mx.tls.test -sts sts.test=enforce \
		-ca-out "$TLS_DIR/ca.pem" -count-out "$TLS_SINK_OUT" >"$TLS_DIR/tlssink.log" 2>&1 &
	PIDS+=($!)
	for i in $(seq 100); do
		[[ -s $TLS_DIR/ca.pem ]] && (exec 3<>"/dev/tcp/127.0.0.3/$PORT_SINK") 2>/dev/null &&
			(exec 3<>/dev/tcp/127.0.0.3/443) 2>/dev/null && break
		kill -0 "${PIDS[-1]}" 2>/dev/null || die "bench/tlssink exited: $(cat "$TLS_DIR/tlssink.log")"
		[[ $i == 100 ]] && die "bench/tlssink does not listen on 127.0.0.3:$PORT_SINK and :443 after 10 s"
		sleep 0.1
	done
	# The private /etc/hosts of the tls Easymail: its policy fetches dial with the system's resolver.
	{
		cat /etc/hosts
		echo "127.0.0.3 mta-sts.sts.test"
	} >"$TLS_DIR/hosts"
	note "bench/tlssink (STARTTLS, MTA-STS enforce for sts.test) on 127.0.0.3:$PORT_SINK and 127.0.0.3:443"
fi
sink_of() { if [[ $1 == easymail-tls* ]]; then echo "$TLS_SINK_OUT"; else echo "$SINK_OUT"; fi; }

# --- scanners and milters ---------------------------------------------------------------------------------------
CLAMD_PID=
OPENDKIM_PID=
CLAMAV_MILTER_PID=
start_scanners() {
	CLAMD_DIR=$WORK/clamd
	mkdir -p "$CLAMD_DIR"
	SCANNERS=clamd CLAMD_PORT=$PORT_CLAMD "$ROOT/internal/testkit/scanners/start-scanners.sh" start "$CLAMD_DIR" \
		>"$WORK/clamd.env" 2>"$WORK/clamd.start.log" || {
		cat "$WORK/clamd.start.log" >&2
		die "clamd did not start"
	}
	CLAMD_PID=$(sed -n 's/^CLAMD_PID=//p' "$WORK/clamd.env")

	# rspamd with the bench's own overrides (bench/rspamd): its normal worker for Easymail, its proxy worker
	# in milter mode for Postfix, both scanning with the same configuration. The hyperscan cache is kept
	# between runs (the first start compiles for about 15 s) and is the bench's own: rspamd deletes the
	# cached files its configuration does not use.
	local R=$WORK/rspamd cache=/var/tmp/rspamd-hs-cache-bench
	mkdir -p "$R/conf" "$R/db" "$R/run" "$R/log" "$cache"
	cp -r "$ROOT/bench/rspamd/local.d" "$ROOT/bench/rspamd/override.d" "$R/conf/"
	setsid rspamd -f -i -c /etc/rspamd/rspamd.conf \
		--var="LOCAL_CONFDIR=$R/conf" --var="DBDIR=$R/db" --var="RUNDIR=$R/run" --var="LOGDIR=$R/log" \
		--var="RSPAMD_PORT=$PORT_RSPAMD" --var="RSPAMD_CONTROLLER_PORT=$PORT_RSPAMD_CTL" \
		--var="RSPAMD_MILTER_BIND=$RSPAMD_MILTER_BIND" --var="RSPAMD_DNS=127.0.0.1:$PORT_DNS" \
		--var="RSPAMD_HS_CACHE=$cache" </dev/null >"$R/stdout.log" 2>&1 &
	RSPAMD_PID=$!
	PIDS+=("$RSPAMD_PID")
	note "starting rspamd (pid $RSPAMD_PID; a first start compiles for ~15 s)"
	local p
	for p in "$PORT_RSPAMD" "$PORT_RSPAMD_CTL"; do
		wait_port "$p" "$RSPAMD_PID" rspamd "$R/log/rspamd.log"
	done
	wait_milter "$MILTER_RSPAMD" "$RSPAMD_PID" rspamd "$R/log/rspamd.log"
	for i in $(seq 300); do
		[[ $(curl -s "http://127.0.0.1:$PORT_RSPAMD/ping") == pong* ]] && break
		[[ $i == 300 ]] && die "rspamd does not answer /ping on 127.0.0.1:$PORT_RSPAMD"
		sleep 0.1
	done
	note "clamd (pid $CLAMD_PID) on 127.0.0.1:$PORT_CLAMD, rspamd (pid $RSPAMD_PID) on 127.0.0.1:$PORT_RSPAMD, its milter on $MILTER_RSPAMD"
}

# OpenDKIM signs for bench.test with its own RSA-2048 key, as Easymail does with the key it makes when the
# domain is added; both relaxed/relaxed, rsa-sha256.
start_opendkim() {
	local d=$WORK/opendkim
	mkdir -p "$d"
	opendkim-genkey -b 2048 -d bench.test -s bench -D "$d" || die "opendkim-genkey failed"
	chown -R opendkim: "$d"
	cat >"$d/opendkim.conf" <<EOF
# Written by bench/run.sh.
Syslog no
Background no
Mode s
Domain bench.test
Selector bench
KeyFile $d/bench.private
Socket $([[ $MILTER_SOCKETS == unix ]] && echo "local:${MILTER_OPENDKIM#unix:}" || echo "inet:$PORT_OPENDKIM@127.0.0.1")
UMask 000
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
UserID opendkim
RequireSafeKeys no
EOF
	opendkim -x "$d/opendkim.conf" -f >"$d/opendkim.log" 2>&1 &
	OPENDKIM_PID=$!
	PIDS+=("$OPENDKIM_PID")
	wait_milter "$MILTER_OPENDKIM" "$OPENDKIM_PID" opendkim "$d/opendkim.log"
	note "OpenDKIM $(opendkim -V | sed -n '1s/.* v//p') (pid $OPENDKIM_PID) on $MILTER_OPENDKIM"
}

start_clamav_milter() {
	local d=$WORK/clamav-milter
	mkdir -p "$d"
	chown clamav: "$d"
	cat >"$d/clamav-milter.conf" <<EOF
# Written by bench/run.sh.
MilterSocket $([[ $MILTER_SOCKETS == unix ]] && echo "${MILTER_CLAMAV#unix:}" || echo "inet:$PORT_CLAMAV_MILTER@127.0.0.1")
MilterSocketMode 666
ClamdSocket tcp:127.0.0.1:$PORT_CLAMD
Foreground yes
User clamav
OnClean Accept
OnInfected Reject
OnFail Defer
AddHeader No
MaxFileSize 50M
ReadTimeout 120
LogFile $d/clamav-milter.log
EOF
	clamav-milter -c "$d/clamav-milter.conf" >"$d/stdout.log" 2>&1 &
	CLAMAV_MILTER_PID=$!
	PIDS+=("$CLAMAV_MILTER_PID")
	wait_milter "$MILTER_CLAMAV" "$CLAMAV_MILTER_PID" clamav-milter "$d/stdout.log"
	note "clamav-milter (pid $CLAMAV_MILTER_PID) on $MILTER_CLAMAV"
}

need_scanners && start_scanners
need_milter opendkim && start_opendkim
need_milter clamav && start_clamav_milter

# --- Easymail ---------------------------------------------------------------------------------------------------
# start_easymail NAME: easymail (no signing), easymail-sign, easymail-scan (scanning and signing) or
# easymail-tls (no signing; the bench CA trusted, vfy.test under tls_policy verify, in its own mount
# namespace with the hosts file that sends mta-sts.sts.test to the TLS sink) or easymail-tls1 (the same, one
# message per connection to mx.tls.test).
start_easymail() {
	local name=$1 token cid data=$WORK/$1 port=${PORT[$1]} port_api=${API[$1]} sign=true scan_conf= tls_conf=
	local shaping_conf=
	local -a wrap=()
	[[ $name == easymail || $name == easymail-tls* ]] && sign=false
	[[ $name == easymail-scan ]] &&
		scan_conf="scan: { clamd: \"tcp://127.0.0.1:$PORT_CLAMD\", rspamd: \"http://127.0.0.1:$PORT_RSPAMD\" }"
	[[ $name == easymail-tls1 ]] &&
		shaping_conf="shaping: { providers: [ { name: bench-tls, mx: [mx.tls.test], messages_per_connection: 1 } ] }"
	if [[ $name == easymail-tls* ]]; then
		tls_conf=", tls_policy: may, tls_ca_file: \"$TLS_DIR/ca.pem\", tls_policies: { vfy.test: verify }"
		# unshare execs sh, which execs Easymail: the pid stays the one measured.
		wrap=(unshare -m -- sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$TLS_DIR/hosts")
	fi
	mkdir -p "$data"
	cat >"$OUT/$name.yaml" <<EOF
# Written by bench/run.sh.
hostname: relay.bench.test
data_dir: $data
smtp: { listen: ["127.0.0.1:$port"] }
api: { listen: "127.0.0.1:$port_api" }
$scan_conf
dns: { servers: ["127.0.0.1:$PORT_DNS"] }
delivery: { port: $PORT_SINK$tls_conf }
$shaping_conf
pools: [ { name: default, ips: [ { address: 127.0.0.1, helo: relay.bench.test } ] } ]
# The benchmark is a sudden spike from a brand new customer: compromise detection would hold it.
compromise: { enabled: false }
# easymail: like a plain Postfix, no signing; the others sign with the RSA-2048 key made for bench.test.
dkim: { sign: $sign, rsa_bits: 2048 }
EOF
	token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	EASYMAIL_ADMIN_TOKEN=$token "${wrap[@]}" "$OUT/easymail" serve --config "$OUT/$name.yaml" >"$WORK/$name.log" 2>&1 &
	PID[$name]=$!
	TOKEN[$name]=$token
	LOG[$name]=$WORK/$name.log
	PIDS+=($!)
	wait_port "$port_api" "${PID[$name]}" "$name" "${LOG[$name]}"
	wait_port "$port" "${PID[$name]}" "$name" "${LOG[$name]}"

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
	note "$name (pid ${PID[$name]}) on 127.0.0.1:$port, customer $cid, signing $sign${scan_conf:+, scanning}"
}

# --- Postfix ----------------------------------------------------------------------------------------------------
# start_postfix NAME: a throwaway Postfix relaying everything to the sink; postfix-dkim with OpenDKIM as its
# milter, postfix-scan with clamav-milter, rspamd's milter and OpenDKIM (signing last, after the scans).
start_postfix() {
	local name=$1 d=$WORK/$1 milters=
	case $name in
	postfix-dkim) milters=$MILTER_OPENDKIM ;;
	postfix-scan) milters="$MILTER_CLAMAV, $MILTER_RSPAMD, $MILTER_OPENDKIM" ;;
	esac
	mkdir -p "$d/conf" "$d/queue" "$d/data"
	chmod 755 "$d" "$d/conf" "$d/queue" "$d/data"
	chown postfix: "$d/data"
	runuser -u postfix -- test -x "$d/data" ||
		die "the postfix user cannot reach $d (a parent directory is closed); set BENCH_DIR elsewhere"
	# A customer's Postfix as shipped, relaying everything to the sink: only paths, names, routing and the
	# milters differ from the defaults; every service is unchrooted because the new queue directory has no
	# chroot files. verify.test goes to the checking sink on 127.0.0.2.
	cat >"$d/conf/main.cf" <<EOF
# Written by bench/run.sh.
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
maillog_file = $d/maillog
maillog_file_prefixes = $d
syslog_name = $name
myhostname = relay-$name.bench.test
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
transport_maps = inline:{ verify.test=smtp:[127.0.0.2]:$PORT_SINK }
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtp_tls_security_level = may
biff = no
append_dot_mydomain = no
smtpd_milters = $milters
milter_default_action = tempfail
milter_protocol = 6
EOF
	{
		echo "127.0.0.1:${PORT[$name]} inet n - n - - smtpd"
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
	LOG[$name]=$d/maillog
	# Postfix prints early errors only to a terminal; script(1) gives it one.
	if ! script -qec "/usr/sbin/postfix -c '$d/conf' check" /dev/null >"$WORK/$name-check.out" 2>&1; then
		cat "$WORK/$name-check.out" "$d/maillog" >&2 2>/dev/null || true
		die "postfix check failed for $d/conf"
	fi
	PF_CONFS+=("$d/conf")
	if ! /usr/sbin/postfix -c "$d/conf" start >"$WORK/$name-start.out" 2>&1; then
		cat "$WORK/$name-start.out" "$d/maillog" >&2 2>/dev/null || true
		die "postfix start failed for $name"
	fi
	for i in $(seq 100); do
		[[ -s $d/queue/pid/master.pid ]] && break
		sleep 0.1
	done
	PID[$name]=$(sed 1q "$d/queue/pid/master.pid" | tr -d ' ')
	wait_port "${PORT[$name]}" "${PID[$name]}" "$name" "$d/maillog"
	note "$name: Postfix $(postconf -h mail_version) (master pid ${PID[$name]}) on 127.0.0.1:${PORT[$name]}${milters:+, milters $milters}"
}

for r in "${INSTANCES[@]}"; do
	case $r in
	easymail*) start_easymail "$r" ;;
	*) start_postfix "$r" ;;
	esac
done
# The tls modes' relays are names of their Easymail.
for r in "${RELAYS[@]}"; do
	i=$(instance_of "$r")
	[[ $i == "$r" ]] && continue
	PORT[$r]=${PORT[$i]} API[$r]=${API[$i]} PID[$r]=${PID[$i]} LOG[$r]=${LOG[$i]} TOKEN[$r]=${TOKEN[$i]}
done

# watch_args RELAY: the process trees bench/load measures for RELAY.
watch_args() {
	echo "-watch relay=${PID[$1]}"
	case $1 in
	postfix-dkim) echo "-watch milters=$OPENDKIM_PID" ;;
	postfix-scan) echo "-watch milters=$OPENDKIM_PID,$CLAMAV_MILTER_PID" ;;
	esac
	[[ $1 == *-scan ]] && echo "-watch scanners=$CLAMD_PID,$RSPAMD_PID"
	return 0
}
relay_mode() {
	case $1 in easymail | postfix) echo plain ;; *-sign | *-dkim) echo sign ;; easymail-tls-*) echo tls ;; easymail-tls1-*) echo tls1 ;; *) echo scan ;; esac
}
# The side of the ratios: in the tls modes the baseline (may) is the "anchor" of the policies.
relay_side() {
	case $1 in easymail-tls*-may | postfix*) echo anchor ;; *) echo easymail ;; esac
}

# load_run RELAY SIZE COUNT ROUND [TOOL]: one measured run; prints its JSON line.
load_run() {
	local relay=$1 out=$WORK/run.json
	# shellcheck disable=SC2046 # watch_args gives separate words
	if ! "$LOAD" run -addr "127.0.0.1:${PORT[$relay]}" -sessions "$SESSIONS" -messages "$3" -size "$2" \
		-from "$SENDER" -to "$(rcpt_of "$relay")" -sink-out "$(sink_of "$relay")" -timeout "${TIMEOUT}s" -tool "${5:-load}" \
		$(watch_args "$relay") -mode "$(relay_mode "$relay")" -relay "$relay" -side "$(relay_side "$relay")" \
		-round "$4" >"$out" 2>"$WORK/run.err"; then
		cat "$WORK/run.err" >&2
		echo "--- last lines of ${LOG[$relay]}:" >&2
		tail -n 30 "${LOG[$relay]}" >&2 || true
		die "the run of $3 messages of $2 bytes through $relay failed"
	fi
	cat "$out"
}

# --- checks: each relay signs and scans as it should, before anything is measured -----------------------------
# probe RELAY KIND: the reply of RELAY to the end of DATA of a clean, gtube or eicar message to verify.test.
probe() {
	"$LOAD" probe -addr "127.0.0.1:${PORT[$1]}" -kind "$2" -from "$SENDER" -to "$1@verify.test" -id "probe-$2-$1" ||
		die "the $2 probe through $1 failed"
}
for r in "${RELAYS[@]}"; do
	[[ $(instance_of "$r") == "$r" || $r == easymail-tls*-may ]] || continue # one probe per instance
	reply=$(probe "$r" clean)
	[[ $reply == 250 ]] || die "$r refused a clean message: $reply"
	file=
	for i in $(seq 300); do
		file=$(grep -l -F "Message-ID: <probe-clean-$r@bench.test>" "$VERIFY"/* 2>/dev/null | head -n 1) || true
		[[ -n $file ]] && break
		sleep 0.1
	done
	[[ -n $file ]] || die "the clean probe through $r did not reach the checking sink within 30 s; see ${LOG[$r]}"
	sig=$(grep -c '^DKIM-Signature:' "$file" || true)
	case $r in
	easymail | postfix | easymail-tls*) [[ $sig == 0 ]] || die "$r signed a message: it must not in the plain and tls modes" ;;
	*)
		[[ $sig == 1 ]] || die "$r added $sig DKIM signatures, not 1 (see $file)"
		sed -n '/^DKIM-Signature:/,/^[^ \t]/p' "$file" | tr -d ' \t\r\n' | grep -q 'a=rsa-sha256;' ||
			die "$r: the signature is not rsa-sha256 (see $file)"
		sed -n '/^DKIM-Signature:/,/^[^ \t]/p' "$file" | tr -d ' \t\r\n' | grep -q 'd=bench.test;' ||
			die "$r: the signature is not d=bench.test (see $file)"
		;;
	esac
	if [[ $r == *-scan ]]; then
		for kind in gtube eicar; do
			reply=$(probe "$r" "$kind")
			[[ $reply == 5* ]] || die "$r accepted the $kind probe: $reply"
			note "$r refuses $kind: $reply"
		done
	fi
	note "$r: checked ($([[ $sig == 1 ]] && echo signed || echo unsigned)$([[ $r == *-scan ]] && echo ', scanned'))"
done

# --- warm-up, then the rounds -----------------------------------------------------------------------------------
for r in "${RELAYS[@]}"; do
	note "warm-up: 100 messages through $r"
	load_run "$r" 1024 100 0 >/dev/null
done

# The tls modes' checks, after their warm-up: every delivery of each relay went over TLS and was checked as
# its policy wants (the metric easymail_delivery_tls_total by result and policy source), none was deferred,
# and each Easymail fetched the policy of sts.test once: the rounds use the cached policy.
for inst in $(tls_instances); do
	metrics=$(curl -sS -H "Authorization: Bearer ${TOKEN[$inst]}" "http://127.0.0.1:${API[$inst]}/metrics") ||
		die "GET /metrics of $inst failed"
	tls_count() { echo "$metrics" | sed -n "s/^easymail_delivery_tls_total{policy=\"$1\",result=\"$2\"} //p"; }
	for want in "none unverified" "mta-sts verified" "destination verified"; do
		read -r pol res <<<"$want"
		n=$(tls_count "$pol" "$res")
		[[ -n $n && ${n%.*} -gt 0 ]] ||
			die "$inst: no delivery counted with TLS result $res under policy $pol (see ${LOG[$inst]})"
	done
	# (policy none, result none: the clean probe to the plain checking sink; the TLS sink refuses mail
	# without STARTTLS.)
	bad=$(echo "$metrics" | grep '^easymail_delivery_tls_total{' |
		grep -v -E 'policy="none",result="(none|unverified)"|policy="mta-sts",result="verified"|policy="destination",result="verified"' || true)
	[[ -z $bad ]] || die "$inst: deliveries with another TLS outcome: $bad"
	note "$inst: checked (may.test: TLS unverified, sts.test: verified under MTA-STS, vfy.test: verified)"
done
if need_tls; then
	fetches=$(grep -c 'mta-sts policy fetched' "$TLS_DIR/tlssink.log" || true)
	n=$(tls_instances | wc -l)
	[[ $fetches == "$n" ]] ||
		die "the MTA-STS policy of sts.test was fetched $fetches times by $n Easymails, not once each (see $TLS_DIR/tlssink.log)"
	note "the MTA-STS policy of sts.test was fetched once by each tls Easymail, and then taken from its cache"
fi

RESULTS=$OUT/results.jsonl
: >"$RESULTS"
t_start=$SECONDS
for round in $(seq "$ROUNDS"); do
	for m in $MODES; do
		read -r -a pair <<<"$(mode_relays "$m")"
		# The order alternates, so that a drift of the machine does not always favour the same side; the
		# tls modes' three relays rotate.
		if ((round % 2 == 0 && ${#pair[@]} == 2)); then pair=("${pair[1]}" "${pair[0]}"); fi
		if ((${#pair[@]} == 3)); then
			k=$(((round - 1) % 3))
			pair=("${pair[@]:k}" "${pair[@]:0:k}")
		fi
		for sc in $(mode_sizes "$m"); do
			size=${sc%:*} count=${sc#*:}
			for r in "${pair[@]}"; do
				res=$(load_run "$r" "$size" "$count" "$round")
				echo "$res" >>"$RESULTS"
				note "round $round/$ROUNDS $m $size B $r: $(echo "$res" | grep -o '"accepted_per_s":[0-9.]*,"delivered_per_s":[0-9.]*,"latency_p50_ms":[0-9.]*,"latency_p99_ms":[0-9.]*' | tr -d '"')"
				if [[ $SMTP_SOURCE == 1 ]]; then
					load_run "$r" "$size" "$count" "$round" smtp-source >>"$RESULTS"
				fi
			done
		done
	done
done

# --- the table --------------------------------------------------------------------------------------------------
{
	echo
	echo "make bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -n): $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)), $(uname -r), spool on $fstype"
	echo "Postfix $(postconf -h mail_version)$(can_sign && echo ", OpenDKIM $(opendkim -V | sed -n '1s/.* v//p')")$(has_mode scan && echo ", $(clamav-milter --version), clamd $(clamd --version | cut -d/ -f1 | sed 's/ClamAV //'), rspamd $(rspamd --version | sed -n 's/.*version //p')"), $(go version | cut -d' ' -f3)"
	echo "$SESSIONS sessions, one message per connection; Postfix's milters on $MILTER_SOCKETS sockets; the load (bench/load) shares the machine with the relays; rounds: $((SECONDS - t_start)) s"
	echo
	"$LOAD" report "$RESULTS"
	for r in "${RELAYS[@]}"; do
		[[ $r == postfix* ]] || continue
		n=$(grep -c 'status=deferred' "${LOG[$r]}" || true)
		[[ $n == 0 ]] || echo "$r: $n deferrals during the bench"
	done
} | tee "$OUT/results.txt"
"$LOAD" report -markdown "$RESULTS" >"$OUT/results.md"
note "results in $OUT/results.txt, $OUT/results.md (Markdown) and $RESULTS"
