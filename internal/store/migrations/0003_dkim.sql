-- Mail authentication: DKIM signing keys per customer domain, and the authentication facts of each accepted
-- message (DKIM signing domain, DMARC identifier alignment, bulk-mail markers) for the trace and the
-- bulk-sender readiness report.

-- One row per DKIM key. A domain has at most one active key per algorithm (the keys it signs with), at most
-- one pending key per algorithm (the next one, waiting for its DNS record), and retiring keys (replaced, still
-- published until retire_at) and retired ones (private key erased; their record may be deleted).
-- private_key is the PKCS#8 key in PEM; public_key is the base64 "p=" value of the DNS record (RFC 6376
-- §3.6.1: SubjectPublicKeyInfo for RSA, the raw 32-byte key for Ed25519, RFC 8463 §4.2).
CREATE TABLE dkim_keys (
	id           TEXT PRIMARY KEY,
	domain       TEXT NOT NULL REFERENCES customer_domains(domain) ON DELETE CASCADE,
	selector     TEXT NOT NULL,
	algorithm    TEXT NOT NULL,
	state        TEXT NOT NULL,
	private_key  TEXT NOT NULL,
	public_key   TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	activated_at BIGINT,
	retire_at    BIGINT,
	retired_at   BIGINT,
	verified_at  BIGINT,
	UNIQUE (domain, selector)
);
CREATE INDEX dkim_keys_state ON dkim_keys(state);
-- At most one active and one pending key per domain and algorithm, even with several nodes rotating at once.
CREATE UNIQUE INDEX dkim_keys_one_active ON dkim_keys(domain, algorithm) WHERE state = 'active';
CREATE UNIQUE INDEX dkim_keys_one_pending ON dkim_keys(domain, algorithm) WHERE state = 'pending';

-- Authentication facts of an accepted message. from_domain is the header From's domain (A-label); the
-- alignment flags are NULL until the message was analysed (refused messages never are).
ALTER TABLE messages ADD COLUMN from_domain TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN dkim_domain TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN dkim_selectors TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN dkim_aligned INTEGER;
ALTER TABLE messages ADD COLUMN spf_aligned INTEGER;
ALTER TABLE messages ADD COLUMN dmarc_aligned INTEGER;
ALTER TABLE messages ADD COLUMN bulk INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN list_unsubscribe INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN list_unsubscribe_post INTEGER NOT NULL DEFAULT 0;
