-- Easymail schema, version 1. Portable SQL: it runs on SQLite and PostgreSQL alike.
-- Times are integers: Unix milliseconds (UTC).

CREATE TABLE customers (
	id              TEXT PRIMARY KEY,
	name            TEXT NOT NULL,
	contact_email   TEXT NOT NULL,
	pool            TEXT NOT NULL,
	status          TEXT NOT NULL,
	topology_hiding INTEGER NOT NULL DEFAULT 1,
	anti_spoofing   INTEGER NOT NULL DEFAULT 1,
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL
);

CREATE TABLE customer_domains (
	domain      TEXT PRIMARY KEY,
	customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
	created_at  BIGINT NOT NULL
);
CREATE INDEX customer_domains_customer ON customer_domains(customer_id);

CREATE TABLE relay_hosts (
	id          TEXT PRIMARY KEY,
	customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
	host        TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	UNIQUE (customer_id, host)
);

CREATE TABLE source_ips (
	id          TEXT PRIMARY KEY,
	customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
	cidr        TEXT NOT NULL UNIQUE,
	created_at  BIGINT NOT NULL
);
CREATE INDEX source_ips_customer ON source_ips(customer_id);

CREATE TABLE api_tokens (
	id          TEXT PRIMARY KEY,
	hash        TEXT NOT NULL UNIQUE,
	role        TEXT NOT NULL,
	customer_id TEXT,
	name        TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	revoked_at  BIGINT
);

-- One row per message received (accepted or refused after MAIL FROM). Queue state and message log in one.
CREATE TABLE messages (
	id             TEXT PRIMARY KEY,
	node_id        TEXT NOT NULL,
	customer_id    TEXT NOT NULL,
	sender         TEXT NOT NULL,
	header_from    TEXT NOT NULL DEFAULT '',
	message_id     TEXT NOT NULL DEFAULT '',
	subject        TEXT NOT NULL DEFAULT '',
	size           BIGINT NOT NULL DEFAULT 0,
	client_ip      TEXT NOT NULL DEFAULT '',
	helo           TEXT NOT NULL DEFAULT '',
	tls            TEXT NOT NULL DEFAULT '',
	status         TEXT NOT NULL,
	reason         TEXT NOT NULL DEFAULT '',
	held           INTEGER NOT NULL DEFAULT 0,
	is_dsn         INTEGER NOT NULL DEFAULT 0,
	smtputf8       INTEGER NOT NULL DEFAULT 0,
	body_type      TEXT NOT NULL DEFAULT '',
	dsn_ret        TEXT NOT NULL DEFAULT '',
	dsn_envid      TEXT NOT NULL DEFAULT '',
	received_at    BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL,
	delay_notified INTEGER NOT NULL DEFAULT 0,
	done_at        BIGINT
);
CREATE INDEX messages_received ON messages(received_at);
CREATE INDEX messages_customer ON messages(customer_id, received_at);
CREATE INDEX messages_sender ON messages(sender);
CREATE INDEX messages_message_id ON messages(message_id);
CREATE INDEX messages_status ON messages(status);

CREATE TABLE recipients (
	message_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	idx             INTEGER NOT NULL,
	address         TEXT NOT NULL,
	domain          TEXT NOT NULL,
	status          TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	last_code       INTEGER NOT NULL DEFAULT 0,
	last_enhanced   TEXT NOT NULL DEFAULT '',
	last_reply      TEXT NOT NULL DEFAULT '',
	remote_mx       TEXT NOT NULL DEFAULT '',
	outbound_ip     TEXT NOT NULL DEFAULT '',
	notify          TEXT NOT NULL DEFAULT '',
	orcpt           TEXT NOT NULL DEFAULT '',
	updated_at      BIGINT NOT NULL,
	PRIMARY KEY (message_id, idx)
);
CREATE INDEX recipients_due ON recipients(status, next_attempt_at);
CREATE INDEX recipients_address ON recipients(address);
CREATE INDEX recipients_domain ON recipients(domain);

-- One row per delivery attempt of one recipient.
CREATE TABLE attempts (
	message_id   TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	rcpt_idx     INTEGER NOT NULL,
	attempt      INTEGER NOT NULL,
	started_at   BIGINT NOT NULL,
	duration_ms  BIGINT NOT NULL DEFAULT 0,
	outcome      TEXT NOT NULL,
	remote_mx    TEXT NOT NULL DEFAULT '',
	remote_ip    TEXT NOT NULL DEFAULT '',
	outbound_ip  TEXT NOT NULL DEFAULT '',
	tls          TEXT NOT NULL DEFAULT '',
	code         INTEGER NOT NULL DEFAULT 0,
	enhanced     TEXT NOT NULL DEFAULT '',
	reply        TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (message_id, rcpt_idx, attempt)
);
