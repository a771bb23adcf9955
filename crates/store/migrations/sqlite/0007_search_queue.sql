-- The search index is written after delivery, not in its transaction (see
-- postcell-store's indexing module). Keep in step with ../postgres/0007_search_queue.sql.
--
-- One row per blob whose text is not indexed yet. A node that indexes a batch claims
-- it (claimed_by, claimed_until: a lease, in unix seconds) so that the nodes of a cell
-- do not index the same blobs; a claim that runs out is anyone's again.
CREATE TABLE search_pending (
    blob_id        TEXT    PRIMARY KEY,
    queued_at      INTEGER NOT NULL,
    claimed_by     TEXT,
    claimed_until  INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX search_pending_queued ON search_pending(queued_at);

-- What was stored without an index row until now.
INSERT INTO search_pending (blob_id, queued_at)
    SELECT DISTINCT m.blob_id, 0 FROM messages m
    WHERE NOT EXISTS (SELECT 1 FROM search_text t WHERE t.blob_id = m.blob_id);

-- A blob leaves the queue with the last message that refers to it.
CREATE TRIGGER messages_release_search_pending AFTER DELETE ON messages BEGIN
    DELETE FROM search_pending WHERE blob_id = old.blob_id
        AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = old.blob_id);
END;
