-- The web portal (docs/portal.md). A customer's users may log in only while its portal_enabled is set, which
-- the operator turns on at the customer's request (off for a new customer).
ALTER TABLE customers ADD COLUMN portal_enabled INTEGER NOT NULL DEFAULT 0;

-- Portal users: role operator, expert or customer (then bound to customer_id). password_hash is bcrypt;
-- totp_secret the base32 secret of an enrolled TOTP second factor ('' for none), totp_step the last time step
-- accepted (a code is never accepted twice).
CREATE TABLE portal_users (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE,
	role          TEXT NOT NULL,
	customer_id   TEXT REFERENCES customers(id) ON DELETE CASCADE,
	password_hash TEXT NOT NULL,
	totp_secret   TEXT NOT NULL DEFAULT '',
	totp_step     BIGINT NOT NULL DEFAULT 0,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);
CREATE INDEX portal_users_customer ON portal_users(customer_id);

-- Portal sessions: id is the SHA-256 (hex) of the cookie's secret, which is never stored; csrf the session's
-- CSRF token. A session ends at expires_at, or after the idle timeout from last_seen.
CREATE TABLE portal_sessions (
	id         TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES portal_users(id) ON DELETE CASCADE,
	csrf       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL
);
CREATE INDEX portal_sessions_user ON portal_sessions(user_id);
