-- SCRAM-SHA-256 secrets (RFC 5802, RFC 7677), computed from the password when it is set,
-- next to the argon2id hash. NULL for accounts whose password was set before: they
-- cannot use SCRAM until the password is set again.
ALTER TABLE accounts ADD COLUMN scram_salt BLOB;
ALTER TABLE accounts ADD COLUMN scram_iterations INTEGER;
ALTER TABLE accounts ADD COLUMN scram_stored_key BLOB;
ALTER TABLE accounts ADD COLUMN scram_server_key BLOB;

-- IMAP sessions ask for the tombstones newer than the MODSEQ they know (sync, QRESYNC,
-- VANISHED): an index keeps that cheap in a mailbox with many expunges behind it.
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
