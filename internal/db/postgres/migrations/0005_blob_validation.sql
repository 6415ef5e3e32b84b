-- The result of the last re-hash of a blob's content (docs/gc.md): when it
-- ran, and why the content did not match the digest ('' when it did). A
-- blob with an error is not served. A change of the error is announced for
-- every repository that mounts the blob (see 0002_change_notifications.sql).
ALTER TABLE blobs ADD COLUMN validated_at BIGINT;
ALTER TABLE blobs ADD COLUMN validation_error TEXT COLLATE "C" NOT NULL DEFAULT '';

CREATE FUNCTION keppel_notify_blob_validation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.validation_error IS DISTINCT FROM OLD.validation_error THEN
		PERFORM pg_notify('keppel_changes', 'r:' || m.repo_id) FROM blob_mounts m WHERE m.blob_id = NEW.id;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER blobs_notify_validation AFTER UPDATE OF validation_error ON blobs
	FOR EACH ROW EXECUTE FUNCTION keppel_notify_blob_validation();
