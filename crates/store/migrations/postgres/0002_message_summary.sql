-- The message's IMAP summary (envelope and body structure), computed once at delivery
-- by postcell-mime; NULL for messages stored before it existed (computed on demand).
ALTER TABLE messages ADD COLUMN summary BYTEA;
