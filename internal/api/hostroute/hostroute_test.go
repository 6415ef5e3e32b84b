package hostroute_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"keppel/internal/api/hostroute"
)

// recorder is a backend that answers with what it saw.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.seen = append(rec.seen, r.Host+" "+r.Method+" "+r.URL.Path+" fwd="+r.Header.Get(hostroute.ForwardedHeader))
	rec.mu.Unlock()
	w.Header().Set("Location", r.URL.Path+"/next")
	w.Header().Set("Link", `<`+r.URL.Path+`?n=1>; rel="next"`)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "ok")
}

func (rec *recorder) last() string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) == 0 {
		return ""
	}
	return rec.seen[len(rec.seen)-1]
}

func TestAccountSubdomains(t *testing.T) {
	rec := &recorder{}
	h := hostroute.Wrap(rec, hostroute.Config{PublicHost: "registry.example.com", AccountSubdomains: true})
	for _, c := range []struct {
		host, path, want, location string
	}{
		{"library.registry.example.com", "/v2/alpine/manifests/latest", "/v2/library/alpine/manifests/latest", "/v2/alpine/manifests/latest/next"},
		{"LIBRARY.registry.example.com.", "/v2/a/b/blobs/uploads/", "/v2/library/a/b/blobs/uploads/", "/v2/a/b/blobs/uploads//next"},
		{"library.registry.example.com", "/v2/", "/v2/", "/v2//next"},
		{"library.registry.example.com", "/v2/_catalog", "/v2/_catalog", "/v2/_catalog/next"},
		{"library.registry.example.com", "/keppel/v1/auth", "/keppel/v1/auth", "/keppel/v1/auth/next"},
		{"registry.example.com", "/v2/library/alpine/manifests/latest", "/v2/library/alpine/manifests/latest", "/v2/library/alpine/manifests/latest/next"},
		{"Bad_Name.registry.example.com", "/v2/alpine/manifests/latest", "/v2/alpine/manifests/latest", "/v2/alpine/manifests/latest/next"},
		{"library.other.example.com", "/v2/alpine/manifests/latest", "/v2/alpine/manifests/latest", "/v2/alpine/manifests/latest/next"},
	} {
		req := httptest.NewRequest("GET", c.path, nil)
		req.Host = c.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if got := rec.last(); !strings.Contains(got, " "+c.want+" ") {
			t.Errorf("%s%s reached the API as %q, want path %s", c.host, c.path, got, c.want)
		}
		if got := w.Header().Get("Location"); got != c.location {
			t.Errorf("%s%s: Location %q, want %q", c.host, c.path, got, c.location)
		}
		if w.Code != http.StatusAccepted || w.Body.String() != "ok" {
			t.Errorf("%s%s: %d %q", c.host, c.path, w.Code, w.Body.String())
		}
	}
}

func TestAnycast(t *testing.T) {
	peer := &recorder{}
	peerSrv := httptest.NewServer(peer)
	t.Cleanup(peerSrv.Close)
	local := &recorder{}
	h := hostroute.Wrap(local, hostroute.Config{
		PublicHost:  "a.example.com",
		AnycastHost: "registry.example.com",
		IsLocal: func(_ context.Context, account string) (bool, error) {
			return account == "here", nil
		},
		Holder: func(_ context.Context, account string) (string, bool, error) {
			if account == "there" {
				return peerSrv.URL, true, nil
			}
			return "", false, nil
		},
	})
	do := func(method, host, path string, hdr http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Host = host
		for k, v := range hdr {
			req.Header[k] = v
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}

	// local accounts, unknown accounts, the base and the own host name
	// stay here
	for _, c := range []struct{ host, path string }{
		{"registry.example.com", "/v2/here/app/manifests/v1"},
		{"registry.example.com", "/v2/nowhere/app/manifests/v1"},
		{"registry.example.com", "/v2/"},
		{"registry.example.com", "/keppel/v1/auth?scope=repository:here/app:pull"},
		{"registry.example.com", "/keppel/v1/auth?scope=repository:here/app:pull&scope=repository:there/app:pull"},
		{"a.example.com", "/v2/there/app/manifests/v1"},
	} {
		w := do("GET", c.host, c.path, nil)
		path, _, _ := strings.Cut(c.path, "?")
		if w.Code != http.StatusAccepted || local.last() != c.host+" GET "+path+" fwd=" {
			t.Errorf("%s%s: %d, served here as %q", c.host, c.path, w.Code, local.last())
		}
	}

	// reads of accounts held by the peer go there, with the anycast host
	// name and the forwarded mark
	for _, path := range []string{"/v2/there/app/manifests/v1", "/v2/there/app/blobs/sha256:abc", "/keppel/v1/auth?scope=repository:there/app:pull"} {
		w := do("GET", "registry.example.com", path, nil)
		p, _, _ := strings.Cut(path, "?")
		if w.Code != http.StatusAccepted || peer.last() != "registry.example.com GET "+p+" fwd=a.example.com" {
			t.Errorf("GET %s: %d, at the peer %q", path, w.Code, peer.last())
		}
	}
	if w := do("HEAD", "registry.example.com", "/v2/there/app/manifests/v1", nil); w.Code != http.StatusAccepted {
		t.Errorf("HEAD: %d", w.Code)
	}
	// writes are refused
	for _, method := range []string{"PUT", "POST", "DELETE", "PATCH"} {
		w := do(method, "registry.example.com", "/v2/there/app/manifests/v1", nil)
		if w.Code != http.StatusMethodNotAllowed || !strings.Contains(w.Body.String(), "UNSUPPORTED") {
			t.Errorf("%s through anycast: %d %s", method, w.Code, w.Body.String())
		}
	}
	// a forwarded request is never forwarded again
	w := do("GET", "registry.example.com", "/v2/there/app/manifests/v1", http.Header{hostroute.ForwardedHeader: {"b.example.com"}})
	if w.Code != http.StatusAccepted || !strings.HasSuffix(local.last(), "fwd=b.example.com") {
		t.Errorf("forwarded request: %d, here as %q", w.Code, local.last())
	}

	// an unreachable peer is 502
	peerSrv.Close()
	if w := do("GET", "registry.example.com", "/v2/there/app/manifests/v1", nil); w.Code != http.StatusBadGateway {
		t.Errorf("unreachable peer: %d %s", w.Code, w.Body.String())
	}
}
