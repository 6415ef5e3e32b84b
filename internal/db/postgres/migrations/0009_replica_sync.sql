-- When the janitor next compares a repository of a replica account with its
-- upstream (tags, deleted manifests, pull times; docs/federation.md).
ALTER TABLE repos ADD COLUMN next_replica_sync_at BIGINT;
