-- Initial schema. Keep it in step with the PostgreSQL schema: same tables,
-- same columns, same constraints. Timestamps are unix seconds; booleans are
-- 0 or 1; text compares bytewise (SQLite's default BINARY collation).

-- The references from manifest_blob_refs to blob_mounts and from
-- manifest_manifest_refs to child manifests are ON DELETE RESTRICT: the
-- database refuses to unmount a referenced blob or delete a referenced child.
-- RESTRICT is checked row by row, before sibling cascades run, so code that
-- removes a whole repository (or all its manifests) must first delete the
-- repository's rows from manifest_manifest_refs and manifest_blob_refs.

CREATE TABLE accounts (
	name                        TEXT NOT NULL PRIMARY KEY,
	auth_tenant_id              TEXT NOT NULL,
	is_deleting                 INTEGER NOT NULL DEFAULT 0 CHECK (is_deleting IN (0, 1)),
	is_managed                  INTEGER NOT NULL DEFAULT 0 CHECK (is_managed IN (0, 1)),
	is_protected                INTEGER NOT NULL DEFAULT 0 CHECK (is_protected IN (0, 1)),
	rbac_policies_json          TEXT NOT NULL DEFAULT '',
	gc_policies_json            TEXT NOT NULL DEFAULT '',
	tag_policies_json           TEXT NOT NULL DEFAULT '',
	security_scan_policies_json TEXT NOT NULL DEFAULT '',
	validation_rule             TEXT NOT NULL DEFAULT '',
	platform_filter_json        TEXT NOT NULL DEFAULT '',
	upstream_peer_hostname      TEXT NOT NULL DEFAULT '',
	external_upstream_url       TEXT NOT NULL DEFAULT '',
	-- replication settings as JSON (passwords in it are encrypted)
	replication_json            TEXT NOT NULL DEFAULT '',
	created_at                  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
	next_blob_sweep_at          INTEGER,
	next_storage_sweep_at       INTEGER,
	next_deletion_attempt_at    INTEGER
) STRICT;
CREATE INDEX accounts_auth_tenant_id_idx ON accounts (auth_tenant_id);

-- Limits per auth tenant. bytes = -1 means unlimited and is the default, so
-- that an operator's INSERT naming only manifests limits only manifests;
-- manifests defaults to 0 as in SAP Keppel.
CREATE TABLE quotas (
	auth_tenant_id TEXT NOT NULL PRIMARY KEY,
	manifests      INTEGER NOT NULL DEFAULT 0,
	bytes          INTEGER NOT NULL DEFAULT -1
) STRICT;

CREATE TABLE repos (
	id                       INTEGER PRIMARY KEY AUTOINCREMENT,
	account_name             TEXT NOT NULL REFERENCES accounts (name) ON DELETE RESTRICT,
	name                     TEXT NOT NULL,
	next_blob_mount_sweep_at INTEGER,
	next_manifest_sync_at    INTEGER,
	next_gc_at               INTEGER,
	UNIQUE (account_name, name)
) STRICT;
CREATE INDEX repos_full_name_idx ON repos ((account_name || '/' || name));

CREATE TABLE blobs (
	id                 INTEGER PRIMARY KEY AUTOINCREMENT,
	account_name       TEXT NOT NULL REFERENCES accounts (name) ON DELETE RESTRICT,
	digest             TEXT NOT NULL,
	size_bytes         INTEGER NOT NULL,
	storage_id         TEXT NOT NULL,
	media_type         TEXT NOT NULL DEFAULT '',
	pushed_at          INTEGER NOT NULL,
	next_validation_at INTEGER,
	can_be_deleted_at  INTEGER,
	UNIQUE (account_name, digest)
) STRICT;

CREATE TABLE blob_mounts (
	blob_id           INTEGER NOT NULL REFERENCES blobs (id) ON DELETE RESTRICT,
	repo_id           INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
	can_be_deleted_at INTEGER,
	PRIMARY KEY (blob_id, repo_id)
) STRICT;
CREATE INDEX blob_mounts_repo_id_idx ON blob_mounts (repo_id);

CREATE TABLE uploads (
	repo_id          INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
	uuid             TEXT NOT NULL,
	storage_id       TEXT NOT NULL,
	size_bytes       INTEGER NOT NULL DEFAULT 0,
	hash_state       BLOB NOT NULL DEFAULT x'',
	digest_algorithm TEXT NOT NULL DEFAULT 'sha256',
	num_chunks       INTEGER NOT NULL DEFAULT 0,
	updated_at       INTEGER NOT NULL,
	PRIMARY KEY (repo_id, uuid)
) STRICT;
CREATE INDEX uploads_updated_at_idx ON uploads (updated_at);

CREATE TABLE manifests (
	repo_id            INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
	digest             TEXT NOT NULL,
	media_type         TEXT NOT NULL,
	size_bytes         INTEGER NOT NULL,
	pushed_at          INTEGER NOT NULL,
	last_pulled_at     INTEGER,
	subject_digest     TEXT NOT NULL DEFAULT '',
	artifact_type      TEXT NOT NULL DEFAULT '',
	annotations_json   TEXT NOT NULL DEFAULT '',
	labels_json        TEXT NOT NULL DEFAULT '',
	gc_status_json     TEXT NOT NULL DEFAULT '',
	next_validation_at INTEGER,
	PRIMARY KEY (repo_id, digest)
) STRICT;
CREATE INDEX manifests_subject_idx ON manifests (repo_id, subject_digest, digest);

CREATE TABLE manifest_contents (
	repo_id INTEGER NOT NULL,
	digest  TEXT NOT NULL,
	content BLOB NOT NULL,
	PRIMARY KEY (repo_id, digest),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) STRICT;

CREATE TABLE manifest_blob_refs (
	repo_id INTEGER NOT NULL,
	digest  TEXT NOT NULL,
	blob_id INTEGER NOT NULL,
	PRIMARY KEY (repo_id, digest, blob_id),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE,
	FOREIGN KEY (blob_id, repo_id) REFERENCES blob_mounts (blob_id, repo_id) ON DELETE RESTRICT
) STRICT;
CREATE INDEX manifest_blob_refs_blob_idx ON manifest_blob_refs (blob_id, repo_id);

CREATE TABLE manifest_manifest_refs (
	repo_id       INTEGER NOT NULL,
	parent_digest TEXT NOT NULL,
	child_digest  TEXT NOT NULL,
	PRIMARY KEY (repo_id, parent_digest, child_digest),
	FOREIGN KEY (repo_id, parent_digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE,
	FOREIGN KEY (repo_id, child_digest) REFERENCES manifests (repo_id, digest) ON DELETE RESTRICT
) STRICT;
CREATE INDEX manifest_manifest_refs_child_idx ON manifest_manifest_refs (repo_id, child_digest);

CREATE TABLE tags (
	repo_id        INTEGER NOT NULL,
	name           TEXT NOT NULL,
	digest         TEXT NOT NULL,
	pushed_at      INTEGER NOT NULL,
	last_pulled_at INTEGER,
	PRIMARY KEY (repo_id, name),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) STRICT;
CREATE INDEX tags_digest_idx ON tags (repo_id, digest);

CREATE TABLE users (
	name          TEXT NOT NULL PRIMARY KEY,
	password_hash TEXT NOT NULL,
	is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
	created_at    INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
) STRICT;

-- Roles of users of the built-in store in auth tenants.
CREATE TABLE tenant_roles (
	user_name      TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	auth_tenant_id TEXT NOT NULL,
	role           TEXT NOT NULL CHECK (role IN ('viewer', 'pusher', 'admin')),
	PRIMARY KEY (user_name, auth_tenant_id)
) STRICT;
CREATE INDEX tenant_roles_auth_tenant_id_idx ON tenant_roles (auth_tenant_id);

-- API keys of users of the built-in store; only a hash of the secret.
CREATE TABLE api_keys (
	id          TEXT NOT NULL PRIMARY KEY,
	user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	name        TEXT NOT NULL DEFAULT '',
	secret_hash TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER,
	revoked_at  INTEGER
) STRICT;
CREATE INDEX api_keys_user_name_idx ON api_keys (user_name, created_at);

-- What each auth tenant uses, maintained in the same transactions that add
-- or remove manifests and blobs (never computed by scanning). A tenant
-- without a row uses nothing.
CREATE TABLE tenant_usage (
	auth_tenant_id TEXT NOT NULL PRIMARY KEY,
	manifests      INTEGER NOT NULL DEFAULT 0,
	bytes          INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The audit log, newest first by id.
CREATE TABLE audit_events (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	time           INTEGER NOT NULL,
	actor          TEXT NOT NULL DEFAULT '',
	remote_addr    TEXT NOT NULL DEFAULT '',
	action         TEXT NOT NULL,
	auth_tenant_id TEXT NOT NULL DEFAULT '',
	account_name   TEXT NOT NULL DEFAULT '',
	target         TEXT NOT NULL DEFAULT '',
	outcome        TEXT NOT NULL DEFAULT '',
	reason         TEXT NOT NULL DEFAULT '',
	details_json   TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_events_time_idx ON audit_events (time DESC, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, id DESC);
CREATE INDEX audit_events_action_idx ON audit_events (action, id DESC);
CREATE INDEX audit_events_tenant_idx ON audit_events (auth_tenant_id, id DESC);
CREATE INDEX audit_events_account_idx ON audit_events (account_name, id DESC);
