-- The result of the last re-validation of a manifest (docs/gc.md): when it
-- ran, and why its stored content did not check out ('' when it did). A
-- manifest with an error is not served.
ALTER TABLE manifests ADD COLUMN validated_at BIGINT;
ALTER TABLE manifests ADD COLUMN validation_error TEXT COLLATE "C" NOT NULL DEFAULT '';
