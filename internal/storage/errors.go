package storage

import "errors"

// Errors returned by Driver implementations besides ErrNotFound, to be
// compared with errors.Is.
var (
	// ErrUploadOffsetMismatch is returned by AppendToBlob when the upload
	// holds fewer bytes than the offset the caller claims were acknowledged.
	ErrUploadOffsetMismatch = errors.New("upload offset mismatch")
	// ErrInvalidName is returned when a tenant, account, storage ID,
	// repository name or digest cannot be used as a storage location.
	ErrInvalidName = errors.New("invalid storage name")
	// ErrInvalidRange is returned by ReadBlob when the requested range does
	// not fit the blob.
	ErrInvalidRange = errors.New("invalid blob range")
	// ErrAccountNotEmpty is returned by CleanupAccount when the account
	// still holds blobs or manifests.
	ErrAccountNotEmpty = errors.New("account storage is not empty")
)
