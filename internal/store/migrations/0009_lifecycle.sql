-- Customer lifecycle: contacts, termination schedule, the notices sent about it, and the audit log.
--
-- technical_email and admin_email are the customer's technical and administrative contacts ('' means
-- contact_email). Status runs pending -> active -> terminating -> deactivated -> removed. deactivate_at is the
-- scheduled deactivation (NULL: none); prior_status the status restored when the termination is cancelled;
-- activated_at when the customer first became active; deactivated_at and removed_at when those happened.
ALTER TABLE customers ADD COLUMN technical_email TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN admin_email TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN deactivate_at BIGINT;
ALTER TABLE customers ADD COLUMN prior_status TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN activated_at BIGINT;
ALTER TABLE customers ADD COLUMN deactivated_at BIGINT;
ALTER TABLE customers ADD COLUMN removed_at BIGINT;
CREATE INDEX customers_status ON customers(status);

-- One row per termination notice queued: written in the same transaction as the message is queued, so that a
-- notice is never sent twice, even across restarts and nodes. kind is 'before-<hours>h' or 'deactivated';
-- queue_id is '' for a notice skipped because a later one was already due.
CREATE TABLE lifecycle_notices (
	customer_id   TEXT NOT NULL,
	deactivate_at BIGINT NOT NULL,
	kind          TEXT NOT NULL,
	recipient     TEXT NOT NULL,
	queue_id      TEXT NOT NULL DEFAULT '',
	sent_at       BIGINT NOT NULL,
	PRIMARY KEY (customer_id, deactivate_at, kind, recipient)
);

-- The audit log: every change made through the API or by the lifecycle scheduler. actor_token is the API
-- token id ('' for the system), actor_role its role ('system' for the scheduler); action is the route
-- ("POST /api/v1/customers/{id}/domains"); target the path changed; customer_id the customer concerned, if
-- any; before and after JSON snapshots ('' when not applicable); status the HTTP status answered.
CREATE TABLE audit_log (
	id          TEXT PRIMARY KEY,
	at          BIGINT NOT NULL,
	actor_token TEXT NOT NULL,
	actor_role  TEXT NOT NULL,
	actor_customer TEXT NOT NULL DEFAULT '',
	action      TEXT NOT NULL,
	target      TEXT NOT NULL,
	customer_id TEXT NOT NULL DEFAULT '',
	status      INTEGER NOT NULL DEFAULT 0,
	before_json TEXT NOT NULL DEFAULT '',
	after_json  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at, id);
CREATE INDEX audit_log_customer ON audit_log(customer_id, at);
