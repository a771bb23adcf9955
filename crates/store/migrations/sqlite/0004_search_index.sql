-- The search index (IMAP SEARCH, SORT, THREAD). Keep in step with
-- ../postgres/0004_search_index.sql.
--
-- One row per blob, not per message: copies, moves and a message delivered to several
-- mailboxes share the text of their blob. The text is decoded (charsets, transfer
-- encodings, encoded words, HTML reduced to text) and case-folded by postcell-store,
-- so matching here is a plain substring test. `version` is the extraction that wrote
-- the row; rows of an older one are written again when a search meets them.
CREATE TABLE search_text (
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

-- Trigrams of the text columns, with search_text as the external content table: the
-- text is stored once, the index holds only trigrams and their positions. Queries of
-- fewer than three characters cannot use it and scan search_text instead.
CREATE VIRTUAL TABLE search_fts USING fts5(
    from_text, to_text, cc_text, bcc_text, subject_text, headers, body,
    content = 'search_text', content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);

CREATE TRIGGER search_text_insert AFTER INSERT ON search_text BEGIN
    INSERT INTO search_fts (rowid, from_text, to_text, cc_text, bcc_text, subject_text, headers, body)
    VALUES (new.id, new.from_text, new.to_text, new.cc_text, new.bcc_text, new.subject_text, new.headers, new.body);
END;

CREATE TRIGGER search_text_delete AFTER DELETE ON search_text BEGIN
    INSERT INTO search_fts (search_fts, rowid, from_text, to_text, cc_text, bcc_text, subject_text, headers, body)
    VALUES ('delete', old.id, old.from_text, old.to_text, old.cc_text, old.bcc_text, old.subject_text, old.headers, old.body);
END;

CREATE TRIGGER search_text_update AFTER UPDATE ON search_text BEGIN
    INSERT INTO search_fts (search_fts, rowid, from_text, to_text, cc_text, bcc_text, subject_text, headers, body)
    VALUES ('delete', old.id, old.from_text, old.to_text, old.cc_text, old.bcc_text, old.subject_text, old.headers, old.body);
    INSERT INTO search_fts (rowid, from_text, to_text, cc_text, bcc_text, subject_text, headers, body)
    VALUES (new.id, new.from_text, new.to_text, new.cc_text, new.bcc_text, new.subject_text, new.headers, new.body);
END;

-- The text goes with the last message that refers to its blob (an expunge, a MOVE's
-- source, a deleted mailbox or account: cascaded deletes fire this too).
CREATE TRIGGER messages_release_search_text AFTER DELETE ON messages BEGIN
    DELETE FROM search_text WHERE blob_id = old.blob_id
        AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = old.blob_id);
END;
