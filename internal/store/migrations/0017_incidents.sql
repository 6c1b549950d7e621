-- Incidents and the SLA clock (docs/incidents.md).
--
-- customers.sla_type names the SLA type of the customer's contract ('' = incidents.default_sla).
ALTER TABLE customers ADD COLUMN sla_type TEXT NOT NULL DEFAULT '';

-- One row per incident. seq numbers incidents in order of opening (id is 'INC-' and seq); customer_id is ''
-- for an incident of every customer; priority 1 to 4 (P1 to P4); channel phone, email, portal, api or
-- monitor; status new, acknowledged, in_progress, resolved, confirmed or closed; cause the monitor's stable
-- key ('' for a reported incident); sla_type the SLA type in force at opening; response_target the
-- channel's response target (milliseconds of service-window time) and response_due_at its due time;
-- responded_at the first response; resolve_target and resolve_due_at the optional resolution target (NULL:
-- none); resolved_at, confirmed_at, closed_at when those happened; reporter who reported it (an e-mail
-- address, a token id, or 'monitor'). Times are Unix milliseconds.
CREATE TABLE incidents (
	id              TEXT PRIMARY KEY,
	seq             BIGINT NOT NULL UNIQUE,
	customer_id     TEXT NOT NULL DEFAULT '',
	priority        INTEGER NOT NULL,
	title           TEXT NOT NULL,
	description     TEXT NOT NULL DEFAULT '',
	channel         TEXT NOT NULL,
	status          TEXT NOT NULL,
	cause           TEXT NOT NULL DEFAULT '',
	sla_type        TEXT NOT NULL,
	reporter        TEXT NOT NULL DEFAULT '',
	opened_at       BIGINT NOT NULL,
	response_target BIGINT NOT NULL,
	response_due_at BIGINT NOT NULL,
	responded_at    BIGINT,
	resolve_target  BIGINT,
	resolve_due_at  BIGINT,
	resolved_at     BIGINT,
	confirmed_at    BIGINT,
	closed_at       BIGINT,
	updated_at      BIGINT NOT NULL
);
CREATE INDEX incidents_customer ON incidents(customer_id, opened_at);
CREATE INDEX incidents_opened ON incidents(opened_at);
-- One unresolved incident per monitor cause: a second one cannot be inserted.
CREATE UNIQUE INDEX incidents_open_cause ON incidents(cause)
	WHERE cause <> '' AND status IN ('new', 'acknowledged', 'in_progress');

-- The timeline: one row per event (opened, status, priority, comment, notice, update). visibility is
-- 'customer' (shown to the customer) or 'internal' (operators and experts only); actor who did it (a token
-- id, 'monitor', 'system' or an e-mail address); from_value and to_value the old and new status or priority.
CREATE TABLE incident_events (
	incident_id TEXT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
	idx         INTEGER NOT NULL,
	at          BIGINT NOT NULL,
	kind        TEXT NOT NULL,
	visibility  TEXT NOT NULL,
	actor       TEXT NOT NULL DEFAULT '',
	from_value  TEXT NOT NULL DEFAULT '',
	to_value    TEXT NOT NULL DEFAULT '',
	body        TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (incident_id, idx)
);

-- What an incident concerns: kind message (a queue id), ip, pool, destination (a domain), customer (a
-- customer id: the incident is shown to that customer too), scanner.
CREATE TABLE incident_links (
	incident_id TEXT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
	kind        TEXT NOT NULL,
	value       TEXT NOT NULL,
	PRIMARY KEY (incident_id, kind, value)
);
CREATE INDEX incident_links_value ON incident_links(kind, value);

-- The delivery failure monitor reads the attempts of the last minutes.
CREATE INDEX attempts_started ON attempts(started_at);
