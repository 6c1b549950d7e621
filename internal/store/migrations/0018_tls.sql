-- TLS of outbound delivery (docs/delivery.md): what each attempt's connection was and which policy required it.
-- tls_version ("TLS1.3") and tls_cipher ("TLS_AES_128_GCM_SHA256") are '' on a plain-text connection;
-- tls_verify is the verification result: none (plain text), unverified (encrypted, certificate not checked),
-- verified (WebPKI, against the MX name), dane (against the TLSA records), or the TLS-RPT result type of a
-- failure (certificate-expired, certificate-host-mismatch, validation-failure, dane-required,
-- starttls-not-supported, ...); tls_policy is the policy's source: none, customer, destination, mta-sts, dane.
ALTER TABLE attempts ADD COLUMN tls_version TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN tls_cipher TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN tls_verify TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN tls_policy TEXT NOT NULL DEFAULT '';

-- A customer's own TLS policy for its outbound mail: '' (the configured default), may, encrypt or verify.
ALTER TABLE customers ADD COLUMN tls_policy TEXT NOT NULL DEFAULT '';

-- MTA-STS policies (RFC 8461) as fetched, one per policy domain, kept until expires_at (fetched_at + max_age).
CREATE TABLE mta_sts_policies (
	domain      TEXT PRIMARY KEY,
	policy_id   TEXT NOT NULL,
	mode        TEXT NOT NULL,
	max_age     BIGINT NOT NULL,
	mx          TEXT NOT NULL,
	body        TEXT NOT NULL,
	fetched_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL
);

-- TLS-RPT (RFC 8460) counts: sessions per UTC day and policy domain, by policy and result ('' for a success).
CREATE TABLE tlsrpt_counts (
	day            TEXT NOT NULL,
	policy_domain  TEXT NOT NULL,
	policy_type    TEXT NOT NULL,
	policy_string  TEXT NOT NULL,
	mx_host        TEXT NOT NULL,
	sending_ip     TEXT NOT NULL,
	receiving_ip   TEXT NOT NULL,
	result_type    TEXT NOT NULL,
	sessions       BIGINT NOT NULL,
	PRIMARY KEY (day, policy_domain, policy_type, policy_string, mx_host, sending_ip, receiving_ip, result_type)
);

-- The reports sent (or given up on): one per day and policy domain.
CREATE TABLE tlsrpt_reports (
	day            TEXT NOT NULL,
	policy_domain  TEXT NOT NULL,
	report_id      TEXT NOT NULL,
	rua            TEXT NOT NULL,
	outcome        TEXT NOT NULL,
	sent_at        BIGINT NOT NULL,
	PRIMARY KEY (day, policy_domain)
);
