-- Objects that the storage sweep found in an account's storage and that the
-- database does not know, with the time from which the sweep may delete
-- them if they are still unknown then (see docs/gc.md). kind is "blob"
-- (name: the storage ID) or "manifest" (name: "<repository>@<digest>").
CREATE TABLE unknown_objects (
	account_name      TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
	kind              TEXT NOT NULL,
	name              TEXT NOT NULL,
	can_be_deleted_at INTEGER NOT NULL,
	PRIMARY KEY (account_name, kind, name)
);
