-- A blob of a replica account has no content (storage_id '') until its
-- first pull fetches it from the upstream. When the content is recorded,
-- every repository that mounts the blob is announced (see
-- 0002_change_notifications.sql), so that other processes stop serving
-- their cached row without content.
CREATE FUNCTION keppel_notify_blob_storage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.storage_id IS DISTINCT FROM OLD.storage_id THEN
		PERFORM pg_notify('keppel_changes', 'r:' || m.repo_id) FROM blob_mounts m WHERE m.blob_id = NEW.id;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER blobs_notify_storage AFTER UPDATE OF storage_id ON blobs
	FOR EACH ROW EXECUTE FUNCTION keppel_notify_blob_storage();
