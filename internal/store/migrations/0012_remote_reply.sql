-- The remote host's own reply, kept as it wrote it (sanitised: lines joined, control characters removed, at
-- most 1000 bytes), beside the outcome Easymail recorded: for a delivery the reply to the end of DATA
-- ("250 2.0.0 Ok: queued as 4BX3"), for a failure the refusal. '' when no reply of a remote host decided the
-- outcome (no connection, DNS, a connection lost, a local error).
ALTER TABLE attempts ADD COLUMN remote_reply TEXT NOT NULL DEFAULT '';
ALTER TABLE recipients ADD COLUMN last_remote_reply TEXT NOT NULL DEFAULT '';
