-- The search index file of the SQLite backend, attached as schema `search` (see
-- postcell-store's pool module). It holds only what can be rebuilt from the messages,
-- so it has no migrations: `user_version` names its layout, and a file of another
-- layout is emptied and filled again. Keep the columns in step with
-- ../postgres/0004_search_index.sql.
--
-- One row per blob, not per message: copies, moves and a message delivered to several
-- mailboxes share the text of their blob. The text is decoded (charsets, transfer
-- encodings, encoded words, HTML reduced to text) and case-folded by postcell-store,
-- so matching here is a plain substring test. `version` is the extraction that wrote
-- the row; rows of an older one are queued again when the store opens. A row whose
-- messages are all gone is removed by the blob collector.
CREATE TABLE IF NOT EXISTS search.search_text (
    id            INTEGER PRIMARY KEY,
    blob_id       TEXT    NOT NULL UNIQUE,
    version       INTEGER NOT NULL,
    from_text     TEXT    NOT NULL DEFAULT '',
    to_text       TEXT    NOT NULL DEFAULT '',
    cc_text       TEXT    NOT NULL DEFAULT '',
    bcc_text      TEXT    NOT NULL DEFAULT '',
    subject_text  TEXT    NOT NULL DEFAULT '',
    headers       TEXT    NOT NULL DEFAULT '',    -- every field, "name: value" lines
    body          TEXT    NOT NULL DEFAULT '',
    refs          TEXT    NOT NULL DEFAULT '',    -- References as written, for THREAD
    sent_at       INTEGER,                        -- the Date field, unix seconds
    sent_day      INTEGER                         -- its day as written, days since 1970
);

CREATE INDEX IF NOT EXISTS search.search_text_version ON search_text(version);

-- Trigrams of the text columns, with search_text as the external content table: the
-- text is stored once, the index holds only trigrams and their positions. Queries of
-- fewer than three characters cannot use it and scan search_text instead.
CREATE VIRTUAL TABLE IF NOT EXISTS search.search_fts USING fts5(
    from_text, to_text, cc_text, bcc_text, subject_text, headers, body,
    content = 'search_text', content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);

CREATE TRIGGER IF NOT EXISTS search.search_text_insert AFTER INSERT ON search_text BEGIN
    INSERT INTO search_fts (rowid, from_text, to_text, cc_text, bcc_text, subject_text, headers, body)
    VALUES (new.id, new.from_text, new.to_text, new.cc_text, new.bcc_text, new.subject_text, new.headers, new.body);
END;

CREATE TRIGGER IF NOT EXISTS search.search_text_delete AFTER DELETE ON search_text BEGIN
    INSERT INTO search_fts (search_fts, rowid, from_text, to_text, cc_text, bcc_text, subject_text, headers, body)
    VALUES ('delete', old.id, old.from_text, old.to_text, old.cc_text, old.bcc_text, old.subject_text, old.headers, old.body);
END;

CREATE TRIGGER IF NOT EXISTS search.search_text_update AFTER UPDATE ON search_text BEGIN
    INSERT INTO search_fts (search_fts, rowid, from_text, to_text, cc_text, bcc_text, subject_text, headers, body)
    VALUES ('delete', old.id, old.from_text, old.to_text, old.cc_text, old.bcc_text, old.subject_text, old.headers, old.body);
    INSERT INTO search_fts (rowid, from_text, to_text, cc_text, bcc_text, subject_text, headers, body)
    VALUES (new.id, new.from_text, new.to_text, new.cc_text, new.bcc_text, new.subject_text, new.headers, new.body);
END;
