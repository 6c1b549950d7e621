-- Content scanning: the scan report of each message, per-customer scanning policies, and the quarantine.

-- The scan report of a message (JSON: verdicts of each scanner, content rule hits, decision); '' when the
-- message was not scanned. messages.verdict (version 7) holds its summary.
ALTER TABLE messages ADD COLUMN scan TEXT NOT NULL DEFAULT '';

-- A customer's scanning policy (JSON, the API's ScanPolicy); no row: the configured defaults.
CREATE TABLE scan_policies (
	customer_id TEXT PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
	policy      TEXT NOT NULL,
	updated_at  BIGINT NOT NULL
);

-- Quarantined messages. The content is in the spool of the node that received it (messages.node_id), like
-- a queued message's, with its recipients in status 'quarantined'; this row keeps what is shown without
-- the content: the header section and a safe preview. It goes when the message is released or deleted.
CREATE TABLE quarantine (
	id          TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
	customer_id TEXT NOT NULL,
	reason      TEXT NOT NULL,
	verdict     TEXT NOT NULL,
	header      TEXT NOT NULL,
	preview     TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL
);
CREATE INDEX quarantine_customer ON quarantine(customer_id, created_at);
CREATE INDEX quarantine_expires ON quarantine(expires_at);
