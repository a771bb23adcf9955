-- Cell mode: node identity and drain, once-per-cell jobs, metric samples, and what the
-- expiry job needs. Keep in step with ../postgres/0006_cell.sql.

-- The running process behind a node id (host/pid/random), so two processes that claim
-- the same id are told apart; how often it heartbeats (a node is down after three
-- missed beats); when it stopped cleanly (NULL while it runs).
ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN heartbeat_interval INTEGER NOT NULL DEFAULT 10;
ALTER TABLE nodes ADD COLUMN stopped_at INTEGER;

-- Every run of a once-per-cell job (blob collection, expiry), with the node that ran it.
-- Times in milliseconds: runs are short and their order matters.
CREATE TABLE job_runs (
    id           INTEGER PRIMARY KEY,
    job          TEXT   NOT NULL,
    node         TEXT   NOT NULL,
    started_ms   INTEGER NOT NULL,
    finished_ms  INTEGER,                          -- NULL while running (or if the node died)
    outcome      TEXT,                            -- ok | failed | cancelled
    detail       TEXT
);
CREATE INDEX job_runs_job ON job_runs(job, started_ms);

-- One sample of each of a node's metrics, taken every minute or so (the admin console's
-- graphs). `name` is the Prometheus series, labels included.
CREATE TABLE metric_samples (
    node   TEXT   NOT NULL,
    at     INTEGER NOT NULL,
    name   TEXT   NOT NULL,
    value  REAL NOT NULL,
    PRIMARY KEY (node, at, name)
);
CREATE INDEX metric_samples_at ON metric_samples(at);

-- When the expiry job first saw a tombstone (0: not yet seen). Stamping from the job
-- keeps every expunge path unchanged; the age is off by at most one job interval.
ALTER TABLE expunged ADD COLUMN expunged_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX expunged_at ON expunged(expunged_at);

-- Tombstones with a MODSEQ at or below this were purged: a QRESYNC client that last
-- synchronised before it cannot be given an exact VANISHED list.
ALTER TABLE mailboxes ADD COLUMN expunged_purged_modseq INTEGER NOT NULL DEFAULT 0;

CREATE INDEX blobs_created ON blobs(created_at);
