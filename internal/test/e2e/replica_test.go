package e2e

import (
	"net/http"
	"strings"
	"testing"

	"keppel/internal/test"
)

// TestReplicaAccountsRefusePushes: blob uploads, mounts and manifest pushes
// into a replica account are refused with DENIED and a message that names
// the upstream; the account's pulls answer as usual.
func TestReplicaAccountsRefusePushes(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{}})
	admin := s.Token(t)
	for name, replication := range map[string]string{
		"mirror": `{"strategy":"from_external_on_first_use","upstream":{"url":"registry.example.com/library"}}`,
		"copy":   `{"strategy":"on_first_use","upstream":"registry-a.example.com"}`,
	} {
		r := s.Do(t, "PUT", "/keppel/v1/accounts/"+name, admin, nil,
			strings.NewReader(`{"account":{"auth_tenant_id":"t1","replication":`+replication+`}}`))
		if r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
		}
	}
	token := s.Token(t, "repository:mirror/app:pull,push", "repository:copy/app:pull,push",
		"repository:mirror/other:pull", "repository:copy/other:pull")
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`
	for account, upstream := range map[string]string{"mirror": "registry.example.com/library", "copy": "registry-a.example.com/copy"} {
		for _, req := range []struct{ method, path, body string }{
			{"POST", "/v2/" + account + "/app/blobs/uploads/", ""},
			{"POST", "/v2/" + account + "/app/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "{}"},
			{"POST", "/v2/" + account + "/app/blobs/uploads/?mount=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a&from=" + account + "/other", ""},
			{"PUT", "/v2/" + account + "/app/manifests/latest", manifest},
		} {
			hdr := http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}
			r := s.Do(t, req.method, req.path, token, hdr, strings.NewReader(req.body))
			if r.Status != http.StatusForbidden || r.ErrorCode() != "DENIED" || !strings.Contains(string(r.Body), upstream) {
				t.Errorf("%s %s: %d %s, want 403 DENIED naming %s", req.method, req.path, r.Status, r.Body, upstream)
			}
		}
		if r := s.Do(t, "GET", "/v2/"+account+"/app/tags/list", token, nil, nil); r.Status != http.StatusNotFound {
			t.Errorf("tag list of the empty replica %s: %d %s", account, r.Status, r.Body)
		}
	}
}
