package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"keppel/internal/test"
)

// TestFederationAccountNameClaims runs two registries, on 127.0.0.2 and
// 127.0.0.3, with the postgres federation driver on one claims database: an
// account name belongs to the registry that took it first; the other one
// may only hold a replica of it, created with a sublease token that the
// first one issued, and each token is good for one replica. Deleting the
// account frees the name.
func TestFederationAccountNameClaims(t *testing.T) {
	t.Parallel()
	claims := test.PostgresDatabase(t)
	start := func(ip string) *test.Process {
		addr := test.FreeAddressOn(t, ip)
		return test.StartKeppel(t, "KEPPEL_API_LISTEN_ADDRESS="+addr, "KEPPEL_API_PUBLIC_URL=http://"+addr,
			"KEPPEL_FEDERATION_DRIVER=postgres", "KEPPEL_FEDERATION_POSTGRES_URL="+claims,
			"KEPPEL_JANITOR_POLL_INTERVAL=100ms")
	}
	a, b := start("127.0.0.2"), start("127.0.0.3")
	if !strings.HasPrefix(a.Addr, "127.0.0.2:") || !strings.HasPrefix(b.Addr, "127.0.0.3:") {
		t.Fatalf("registries at %s and %s", a.Addr, b.Addr)
	}
	do := func(p *test.Process, method, path, body string, hdr map[string]string) (int, string) {
		t.Helper()
		return adminDo(t, p, method, path, body, hdr)
	}
	primary := `{"account":{"auth_tenant_id":"tenant"}}`
	replica := `{"account":{"auth_tenant_id":"tenant","replication":{"strategy":"on_first_use","upstream":"` + a.Addr + `"}}}`

	if status, body := do(a, "PUT", "/keppel/v1/accounts/shared", primary, nil); status != http.StatusCreated {
		t.Fatalf("create on A: %d %s", status, body)
	}
	if status, body := do(b, "PUT", "/keppel/v1/accounts/shared", primary, nil); status != http.StatusConflict || !strings.Contains(body, a.Addr) {
		t.Fatalf("create the same name on B: %d %s, want 409 naming A", status, body)
	}
	if status, body := do(b, "PUT", "/keppel/v1/accounts/shared", replica, nil); status != http.StatusForbidden {
		t.Fatalf("replica without a sublease token: %d %s, want 403", status, body)
	}
	status, body := do(a, "POST", "/keppel/v1/accounts/shared/sublease", "", nil)
	var issued struct {
		Token string `json:"sublease_token"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &issued) != nil || issued.Token == "" {
		t.Fatalf("sublease on A: %d %s", status, body)
	}
	withToken := map[string]string{"X-Keppel-Sublease-Token": issued.Token}
	if status, body := do(b, "PUT", "/keppel/v1/accounts/shared", replica, withToken); status != http.StatusCreated {
		t.Fatalf("replica with the token: %d %s", status, body)
	}
	if status, body := do(b, "POST", "/keppel/v1/accounts/shared/sublease", "", nil); status != http.StatusBadRequest {
		t.Fatalf("sublease of a replica: %d %s, want 400", status, body)
	}
	// The token is used up: deleting the replica and creating it again
	// needs a new one.
	if status, body := do(b, "DELETE", "/keppel/v1/accounts/shared", "", nil); status >= 300 {
		t.Fatalf("delete the replica: %d %s", status, body)
	}
	waitGone(t, func() bool {
		s, _ := do(b, "GET", "/keppel/v1/accounts/shared", "", nil)
		return s == http.StatusNotFound
	})
	if status, body := do(b, "PUT", "/keppel/v1/accounts/shared", replica, withToken); status != http.StatusForbidden {
		t.Fatalf("replica with a used token: %d %s, want 403", status, body)
	}

	// A name that A deletes is free for B.
	if status, body := do(a, "PUT", "/keppel/v1/accounts/moving", primary, nil); status != http.StatusCreated {
		t.Fatalf("create moving on A: %d %s", status, body)
	}
	if status, body := do(a, "DELETE", "/keppel/v1/accounts/moving", "", nil); status >= 300 {
		t.Fatalf("delete moving on A: %d %s", status, body)
	}
	waitGone(t, func() bool {
		s, _ := do(a, "GET", "/keppel/v1/accounts/moving", "", nil)
		return s == http.StatusNotFound
	})
	if status, body := do(b, "PUT", "/keppel/v1/accounts/moving", primary, nil); status != http.StatusCreated {
		t.Fatalf("create moving on B after A deleted it: %d %s", status, body)
	}
}

// waitGone waits up to 10 s for gone to report true.
func waitGone(t *testing.T, gone func() bool) {
	t.Helper()
	for range 200 {
		if gone() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the account was not deleted within 10s")
}

// TestFederationRecordsExistingAccounts: a registry that joins a federation
// claims the names of the accounts it already has.
func TestFederationRecordsExistingAccounts(t *testing.T) {
	t.Parallel()
	claims := test.PostgresDatabase(t)
	dataDir := t.TempDir()
	addrB := test.FreeAddressOn(t, "127.0.0.3")
	alone := test.StartKeppel(t, "KEPPEL_API_LISTEN_ADDRESS="+addrB, "KEPPEL_API_PUBLIC_URL=http://"+addrB, "KEPPEL_DATA_DIR="+dataDir)
	alone.CreateAccount(t, "early", "tenant")
	alone.Stop()
	federated := []string{"KEPPEL_FEDERATION_DRIVER=postgres", "KEPPEL_FEDERATION_POSTGRES_URL=" + claims}
	test.StartKeppel(t, append([]string{"KEPPEL_API_LISTEN_ADDRESS=" + addrB, "KEPPEL_API_PUBLIC_URL=http://" + addrB, "KEPPEL_DATA_DIR=" + dataDir}, federated...)...)

	addrA := test.FreeAddressOn(t, "127.0.0.2")
	a := test.StartKeppel(t, append([]string{"KEPPEL_API_LISTEN_ADDRESS=" + addrA, "KEPPEL_API_PUBLIC_URL=http://" + addrA}, federated...)...)
	req, _ := http.NewRequest(http.MethodPut, a.URL+"/keppel/v1/accounts/early", strings.NewReader(`{"account":{"auth_tenant_id":"tenant"}}`))
	req.SetBasicAuth("admin", test.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), addrB) {
		t.Fatalf("claiming B's older account on A: %d %s, want 409 naming B", resp.StatusCode, body)
	}
}
