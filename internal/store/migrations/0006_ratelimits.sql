-- Burst and abuse protection: per-customer rate limits and the compromise hold.
--
-- Rate limits (messages and recipients per minute and per hour, and the burst of the per-minute buckets):
-- NULL takes the configured default (limits: section), 0 is unlimited, a positive value is the limit.
-- held is set when compromise detection (or an operator) holds the customer's outbound mail: new messages
-- are accepted and kept with messages.held = 1 until an operator releases or purges them. released_at is the
-- last time an operator lifted a hold: detection then counts only the messages received after it, so that
-- the spike that caused the hold does not hold the customer again at once.
ALTER TABLE customers ADD COLUMN rl_messages_per_minute INTEGER;
ALTER TABLE customers ADD COLUMN rl_messages_per_hour INTEGER;
ALTER TABLE customers ADD COLUMN rl_recipients_per_minute INTEGER;
ALTER TABLE customers ADD COLUMN rl_recipients_per_hour INTEGER;
ALTER TABLE customers ADD COLUMN rl_burst INTEGER;
ALTER TABLE customers ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN held_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN held_at BIGINT;
ALTER TABLE customers ADD COLUMN released_at BIGINT;

-- Held messages of a customer, for release and purge.
CREATE INDEX messages_customer_held ON messages(customer_id) WHERE held = 1;
