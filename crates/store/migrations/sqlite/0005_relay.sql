-- Submission, relay and forwarding. Keep in step with ../postgres/0005_relay.sql.

-- Per-account settings the user page shows (R10). An account without a row has the
-- defaults: no From rewriting, a local copy kept when forwarding.
CREATE TABLE account_settings (
    account_id         INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    rewrite_from       BOOLEAN NOT NULL DEFAULT 0,  -- From: and MAIL FROM become the canonical address
    forward_keep_copy  BOOLEAN NOT NULL DEFAULT 1   -- with forward targets: also deliver to the INBOX
);

-- Where an account's mail is forwarded to (local or external addresses).
CREATE TABLE account_forwards (
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    target      TEXT    NOT NULL,
    PRIMARY KEY (account_id, target)
);

-- DKIM signing keys; the newest key of a domain signs.
CREATE TABLE dkim_keys (
    domain       TEXT    NOT NULL,
    selector     TEXT    NOT NULL,
    algorithm    TEXT    NOT NULL,                 -- rsa-sha256 | ed25519-sha256
    private_key  TEXT    NOT NULL,                 -- PKCS#8 DER, base64
    public_key   TEXT    NOT NULL,                 -- the p= value of the DNS record
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (domain, selector)
);

-- The queue's lease columns exist since 0001; the relay also keeps where the last
-- attempt went, and claims entries by due time and lease expiry.
ALTER TABLE outbound_queue ADD COLUMN last_attempt_at INTEGER;
ALTER TABLE outbound_queue ADD COLUMN last_remote TEXT;
CREATE INDEX outbound_queue_lease ON outbound_queue(lease_expires_at);
