-- A search by status ("every bounced message", newest first) read every message of that status through
-- messages_status, then sorted them: 230 ms for 150,000 bounces on the 5 M-message log. With the reception
-- time and id in the index the page is read in order from it. The index on status alone is a prefix of
-- this one.
CREATE INDEX messages_status_received ON messages (status, received_at, id);
DROP INDEX messages_status;
