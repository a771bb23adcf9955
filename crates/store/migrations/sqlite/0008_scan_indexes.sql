-- Keep in step with ../postgres/0008_scan_indexes.sql.

-- The blob collector pages through old blobs in (created_at, id) order; with the id in
-- it, the index alone answers, and no row (nor its body) is read.
DROP INDEX blobs_created;
CREATE INDEX blobs_created ON blobs(created_at, id);

-- The search index moves to a file of its own (postcell-store's pool and indexing
-- modules), written beside the database rather than by its one writer. The file starts
-- empty, and every message is queued to be indexed again into it.
DROP TRIGGER messages_release_search_text;
DROP TABLE search_fts;
DROP TABLE search_text;
