-- Webhooks: a customer's endpoints for delivery events (docs/events.md). events is the subscribed event
-- names between commas (",delivered,bounced,"), so that one LIKE finds the subscribers of an event.
CREATE TABLE webhooks (
	id          TEXT PRIMARY KEY,
	customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
	url         TEXT NOT NULL,
	events      TEXT NOT NULL,
	secret      TEXT NOT NULL,
	created_at  BIGINT NOT NULL
);
CREATE INDEX webhooks_customer ON webhooks(customer_id);

-- The outbox of webhook deliveries: one row per event and subscribed webhook, written in the transaction
-- that records the event. status is 'pending' (due at next_attempt_at), 'delivered' or 'dead' (given up).
CREATE TABLE event_outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	webhook_id      TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
	customer_id     TEXT NOT NULL,
	event_id        TEXT NOT NULL,
	event           TEXT NOT NULL,
	payload         TEXT NOT NULL,
	status          TEXT NOT NULL DEFAULT 'pending',
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      BIGINT NOT NULL,
	done_at         BIGINT
);
CREATE INDEX event_outbox_due ON event_outbox(status, next_attempt_at);
CREATE INDEX event_outbox_customer ON event_outbox(customer_id, status);

-- Complaints: feedback reports (ARF) and one-click unsubscribe requests matched to a relayed message.
CREATE TABLE complaints (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id   TEXT NOT NULL,
	queue_id      TEXT NOT NULL DEFAULT '',
	recipient     TEXT NOT NULL,
	outbound_ip   TEXT NOT NULL DEFAULT '',
	kind          TEXT NOT NULL,
	feedback_type TEXT NOT NULL DEFAULT '',
	reporter      TEXT NOT NULL DEFAULT '',
	received_at   BIGINT NOT NULL
);
CREATE INDEX complaints_customer ON complaints(customer_id, received_at);
CREATE INDEX complaints_ip ON complaints(outbound_ip, received_at);

