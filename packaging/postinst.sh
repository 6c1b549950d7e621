#!/bin/sh
# postinst of the easymail package: the easymail system user, its data directory, the configuration's
# permissions, and the service enabled and started (restarted on upgrade).
set -e

if [ "$1" = "configure" ]; then
    if ! getent group easymail >/dev/null; then
        groupadd --system easymail
    fi
    if ! getent passwd easymail >/dev/null; then
        useradd --system --gid easymail --home-dir /var/lib/easymail --no-create-home \
            --shell /usr/sbin/nologin --comment "Easymail relay" easymail
    fi
    install -d -m 0700 -o easymail -g easymail /var/lib/easymail
    # The configuration may hold secrets (database URL): readable by the service only.
    chown root:easymail /etc/easymail/easymail.yaml
    chmod 0640 /etc/easymail/easymail.yaml

    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
        systemctl enable easymail.service >/dev/null || true
        if [ -n "$2" ]; then
            systemctl try-restart easymail.service || true
        else
            systemctl start easymail.service || true
        fi
    fi
fi
exit 0
