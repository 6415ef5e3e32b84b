-- The result of the last re-hash of a blob's content (docs/gc.md): when it
-- ran, and why the content did not match the digest ('' when it did). A
-- blob with an error is not served.
ALTER TABLE blobs ADD COLUMN validated_at INTEGER;
ALTER TABLE blobs ADD COLUMN validation_error TEXT NOT NULL DEFAULT '';
