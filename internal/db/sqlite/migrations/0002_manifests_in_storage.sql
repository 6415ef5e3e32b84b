-- A manifest's content is committed to the database together with the
-- manifest (manifest_contents). Its copy in the content storage
-- (m/<repo>/<digest>) is written right after the commit, outside the
-- request; in_storage records that it was, so that the janitor can write the
-- copies that a crash left out. Manifests that existed before have theirs.
ALTER TABLE manifests ADD COLUMN in_storage INTEGER NOT NULL DEFAULT 0 CHECK (in_storage IN (0, 1));
UPDATE manifests SET in_storage = 1;
CREATE INDEX manifests_not_in_storage_idx ON manifests (pushed_at) WHERE in_storage = FALSE;
