package loadgen

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
)

// suffixLen is the length of the unique tail of each generated blob.
const suffixLen = 16

// blobSource generates many distinct blobs of one size without holding any
// of them in memory: each is the same ChaCha8 stream of size-16 bytes
// followed by 16 unique bytes. The SHA-256 state after the shared prefix is
// computed once, so each blob's digest costs one block of hashing.
type blobSource struct {
	size   int64
	seed   [32]byte
	nonce  uint64
	prefix []byte // marshalled sha256 state after the prefix
}

func newBlobSource(size int64, nonce uint64) (*blobSource, error) {
	if size < suffixLen {
		return nil, fmt.Errorf("blob size %d is below the minimum of %d bytes", size, suffixLen)
	}
	s := &blobSource{size: size, nonce: nonce}
	binary.LittleEndian.PutUint64(s.seed[:], nonce)
	h := sha256.New()
	if _, err := io.Copy(h, s.prefixReader()); err != nil {
		return nil, err
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	s.prefix = state
	return s, nil
}

func (s *blobSource) prefixReader() io.Reader {
	return io.LimitReader(rand.NewChaCha8(s.seed), s.size-suffixLen)
}

func (s *blobSource) suffix(i uint64) []byte {
	var b [suffixLen]byte
	binary.LittleEndian.PutUint64(b[:8], s.nonce)
	binary.LittleEndian.PutUint64(b[8:], i)
	return b[:]
}

// Digest returns the digest of blob i.
func (s *blobSource) Digest(i uint64) string {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(s.prefix); err != nil {
		panic(err) // the state came from the same hash implementation
	}
	h.Write(s.suffix(i))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Reader streams the content of blob i.
func (s *blobSource) Reader(i uint64) io.Reader {
	return io.MultiReader(s.prefixReader(), &byteReader{b: s.suffix(i)})
}

// Section streams bytes [off, off+n) of blob i.
func (s *blobSource) Section(i uint64, off, n int64) io.Reader {
	r := s.Reader(i)
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return errReader{err}
	}
	return io.LimitReader(r, n)
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// smallBlob returns a small random blob held in memory (configs, 1 MiB
// layers).
func smallBlob(n int, seed uint64) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// verifier hashes what it is written and compares it with a digest.
type verifier struct {
	h    hash.Hash
	want string
}

func newVerifier(want string) *verifier { return &verifier{h: sha256.New(), want: want} }

func (v *verifier) Write(p []byte) (int, error) { return v.h.Write(p) }

func (v *verifier) Check() error {
	if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.want {
		return fmt.Errorf("digest mismatch: got %s, want %s", got, v.want)
	}
	return nil
}
