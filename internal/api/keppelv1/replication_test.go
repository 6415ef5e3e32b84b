package keppelv1_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"keppel/internal/registry"
	"keppel/internal/secretbox"
	"keppel/internal/storage/memory"
	"keppel/internal/test"
)

// TestReplicationSettings: replication settings are validated, upstream
// passwords are stored encrypted and never shown, and the settings cannot
// change later.
func TestReplicationSettings(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{}})
	admin := s.Token(t)
	put := func(name, body string) test.Response {
		return s.Do(t, "PUT", "/keppel/v1/accounts/"+name, admin, nil, strings.NewReader(body))
	}
	const secret = "upstream-Secret-Pw-77"
	r := put("mirror", `{"account":{"auth_tenant_id":"t1","replication":{"strategy":"from_external_on_first_use",`+
		`"upstream":{"url":"registry.example.com/library","username":"bot","password":"`+secret+`"}},`+
		`"platform_filter":[{"os":"linux","architecture":"amd64"}]}}`)
	if r.Status != 201 || strings.Contains(string(r.Body), secret) || !strings.Contains(string(r.Body), `"username":"bot"`) {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if g := s.Do(t, "GET", "/keppel/v1/accounts/mirror", admin, nil, nil); strings.Contains(string(g.Body), secret) ||
		strings.Contains(string(g.Body), "password") {
		t.Fatalf("GET shows the password: %s", g.Body)
	}
	stored, err := s.Store().GetAccount(context.Background(), "mirror")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored.ReplicationJSON, secret) || !strings.Contains(stored.ReplicationJSON, "password_sealed") {
		t.Fatalf("password stored in plaintext: %s", stored.ReplicationJSON)
	}
	// The server's key opens it again.
	key, err := secretbox.LoadOrCreateKey(s.DataDir+"/secrets-key", false)
	if err != nil {
		t.Fatal(err)
	}
	box, _ := secretbox.New(key)
	svc := registry.New(s.Store(), memory.New(), registry.WithSecrets(box), registry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if user, pw, err := svc.UpstreamCredentials(stored); err != nil || user != "bot" || pw != secret {
		t.Fatalf("credentials: %q %q %v", user, pw, err)
	}

	cases := []struct {
		name, account, body string
		status              int
	}{
		{"same settings again (password re-sent)", "mirror", `{"account":{"auth_tenant_id":"t1","replication":{"strategy":"from_external_on_first_use","upstream":{"url":"registry.example.com/library","username":"bot","password":"other"}}}}`, 200},
		{"settings omitted keeps them", "mirror", `{"account":{"auth_tenant_id":"t1"}}`, 200},
		{"other upstream", "mirror", `{"account":{"auth_tenant_id":"t1","replication":{"strategy":"from_external_on_first_use","upstream":{"url":"elsewhere.example.com"}}}}`, 409},
		{"peer replica", "peered", `{"account":{"auth_tenant_id":"t1","replication":{"strategy":"on_first_use","upstream":"keppel.example.org"}}}`, 201},
		{"unknown strategy", "bad1", `{"account":{"auth_tenant_id":"t1","replication":{"strategy":"sometimes","upstream":"x"}}}`, 400},
		{"url with another scheme", "bad2", `{"account":{"auth_tenant_id":"t1","replication":{"strategy":"from_external_on_first_use","upstream":{"url":"ftp://x.example.com"}}}}`, 400},
		{"url with a path only", "bad5", `{"account":{"auth_tenant_id":"t1","replication":{"strategy":"from_external_on_first_use","upstream":{"url":"https:///library"}}}}`, 400},
		{"password without user", "bad3", `{"account":{"auth_tenant_id":"t1","replication":{"strategy":"from_external_on_first_use","upstream":{"url":"x.example.com","password":"p"}}}}`, 400},
		{"sealed value smuggled in", "bad4", `{"account":{"auth_tenant_id":"t1","replication":{"strategy":"from_external_on_first_use","upstream":{"url":"x.example.com","username":"u","password_sealed":"kpl1:AAAA"}}}}`, 400},
		{"platform filter without replication", "bad5", `{"account":{"auth_tenant_id":"t1","platform_filter":[{"os":"linux"}]}}`, 400},
	}
	for _, c := range cases {
		if r := put(c.account, c.body); r.Status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
		}
	}
	if stored2, _ := s.Store().GetAccount(context.Background(), "mirror"); !registry.SameReplication(stored.ReplicationJSON, stored2.ReplicationJSON) {
		t.Errorf("replication changed: %s", stored2.ReplicationJSON)
	}
}
