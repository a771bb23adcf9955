-- Postcell schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql:
-- the same tables, columns and meanings; only the dialect differs.

CREATE TABLE domains (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,          -- lower case, no trailing dot
    created_at  INTEGER NOT NULL
);

CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,       -- the canonical address, normalised
    domain_id      INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    password_hash  TEXT    NOT NULL,              -- argon2id PHC string
    quota_bytes    INTEGER NOT NULL DEFAULT 0,    -- 0 means no limit
    used_bytes     INTEGER NOT NULL DEFAULT 0,    -- changed in the same transaction as messages
    enabled        BOOLEAN NOT NULL DEFAULT 1,
    is_admin       BOOLEAN NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

-- Every address that delivers somewhere: to one account (account_id set) or, for an
-- alias, to the targets in alias_targets (account_id NULL).
CREATE TABLE addresses (
    id          INTEGER PRIMARY KEY,
    address     TEXT    NOT NULL UNIQUE,          -- normalised lookup key
    domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    account_id  INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);
CREATE INDEX addresses_account ON addresses(account_id);

CREATE TABLE alias_targets (
    address_id  INTEGER NOT NULL REFERENCES addresses(id) ON DELETE CASCADE,
    target      TEXT    NOT NULL,                 -- a local or an external address
    PRIMARY KEY (address_id, target)
);

CREATE TABLE mailboxes (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    special_use     TEXT,
    subscribed      BOOLEAN NOT NULL DEFAULT 1,
    uid_validity    INTEGER NOT NULL,
    uid_next        INTEGER NOT NULL DEFAULT 1,
    highest_modseq  INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    mailbox_id     INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid            INTEGER NOT NULL,
    modseq         INTEGER NOT NULL,
    blob_id        TEXT    NOT NULL,
    size           INTEGER NOT NULL,
    internal_date  INTEGER NOT NULL,
    flags          INTEGER NOT NULL DEFAULT 0,    -- system flags as bits, see flags.rs
    keywords       TEXT    NOT NULL DEFAULT '',   -- space separated
    message_id     TEXT,
    UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_blob ON messages(blob_id);

-- Expunged UIDs, kept for QRESYNC (RFC 7162).
CREATE TABLE expunged (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid         INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);

-- Blob bodies when the blob store is "database".
CREATE TABLE blobs (
    id          TEXT    PRIMARY KEY,              -- sha256, hex
    data        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Leases: a named right held by one owner until expires_at (unix seconds).
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- The outbound queue: one row per (message, remote recipient).
CREATE TABLE outbound_queue (
    id               INTEGER PRIMARY KEY,
    created_at       INTEGER NOT NULL,
    sender           TEXT    NOT NULL,            -- '' for the null sender
    recipient        TEXT    NOT NULL,
    blob_id          TEXT    NOT NULL,
    size             INTEGER NOT NULL,
    message_id       TEXT,
    state            TEXT    NOT NULL DEFAULT 'queued',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    last_reply       TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER
);
CREATE INDEX outbound_queue_due ON outbound_queue(state, next_attempt_at);
CREATE INDEX outbound_queue_blob ON outbound_queue(blob_id);

-- One record per delivery attempt or refusal, inbound and outbound.
CREATE TABLE delivery_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    node        TEXT    NOT NULL,
    direction   TEXT    NOT NULL,                 -- inbound | outbound
    queue_id    INTEGER,
    message_id  TEXT,
    sender      TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    status      TEXT    NOT NULL,                 -- delivered | queued | deferred | bounced | rejected
    remote      TEXT,
    reply       TEXT
);
CREATE INDEX delivery_log_at ON delivery_log(at);
CREATE INDEX delivery_log_recipient ON delivery_log(recipient, at);
CREATE INDEX delivery_log_sender ON delivery_log(sender, at);

CREATE TABLE nodes (
    id            TEXT    PRIMARY KEY,
    roles         TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    address       TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    draining      BOOLEAN NOT NULL DEFAULT 0
);
