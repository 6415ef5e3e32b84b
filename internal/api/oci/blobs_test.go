package oci

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestCopyBlob sends the same content to a loopback and to a remote client
// (the buffered and the sendfile path): both must arrive whole.
func TestCopyBlob(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // several buffers' worth
	for _, c := range []struct {
		remote   string
		loopback bool
	}{
		{"127.0.0.1:50000", true},
		{"[::1]:50000", true},
		{"192.0.2.10:50000", false},
		{"not an address", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/v2/a/b/blobs/x", nil)
		r.RemoteAddr = c.remote
		if got := fromLoopback(r); got != c.loopback {
			t.Errorf("fromLoopback(%q) = %v", c.remote, got)
		}
		w := httptest.NewRecorder()
		n, err := copyBlob(w, r, bytes.NewReader(content))
		if err != nil || n != int64(len(content)) || !bytes.Equal(w.Body.Bytes(), content) {
			t.Errorf("%s: copied %d of %d bytes, %v", c.remote, n, len(content), err)
		}
	}
}
