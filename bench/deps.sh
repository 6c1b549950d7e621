#!/usr/bin/env bash
# bench/deps.sh installs what make bench drives, on Debian 12 as root, without letting any of it run as a
# system service: Postfix (the anchor, smtp-sink, smtp-source), OpenDKIM (the signing anchor's milter),
# clamd, clamav-milter and rspamd (the scanning anchor's milters; rspamd's proxy worker in milter mode works
# in Debian 12's rspamd 3.4). The bench starts its own instances on loopback.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
[[ $(id -u) == 0 ]] || { echo "bench/deps.sh: run as root" >&2; exit 1; }

# No service may start during the installation (invoke-rc.d asks policy-rc.d; 101: "action not allowed").
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=0
if [[ ! -e $POLICY ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"
	OWN_POLICY=1
fi
restore_policy() { if [[ $OWN_POLICY == 1 ]]; then rm -f "$POLICY"; fi; }
trap restore_policy EXIT

debconf-set-selections <<'SEL'
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string bench.easymail.test
SEL
apt-get update
apt-get install -y --no-install-recommends postfix opendkim opendkim-tools clamav-daemon clamav-milter rspamd curl

# Stop whatever started anyway (a machine whose policy-rc.d allows it).
postfix stop >/dev/null 2>&1 || true
for svc in opendkim clamav-milter clamav-daemon clamav-freshclam rspamd; do
	if [[ -x /etc/init.d/$svc ]]; then
		/etc/init.d/$svc stop >/dev/null 2>&1 || true
	fi
done
for cmd in /usr/sbin/postfix /usr/sbin/smtp-sink /usr/sbin/smtp-source /usr/sbin/opendkim /usr/sbin/opendkim-genkey \
	/usr/sbin/clamd /usr/sbin/clamav-milter /usr/bin/rspamd; do
	[[ -x $cmd ]] || { echo "bench/deps.sh: $cmd is missing after the install" >&2; exit 1; }
done
echo "bench/deps.sh: done"
