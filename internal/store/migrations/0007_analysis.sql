-- Traffic analysis and personal data: scan verdicts and bounce classes in the message log, case-insensitive
-- address lookups (searches, suppressions, data-subject requests), and the per-customer suppression list.

-- The scan verdict of a message (clean, spam, virus, ...); '' until scanning records one.
ALTER TABLE messages ADD COLUMN verdict TEXT NOT NULL DEFAULT '';
-- The bounce class (package bounce) of a failed attempt, and of a recipient's last failure; '' for successes.
ALTER TABLE recipients ADD COLUMN bounce_class TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN bounce_class TEXT NOT NULL DEFAULT '';

-- Addresses are looked up without regard to the case of their ASCII letters: the indexes are on lower(),
-- and the queries compare lower(column) = lower(?). They replace the exact-match indexes of version 1.
DROP INDEX messages_sender;
CREATE INDEX messages_sender_lower ON messages(lower(sender));
DROP INDEX recipients_address;
CREATE INDEX recipients_address_lower ON recipients(lower(address));
-- Searches list newest first, by reception time then id: one index gives that order without a sort (SQLite
-- breaks the ties of an index on received_at alone by rowid, not id).
DROP INDEX messages_received;
CREATE INDEX messages_received ON messages(received_at, id);
-- Searches by bounce class: only failures have one, so a partial index stays small and costs nothing on
-- deliveries.
CREATE INDEX recipients_bounce_class ON recipients(bounce_class) WHERE bounce_class <> '';
-- Searches by remote MX: a long tail of rare hosts, which a scan in time order would not find quickly.
CREATE INDEX recipients_remote_mx ON recipients(remote_mx);

-- The suppression list: recipients a customer's mail is refused for at RCPT (550 5.1.1), after a hard bounce
-- of a bad mailbox (source 'bounce') or because an operator added them (source 'operator'). address is
-- lower(address). An entry is active until expires_at, or, when expires_at is NULL, until created_at plus the
-- configured suppression.ttl (so that a change of the TTL applies to the entries already there).
CREATE TABLE suppressions (
	customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
	address     TEXT NOT NULL,
	source      TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	queue_id    TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT,
	PRIMARY KEY (customer_id, address)
);
CREATE INDEX suppressions_address ON suppressions(address);
