#!/bin/sh
# prerm of the easymail package: the service is stopped before removal (not on upgrade: postinst restarts it).
set -e
if [ -d /run/systemd/system ] && [ "$1" = "remove" ]; then
    systemctl stop easymail.service || true
    systemctl disable easymail.service >/dev/null || true
fi
exit 0
