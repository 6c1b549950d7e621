#!/bin/sh
# postrm of the easymail package: purge removes the data directory (the queue, database, keys) and the user.
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
if [ "$1" = "purge" ]; then
    rm -rf /var/lib/easymail
    if getent passwd easymail >/dev/null; then
        userdel easymail || true
    fi
fi
exit 0
