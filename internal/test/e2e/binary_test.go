package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"keppel/internal/test"
)

// TestFirstStartCreatesAdmin starts the binary without an admin password:
// it must generate one, print it once, and accept it; a restart on the same
// data keeps it and prints nothing.
func TestFirstStartCreatesAdmin(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	p := test.StartKeppel(t, "KEPPEL_ADMIN_PASSWORD=", "KEPPEL_DATA_DIR="+dataDir, "KEPPEL_LOG_LEVEL=info")
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(waitForLog(t, p, "password:"))
	if m == nil {
		t.Fatalf("no generated password printed:\n%s", p.Log())
	}
	password := m[1]
	if len(password) < 20 || password == test.AdminPassword {
		t.Fatalf("weak generated password %q", password)
	}
	if status := tokenStatus(t, p.URL, "admin", password); status != http.StatusOK {
		t.Fatalf("login with the generated password: %d", status)
	}
	if status := tokenStatus(t, p.URL, "admin", "admin"); status != http.StatusUnauthorized {
		t.Fatalf("login with a default password: %d", status)
	}
	p.Stop()

	p2 := test.StartKeppel(t, "KEPPEL_ADMIN_PASSWORD=", "KEPPEL_DATA_DIR="+dataDir, "KEPPEL_LOG_LEVEL=info")
	waitForLog(t, p2, "keppel is listening")
	if strings.Contains(p2.Log(), "password:") {
		t.Fatalf("restart printed a password again:\n%s", p2.Log())
	}
	if status := tokenStatus(t, p2.URL, "admin", password); status != http.StatusOK {
		t.Fatalf("login after restart: %d", status)
	}
	// The key that signs tokens is kept as well: a file only the owner can read.
	info, err := os.Stat(filepath.Join(dataDir, "token-key.pem"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token key: %v %v", info, err)
	}
}

func waitForLog(t *testing.T, p *test.Process, needle string) string {
	t.Helper()
	for i := 0; i < 100; i++ {
		if log := p.Log(); strings.Contains(log, needle) {
			return log
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%q not in the log:\n%s", needle, p.Log())
	return ""
}

func tokenStatus(t *testing.T, base, user, password string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/keppel/v1/auth?scope=registry:catalog:*", nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTLS serves HTTPS from a certificate and key file, and the challenge
// points clients at an https realm.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := writeSelfSignedCert(t, dir)
	p := test.StartKeppel(t, "KEPPEL_API_TLS_CERT_FILE="+certFile, "KEPPEL_API_TLS_KEY_FILE="+keyFile)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(p.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if challenge := resp.Header.Get("WWW-Authenticate"); !strings.Contains(challenge, `realm="https://`) {
		t.Fatalf("challenge %q does not name an https realm", challenge)
	}
}

func writeSelfSignedCert(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}
