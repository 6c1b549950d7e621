-- Header fields Easymail adds in front of the stored message (Received, DKIM-Signature, scan results), kept
-- apart from the spool file so that the content is written once, in one pass, and never rewritten.
ALTER TABLE messages ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
