-- Every committed change of what the API processes cache (accounts,
-- repositories, blob mounts, manifests and their contents, tags) is
-- announced on the channel keppel_changes, so that every process can drop
-- what it cached (postgres.Listen). The payload is "a:<account name>" or
-- "r:<repository id>". PostgreSQL delivers notifications only on commit, and
-- folds identical ones of one transaction into one.
CREATE FUNCTION keppel_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	r RECORD;
BEGIN
	IF TG_OP = 'DELETE' THEN
		r := OLD;
	ELSE
		r := NEW;
	END IF;
	IF TG_TABLE_NAME = 'accounts' THEN
		PERFORM pg_notify('keppel_changes', 'a:' || r.name);
	ELSIF TG_TABLE_NAME = 'repos' THEN
		PERFORM pg_notify('keppel_changes', 'a:' || r.account_name);
		PERFORM pg_notify('keppel_changes', 'r:' || r.id);
	ELSE
		PERFORM pg_notify('keppel_changes', 'r:' || r.repo_id);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER accounts_notify_change AFTER INSERT OR UPDATE OR DELETE ON accounts
	FOR EACH ROW EXECUTE FUNCTION keppel_notify_change();
CREATE TRIGGER repos_notify_change AFTER INSERT OR UPDATE OR DELETE ON repos
	FOR EACH ROW EXECUTE FUNCTION keppel_notify_change();
CREATE TRIGGER blob_mounts_notify_change AFTER INSERT OR UPDATE OR DELETE ON blob_mounts
	FOR EACH ROW EXECUTE FUNCTION keppel_notify_change();
CREATE TRIGGER manifests_notify_change AFTER INSERT OR UPDATE OR DELETE ON manifests
	FOR EACH ROW EXECUTE FUNCTION keppel_notify_change();
CREATE TRIGGER manifest_contents_notify_change AFTER INSERT OR UPDATE OR DELETE ON manifest_contents
	FOR EACH ROW EXECUTE FUNCTION keppel_notify_change();
CREATE TRIGGER tags_notify_change AFTER INSERT OR UPDATE OR DELETE ON tags
	FOR EACH ROW EXECUTE FUNCTION keppel_notify_change();
