-- Keep in step with ../sqlite/0008_scan_indexes.sql (where the search index also
-- leaves the database for a file of its own; here it stays).

-- The blob collector pages through old blobs in (created_at, id) order; with the id in
-- it, the index alone answers.
DROP INDEX blobs_created;
CREATE INDEX blobs_created ON blobs(created_at, id);

-- A start finds the rows an older extraction wrote (version below the current one).
CREATE INDEX search_text_version ON search_text(version);
