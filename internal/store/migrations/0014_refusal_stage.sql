-- The SMTP stage at which a refused message was refused: 'mail', 'rcpt' or 'data' (status 'rejected');
-- '' for the messages that were accepted, and for refusals logged before the stage was recorded.
ALTER TABLE messages ADD COLUMN stage TEXT NOT NULL DEFAULT '';
