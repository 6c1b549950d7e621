-- The process that claimed a recipient's delivery (queue.Queue's instance id), '' when none: set with the
-- attempt before dialing, cleared with its outcome. At start, the claims of a previous process of the node
-- (killed in the middle of a delivery) are made due at once instead of waiting for their retry time.
ALTER TABLE recipients ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
