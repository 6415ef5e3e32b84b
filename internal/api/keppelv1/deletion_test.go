package keppelv1_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"

	"keppel/internal/test"
)

// TestDeletionProgress: a deleting account shows what is left to delete.
func TestDeletionProgress(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"doomed": "t1"}})
	token := s.Token(t, "repository:doomed/app:pull,push")
	config := []byte(`{}`)
	d := digest.FromBytes(config)
	if r := s.Do(t, "POST", "/v2/doomed/app/blobs/uploads/?digest="+d.String(), token, nil, bytes.NewReader(config)); r.Status != http.StatusCreated {
		t.Fatalf("blob: %d %s", r.Status, r.Body)
	}
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` +
		d.String() + `","size":` + strconv.Itoa(len(config)) + `},"layers":[]}`)
	if r := s.Do(t, "PUT", "/v2/doomed/app/manifests/v1", token, http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, bytes.NewReader(m)); r.Status != http.StatusCreated {
		t.Fatalf("manifest: %d %s", r.Status, r.Body)
	}
	admin := s.Token(t)
	if r := s.Do(t, "DELETE", "/keppel/v1/accounts/doomed", admin, nil, nil); r.Status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	r := s.Do(t, "GET", "/keppel/v1/accounts/doomed", admin, nil, nil)
	var body struct {
		Account struct {
			State    string `json:"state"`
			Deletion *struct {
				Repositories int `json:"remaining_repositories"`
				Manifests    int `json:"remaining_manifests"`
			} `json:"deletion"`
		} `json:"account"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Account.State != "deleting" || body.Account.Deletion == nil ||
		body.Account.Deletion.Repositories != 1 || body.Account.Deletion.Manifests != 1 {
		t.Fatalf("progress: %d %s", r.Status, r.Body)
	}
}
