-- Outbound IP pools: each customer's fallback pool, and the supervised state of every outbound IP.
-- The configuration's pools are the bootstrap; these tables keep what the API and supervision changed.

ALTER TABLE customers ADD COLUMN fallback_pool TEXT NOT NULL DEFAULT '';

-- One row per outbound IP. origin is 'config' (from the configuration file) or 'api' (added through the API);
-- removed marks a configured IP removed through the API, so that a restart does not bring it back.
-- operator_state is '' or the state an operator set ('paused', 'draining'); state and reason are the
-- effective state as last computed. warmup is the daily caps, comma-separated ('' = no warm-up);
-- warm_day/warm_sent count the messages of the current warm-up day.
CREATE TABLE pool_ips (
	address         TEXT PRIMARY KEY,
	pool            TEXT NOT NULL,
	helo            TEXT NOT NULL,
	weight          INTEGER NOT NULL DEFAULT 1,
	warmup          TEXT NOT NULL DEFAULT '',
	origin          TEXT NOT NULL,
	removed         INTEGER NOT NULL DEFAULT 0,
	added_at        BIGINT NOT NULL,
	operator_state  TEXT NOT NULL DEFAULT '',
	operator_reason TEXT NOT NULL DEFAULT '',
	state           TEXT NOT NULL DEFAULT 'active',
	reason          TEXT NOT NULL DEFAULT '',
	state_since     BIGINT NOT NULL,
	hold_until      BIGINT NOT NULL DEFAULT 0,
	last_check      BIGINT NOT NULL DEFAULT 0,
	fcrdns          TEXT NOT NULL DEFAULT '',
	fcrdns_detail   TEXT NOT NULL DEFAULT '',
	warm_day        INTEGER NOT NULL DEFAULT 0,
	warm_sent       INTEGER NOT NULL DEFAULT 0,
	updated_at      BIGINT NOT NULL
);

-- Current DNSBL listings of the outbound IPs.
CREATE TABLE ip_listings (
	address TEXT NOT NULL,
	zone    TEXT NOT NULL,
	code    TEXT NOT NULL,
	reason  TEXT NOT NULL DEFAULT '',
	since   BIGINT NOT NULL,
	PRIMARY KEY (address, zone)
);

-- Destination domains for which an outbound IP is paused after receivers reported it blocked.
CREATE TABLE ip_destination_pauses (
	address TEXT NOT NULL,
	domain  TEXT NOT NULL,
	until   BIGINT NOT NULL,
	reason  TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (address, domain)
);

-- Hourly counters of each outbound IP's delivery outcomes (recipients) and block replies.
CREATE TABLE ip_counters (
	address  TEXT NOT NULL,
	hour     BIGINT NOT NULL,
	sent     BIGINT NOT NULL DEFAULT 0,
	deferred BIGINT NOT NULL DEFAULT 0,
	bounced  BIGINT NOT NULL DEFAULT 0,
	blocked  BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (address, hour)
);
