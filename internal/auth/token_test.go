package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"keppel/internal/auth"
)

const testService = "registry.example.com:5000"

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// clock is a settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// signClaims signs arbitrary claims with key, to build tokens that the
// TokenService would never issue.
func signClaims(t *testing.T, key ed25519.PrivateKey, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validClaims are claims as the service for testService would issue them at epoch.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":       "keppel-api@" + testService,
		"sub":       "admin",
		"aud":       []string{testService},
		"exp":       epoch.Add(time.Hour).Unix(),
		"nbf":       epoch.Add(-time.Second).Unix(),
		"iat":       epoch.Unix(),
		"access":    []auth.Scope{auth.RepositoryScope("test/foo", "pull")},
		"kpl_admin": true,
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	clk := &clock{now: epoch}
	ts := auth.NewTokenService(testService, 30*time.Minute, newKey(t), nil, clk.Now)
	if ts.Service() != testService || ts.Lifetime() != 30*time.Minute {
		t.Fatalf("Service/Lifetime = %q/%s", ts.Service(), ts.Lifetime())
	}

	tests := []struct {
		name    string
		subject string
		admin   bool
		grants  auth.Grants
	}{
		{"admin with scopes", "admin", true, auth.Grants{
			auth.RepositoryScope("test/foo", auth.ActionPull, auth.ActionPush),
			auth.CatalogScope,
		}},
		{"anonymous without scopes", "", false, auth.Grants{}},
		{"user with a scope on a name with a port", "alice", false, auth.Grants{
			auth.RepositoryScope("localhost:5000/a/b", auth.ActionPull),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			token, issuedAt, err := ts.Issue(tc.subject, tc.admin, tc.grants)
			if err != nil {
				t.Fatal(err)
			}
			if !issuedAt.Equal(epoch) {
				t.Errorf("issued at %s, want %s", issuedAt, epoch)
			}
			claims, err := ts.Verify(token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims.Subject != tc.subject || claims.Admin != tc.admin {
				t.Errorf("subject/admin = %q/%v, want %q/%v", claims.Subject, claims.Admin, tc.subject, tc.admin)
			}
			if !reflect.DeepEqual(claims.Access, tc.grants) {
				t.Errorf("access = %#v, want %#v", claims.Access, tc.grants)
			}
			if claims.Issuer != "keppel-api@"+testService {
				t.Errorf("issuer = %q", claims.Issuer)
			}
			if !reflect.DeepEqual([]string(claims.Audience), []string{testService}) {
				t.Errorf("audience = %q", claims.Audience)
			}
			if claims.ExpiresAt == nil || !claims.ExpiresAt.Time.Equal(epoch.Add(30*time.Minute)) {
				t.Errorf("expires at %v, want %s", claims.ExpiresAt, epoch.Add(30*time.Minute))
			}
			if claims.IssuedAt == nil || !claims.IssuedAt.Time.Equal(epoch) {
				t.Errorf("issued at claim %v, want %s", claims.IssuedAt, epoch)
			}
			if claims.ID == "" {
				t.Error("token has no ID")
			}
			// The access claim is a JSON array, as the token spec asks.
			payload := decodePayload(t, token)
			if _, ok := payload["access"].([]any); !ok {
				t.Errorf("access claim is %#v, not an array", payload["access"])
			}
		})
	}
}

func TestTokenIDsDiffer(t *testing.T) {
	t.Parallel()
	ts := auth.NewTokenService(testService, time.Hour, newKey(t), nil, (&clock{now: epoch}).Now)
	a, _, _ := ts.Issue("admin", true, nil)
	b, _, _ := ts.Issue("admin", true, nil)
	ca, errA := ts.Verify(a)
	cb, errB := ts.Verify(b)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if ca.ID == cb.ID {
		t.Errorf("two tokens share the ID %s", ca.ID)
	}
}

func TestVerifyValidityPeriod(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	issuer := auth.NewTokenService(testService, time.Hour, key, nil, (&clock{now: epoch}).Now)
	token, _, err := issuer.Issue("admin", true, auth.Grants{auth.CatalogScope})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		at     time.Time
		wantOK bool
	}{
		{"at issuance", epoch, true},
		{"just before expiry", epoch.Add(time.Hour - time.Second), true},
		{"within the leeway after expiry", epoch.Add(time.Hour + 2*time.Second), true},
		{"expired", epoch.Add(time.Hour + 10*time.Second), false},
		{"long expired", epoch.Add(48 * time.Hour), false},
		{"clock slightly behind", epoch.Add(-3 * time.Second), true},
		{"not yet valid", epoch.Add(-time.Minute), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			verifier := auth.NewTokenService(testService, time.Hour, key, nil, (&clock{now: tc.at}).Now)
			_, err := verifier.Verify(token)
			if tc.wantOK && err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !tc.wantOK {
				if err == nil {
					t.Fatal("Verify accepted the token")
				}
				if !errors.Is(err, auth.ErrInvalidToken) {
					t.Errorf("error %v is not ErrInvalidToken", err)
				}
			}
		})
	}
}

func TestVerifyRefusesForeignTokens(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	clk := &clock{now: epoch}
	ts := auth.NewTokenService(testService, time.Hour, key, nil, clk.Now)

	good, _, err := ts.Issue("admin", true, auth.Grants{auth.RepositoryScope("test/foo", "pull")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Verify(signClaims(t, key, validClaims())); err != nil {
		t.Fatalf("the hand-made valid token does not verify, so the cases below prove nothing: %v", err)
	}

	// Another registry (other service name) with its own key, and with the same key.
	other := auth.NewTokenService("other.example.com", time.Hour, newKey(t), nil, clk.Now)
	fromOther, _, _ := other.Issue("admin", true, nil)
	sameKeyOther := auth.NewTokenService("other.example.com", time.Hour, key, nil, clk.Now)
	fromSameKeyOther, _, _ := sameKeyOther.Issue("admin", true, nil)

	with := func(mutate func(c jwt.MapClaims)) string {
		c := validClaims()
		mutate(c)
		return signClaims(t, key, c)
	}

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not-a-token"},
		{"issued by another registry", fromOther},
		{"issued with our key for another service", fromSameKeyOther},
		{"other audience", with(func(c jwt.MapClaims) { c["aud"] = []string{"other.example.com"} })},
		{"no audience", with(func(c jwt.MapClaims) { delete(c, "aud") })},
		{"other issuer", with(func(c jwt.MapClaims) { c["iss"] = "keppel-api@other.example.com" })},
		{"no issuer", with(func(c jwt.MapClaims) { delete(c, "iss") })},
		{"no expiry", with(func(c jwt.MapClaims) { delete(c, "exp") })},
		{"signed by an unknown key", signClaims(t, newKey(t), validClaims())},
		{"tampered payload", tamper(t, good, func(c map[string]any) { c["kpl_admin"] = true; c["sub"] = "mallory" })},
		{"tampered access", tamper(t, good, func(c map[string]any) {
			c["access"] = []auth.Scope{auth.RepositoryScope("test/foo", "*")}
		})},
		{"signature removed", strings.Join(strings.Split(good, ".")[:2], ".") + "."},
		{"alg none", unsignedToken(t, "none", validClaims())},
		{"alg None", unsignedToken(t, "None", validClaims())},
		{"HS256 with the public key as secret", hmacWithPublicKey(t, key, validClaims())},
		{"ES256 signed by another key", es256Token(t, validClaims())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			claims, err := ts.Verify(tc.token)
			if err == nil {
				t.Fatalf("Verify accepted the token, claims %+v", claims)
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("error %v is not ErrInvalidToken", err)
			}
			if claims != nil {
				t.Errorf("Verify returned claims with an error: %+v", claims)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	clk := &clock{now: epoch}
	oldKey, rotatedKey, unrelated := newKey(t), newKey(t), newKey(t)
	before := auth.NewTokenService(testService, time.Hour, oldKey, nil, clk.Now)
	oldToken, _, err := before.Issue("admin", true, auth.Grants{auth.CatalogScope})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		current  ed25519.PrivateKey
		previous ed25519.PrivateKey
		wantOK   bool
	}{
		{"before rotation", oldKey, nil, true},
		{"old key configured as previous", rotatedKey, oldKey, true},
		{"old key not configured", rotatedKey, nil, false},
		{"another key configured as previous", rotatedKey, unrelated, false},
		{"old key configured as both", oldKey, oldKey, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := auth.NewTokenService(testService, time.Hour, tc.current, tc.previous, clk.Now)
			claims, err := ts.Verify(oldToken)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims.Subject != "admin" || !claims.Admin {
					t.Errorf("claims = %+v", claims)
				}
			} else if err == nil {
				t.Fatal("Verify accepted a token of a key that is not configured")
			}
			// New tokens are always signed with the current key, so a
			// service without the previous key accepts them.
			fresh, _, err := ts.Issue("admin", true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := auth.NewTokenService(testService, time.Hour, tc.current, nil, clk.Now).Verify(fresh); err != nil {
				t.Errorf("a fresh token does not verify with the current key alone: %v", err)
			}
		})
	}

	t.Run("expired token of the previous key", func(t *testing.T) {
		t.Parallel()
		later := &clock{now: epoch.Add(2 * time.Hour)}
		ts := auth.NewTokenService(testService, time.Hour, rotatedKey, oldKey, later.Now)
		if _, err := ts.Verify(oldToken); err == nil {
			t.Fatal("an expired token of the previous key was accepted")
		} else if !errors.Is(err, jwt.ErrTokenExpired) {
			t.Errorf("error %v does not say the token expired", err)
		}
	})
}

func decodePayload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// tamper changes the payload of a signed token and keeps its signature.
func tamper(t *testing.T, token string, mutate func(map[string]any)) string {
	t.Helper()
	payload := decodePayload(t, token)
	mutate(payload)
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func encodeSegment(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// unsignedToken builds a token with the given alg header and no signature.
func unsignedToken(t *testing.T, alg string, claims jwt.MapClaims) string {
	t.Helper()
	return encodeSegment(t, map[string]string{"alg": alg, "typ": "JWT"}) + "." + encodeSegment(t, claims) + "."
}

// hmacWithPublicKey is the algorithm-confusion attack: an HMAC token whose
// secret is the verifier's public key.
func hmacWithPublicKey(t *testing.T, key ed25519.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	pub := key.Public().(ed25519.PublicKey)
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func es256Token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()

	t.Run("creates once, then loads the same key", func(t *testing.T) {
		t.Parallel()
		// The directory does not exist yet either.
		path := filepath.Join(t.TempDir(), "sub", "dir", "token-key.pem")
		first, err := auth.LoadOrCreateKey(path, true)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("key file not created: %v", err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Errorf("key file has mode %v, want 0600", fi.Mode().Perm())
		}
		second, err := auth.LoadOrCreateKey(path, true)
		if err != nil {
			t.Fatal(err)
		}
		if !first.Equal(second) {
			t.Error("the second call returned another key")
		}
		third, err := auth.LoadOrCreateKey(path, false)
		if err != nil || !first.Equal(third) {
			t.Errorf("loading without create: %v", err)
		}
		// The key is usable: a token signed with it verifies with the loaded copy.
		token, _, err := auth.NewTokenService(testService, time.Hour, first, nil, time.Now).Issue("a", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := auth.NewTokenService(testService, time.Hour, second, nil, time.Now).Verify(token); err != nil {
			t.Errorf("token of the created key does not verify with the loaded key: %v", err)
		}
	})

	t.Run("does not create without create", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "missing.pem")
		if _, err := auth.LoadOrCreateKey(path, false); err == nil {
			t.Fatal("a missing key was accepted")
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the key file was created (stat: %v)", err)
		}
	})

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	edPub := edKey.Public().(ed25519.PublicKey)
	pubDER, _ := x509.MarshalPKIXPublicKey(edPub)

	bad := []struct {
		name    string
		content []byte
	}{
		{"empty file", nil},
		{"garbage", []byte("this is not a key\n")},
		{"PEM with garbage inside", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")})},
		{"ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
		{"Ed25519 public key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})},
		{"raw DER without PEM", edDER},
	}
	for _, tc := range bad {
		for _, create := range []bool{true, false} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "key.pem")
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
				if _, err := auth.LoadOrCreateKey(path, create); err == nil {
					t.Fatal("a bad key file was accepted")
				}
				// A bad file is never replaced by a new key.
				after, err := os.ReadFile(path)
				if err != nil || string(after) != string(tc.content) {
					t.Errorf("the bad key file was changed (err %v)", err)
				}
			})
		}
	}
}

// TestTokenServiceOtherServices: with an anycast host name accepted, tokens
// are issued for either name and verify; a token for a name that the
// service does not serve is refused on issue and on verify.
func TestTokenServiceOtherServices(t *testing.T) {
	key := newKey(t)
	clk := &clock{now: epoch}
	ts := auth.NewTokenService(testService, time.Hour, key, nil, clk.Now)
	ts.AcceptService("registry.global.example.com")
	if !ts.Serves(testService) || !ts.Serves("registry.global.example.com") || ts.Serves("other.example.com") {
		t.Fatal("Serves does not match the accepted services")
	}
	for _, service := range []string{testService, "registry.global.example.com"} {
		token, _, err := ts.IssueForService(service, &auth.Identity{Username: "alice"}, nil)
		if err != nil {
			t.Fatalf("issuing for %s: %v", service, err)
		}
		claims, err := ts.Verify(token)
		if err != nil || claims.Subject != "alice" || claims.Audience[0] != service {
			t.Fatalf("verifying a token for %s: %+v, %v", service, claims, err)
		}
	}
	if _, _, err := ts.IssueForService("other.example.com", nil, nil); err == nil {
		t.Fatal("issued a token for a service that is not served")
	}
	// the right key and issuer, but another audience
	claims := auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "keppel-api@" + testService, Subject: "alice",
		Audience: jwt.ClaimStrings{"other.example.com"}, ExpiresAt: jwt.NewNumericDate(epoch.Add(time.Hour))}}
	token, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Verify(token); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("a token for another audience: %v, want ErrInvalidToken", err)
	}
}
