-- The scheduler asks for the recipients still to deliver, earliest due first. A partial index holds only
-- those, in due order, so the query stops at its LIMIT instead of sorting the whole backlog.
CREATE INDEX recipients_pending ON recipients(next_attempt_at) WHERE status IN ('queued', 'deferred');
DROP INDEX recipients_due;
