-- One-click unsubscription (RFC 8058) delegated to the relay (docs/events.md): '' (the customer handles its
-- own unsubscriptions) or 'delegated' (the relay adds List-Unsubscribe and List-Unsubscribe-Post to the
-- customer's single-recipient messages that have none and honours POST /u/TOKEN).
ALTER TABLE customers ADD COLUMN unsubscribe TEXT NOT NULL DEFAULT '';
