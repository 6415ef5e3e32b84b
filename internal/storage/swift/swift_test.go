package swift_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ncw "github.com/ncw/swift/v2"

	"keppel/internal/models"
	"keppel/internal/storage"
	"keppel/internal/storage/storagetest"
	"keppel/internal/storage/swift"
	"keppel/internal/test"
)

var ref = models.StorageRef{AuthTenantID: "tenant-1", AccountName: "alpha"}

func newDriver(t *testing.T, srv *test.SwiftServer, tempURLKey string) *swift.Driver {
	t.Helper()
	d, err := swift.New(swift.Config{
		AuthURL: srv.AuthURL, UserName: srv.User, Password: srv.Key,
		ContainerPrefix: srv.ContainerPrefix(t), TempURLKey: tempURLKey,
	})
	if err != nil {
		t.Fatalf("swift.New: %v", err)
	}
	if err := d.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	return d
}

func TestSuite(t *testing.T) {
	srv := test.SwiftFromEnvironment(t)
	storagetest.RunSuite(t, func(t *testing.T) storage.Driver {
		return newDriver(t, srv, "")
	})
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []swift.Config{
		{},
		{AuthURL: "http://127.0.0.1:1/auth/v1.0"},
		{AuthURL: "http://127.0.0.1:1/auth/v1.0", UserName: "u", ContainerPrefix: "a/b"},
	} {
		if _, err := swift.New(cfg); err == nil {
			t.Errorf("swift.New(%+v) succeeded", cfg)
		}
	}
}

// Chunks are segments of a static large object: the blob is not copied at
// FinalizeBlob, and deleting the blob deletes them.
func TestBlobIsStaticLargeObject(t *testing.T) {
	srv := test.SwiftFromEnvironment(t)
	d := newDriver(t, srv, "")
	chunks := [][]byte{bytes.Repeat([]byte("a"), 100000), {}, bytes.Repeat([]byte("b"), 3)}
	var offset int64
	for i, c := range chunks {
		n, err := d.AppendToBlob(t.Context(), ref, "slo", uint32(i+1), offset, bytes.NewReader(c))
		if err != nil {
			t.Fatalf("AppendToBlob(%d): %v", i+1, err)
		}
		offset += n
	}
	if err := d.FinalizeBlob(t.Context(), ref, "slo", uint32(len(chunks))); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	container := containerOf(t, srv, d)
	_, headers, err := srv.Conn.Object(t.Context(), container, "tenant-1/b/slo")
	if err != nil {
		t.Fatal(err)
	}
	if headers["X-Static-Large-Object"] != "True" {
		t.Errorf("the blob is no static large object (headers %v)", headers)
	}
	names, _ := srv.Conn.ObjectNamesAll(t.Context(), container, &ncw.ObjectsOpts{Prefix: "tenant-1/s/slo/"})
	if len(names) != 2 {
		t.Errorf("segments %v, want the two non-empty chunks", names)
	}
	rc, err := d.ReadBlob(t.Context(), ref, "slo", 99998, 4)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "aabb" {
		t.Errorf("range across segments = %q, want %q", got, "aabb")
	}
	if err := d.DeleteBlob(t.Context(), ref, "slo"); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	names, _ = srv.Conn.ObjectNamesAll(t.Context(), container, nil)
	if len(names) != 0 {
		t.Errorf("objects left after DeleteBlob: %v", names)
	}
}

func containerOf(t *testing.T, srv *test.SwiftServer, d *swift.Driver) string {
	t.Helper()
	names, err := srv.Conn.ContainerNamesAll(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, "-alpha") && strings.HasPrefix(n, "keppel-test-") {
			if objs, _ := srv.Conn.ObjectNamesAll(t.Context(), n, &ncw.ObjectsOpts{Prefix: "tenant-1/"}); len(objs) > 0 {
				return n
			}
		}
	}
	t.Fatal("the account's container was not found")
	return ""
}

// An upload moves between driver instances (as between API processes).
func TestUploadAcrossInstances(t *testing.T) {
	srv := test.SwiftFromEnvironment(t)
	prefix := srv.ContainerPrefix(t)
	mk := func() *swift.Driver {
		d, err := swift.New(swift.Config{AuthURL: srv.AuthURL, UserName: srv.User, Password: srv.Key, ContainerPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := mk(), mk()
	if _, err := a.AppendToBlob(t.Context(), ref, "moving", 1, 0, strings.NewReader("first ")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendToBlob(t.Context(), ref, "moving", 2, 6, strings.NewReader("second")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AppendToBlob(t.Context(), ref, "moving", 3, 5, strings.NewReader("x")); err == nil {
		t.Fatal("AppendToBlob at a wrong offset succeeded")
	}
	if err := b.FinalizeBlob(t.Context(), ref, "moving", 2); err != nil {
		t.Fatal(err)
	}
	rc, err := a.ReadBlob(t.Context(), ref, "moving", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "first second" {
		t.Errorf("blob = %q", got)
	}
}

func TestBlobURL(t *testing.T) {
	srv := test.SwiftFromEnvironment(t)
	const key = "keppel-test-temp-url-key"
	if err := srv.Conn.AccountUpdate(t.Context(), ncw.Headers{"X-Account-Meta-Temp-URL-Key": key}); err != nil {
		t.Fatalf("setting the temp URL key: %v", err)
	}
	d := newDriver(t, srv, key)
	if _, err := d.AppendToBlob(t.Context(), ref, "signed", 1, 0, strings.NewReader("temp url content")); err != nil {
		t.Fatal(err)
	}
	if err := d.FinalizeBlob(t.Context(), ref, "signed", 1); err != nil {
		t.Fatal(err)
	}
	u, err := d.BlobURL(t.Context(), ref, "signed", time.Minute)
	if err != nil {
		t.Fatalf("BlobURL: %v", err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "temp url content" {
		t.Errorf("GET temp URL: HTTP %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get(strings.Replace(u, "/b/signed", "/b/other", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET with a changed path: HTTP %d, want 401", resp.StatusCode)
	}
}
