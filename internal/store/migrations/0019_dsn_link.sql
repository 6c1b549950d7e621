-- A DSN names the message it reports on, so that a trace links the original and its DSNs both ways.
ALTER TABLE messages ADD COLUMN dsn_for TEXT NOT NULL DEFAULT '';
CREATE INDEX messages_dsn_for ON messages (dsn_for) WHERE dsn_for != '';
