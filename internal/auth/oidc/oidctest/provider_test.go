package oidctest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain silences the provider's log of refused requests, which the
// zitadel library writes to the default logger.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

type claims struct {
	Issuer            string   `json:"iss"`
	Subject           string   `json:"sub"`
	Audience          any      `json:"aud"`
	IssuedAt          int64    `json:"iat"`
	Expiry            int64    `json:"exp"`
	PreferredUsername string   `json:"preferred_username"`
	Groups            []string `json:"groups"`
}

func payload(t *testing.T, jwt string) claims {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

var testOptions = Options{
	Users:   []User{{Subject: "u-1", Username: "user1", Password: "pw1", Groups: []string{"g1", "g2"}}},
	Clients: []Client{{ID: "rp", Secret: "rp-secret", IDTokenLifetime: time.Minute}, {ID: "code-only", Secret: "s", NoPasswordGrant: true}},
}

func TestDiscoveryAndCodeFlow(t *testing.T) {
	p := New(t, testOptions)
	resp, err := http.Get(p.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var disc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&disc); err != nil || disc.Issuer != p.Issuer || p.Issuer != p.URL {
		t.Fatalf("discovery: issuer %q (%v), want %q", disc.Issuer, err, p.URL)
	}

	c := payload(t, p.IDToken(t, "rp", "user1", "pw1"))
	if c.Issuer != p.Issuer || c.Subject != "u-1" || c.PreferredUsername != "user1" || !slices.Equal(c.Groups, []string{"g1", "g2"}) {
		t.Errorf("claims %+v", c)
	}
	if d := c.Expiry - c.IssuedAt; d != 60 {
		t.Errorf("lifetime %ds, want 60s", d)
	}
	p.SetIDTokenLifetime("rp", 5*time.Second)
	if c := payload(t, p.IDToken(t, "rp", "user1", "pw1")); c.Expiry-c.IssuedAt != 5 {
		t.Errorf("lifetime after SetIDTokenLifetime: %ds, want 5s", c.Expiry-c.IssuedAt)
	}
}

func TestPasswordGrant(t *testing.T) {
	p := New(t, testOptions)
	// grant authenticates the client with HTTP Basic, or in the form if
	// client starts with "post:".
	grant := func(client, secret, username, password string) (int, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}, "scope": {"openid profile groups"}}
		post := strings.HasPrefix(client, "post:")
		if post {
			form.Set("client_id", strings.TrimPrefix(client, "post:"))
			form.Set("client_secret", secret)
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.URL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if !post {
			req.SetBasicAuth(client, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}

	status, body := grant("rp", "rp-secret", "user1", "pw1")
	idToken, _ := body["id_token"].(string)
	if status != http.StatusOK || idToken == "" {
		t.Fatalf("password grant: %d %v", status, body)
	}
	if c := payload(t, idToken); c.Subject != "u-1" || !slices.Equal(c.Groups, []string{"g1", "g2"}) {
		t.Errorf("claims %+v", c)
	}
	for _, c := range []struct {
		client, secret, username, password string
		want                               string
	}{
		{"rp", "rp-secret", "user1", "wrong", "invalid_grant"},
		{"post:rp", "rp-secret", "user1", "pw1", ""}, // accepted, see below
		{"post:rp", "wrong", "user1", "pw1", "invalid_client"},
		// zitadel's client authentication answers a wrong secret in HTTP
		// Basic with unauthorized_client (RFC 6749 says invalid_client).
		{"rp", "wrong", "user1", "pw1", "unauthorized_client"},
		{"code-only", "s", "user1", "pw1", "unauthorized_client"},
	} {
		status, body := grant(c.client, c.secret, c.username, c.password)
		if c.want == "" {
			if status != http.StatusOK || body["id_token"] == nil {
				t.Errorf("%+v: %d %v, want an ID token", c, status, body)
			}
			continue
		}
		if status < 400 || body["error"] != c.want {
			t.Errorf("%+v: %d %v, want error %s", c, status, body, c.want)
		}
	}
}
