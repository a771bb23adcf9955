-- The search index (IMAP SEARCH, SORT, THREAD). Keep in step with
-- ../sqlite/0004_search_index.sql.
--
-- One row per blob, not per message: copies, moves and a message delivered to several
-- mailboxes share the text of their blob. The text is decoded (charsets, transfer
-- encodings, encoded words, HTML reduced to text) and case-folded by postcell-store,
-- so matching here is a plain substring test (LIKE, which the trigram index serves,
-- or strpos for fewer than three characters). `version` is the extraction that wrote
-- the row; rows of an older one are written again when a search meets them.
--
-- pg_trgm ships with PostgreSQL (Debian's postgresql package, postgresql-contrib on
-- some systems) and is a trusted extension: the database owner may create it. It
-- takes trigrams of letters and digits only, as the database's LC_CTYPE classifies
-- them: with LC_CTYPE=C, non-ASCII letters (Japanese, accented Latin) make no trigrams,
-- and searches for them are answered by scanning the mailbox's rows. Create the
-- database with a UTF-8 LC_CTYPE (C.UTF-8 or xx_XX.UTF-8) for the index to serve them.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE search_text (
    id            BIGSERIAL PRIMARY KEY,
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
    sent_at       BIGINT,                         -- the Date field, unix seconds
    sent_day      BIGINT                          -- its day as written, days since 1970
);

CREATE INDEX search_text_trigrams ON search_text USING GIN (
    from_text gin_trgm_ops, to_text gin_trgm_ops, cc_text gin_trgm_ops, bcc_text gin_trgm_ops,
    subject_text gin_trgm_ops, headers gin_trgm_ops, body gin_trgm_ops
);

-- The text goes with the last message that refers to its blob (an expunge, a MOVE's
-- source, a deleted mailbox or account: cascaded deletes fire this too).
CREATE FUNCTION release_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM search_text WHERE blob_id = OLD.blob_id
        AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = OLD.blob_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_release_search_text AFTER DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION release_search_text();
