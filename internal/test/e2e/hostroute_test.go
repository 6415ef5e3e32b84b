package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"keppel/internal/test"
)

// dialingTo is an HTTP transport that connects to addr whatever host a
// request names (as DNS for the registry's host names would).
func dialingTo(addr string) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
}

// TestAccountSubdomainMirror: with account subdomains, a pull-through
// account in front of a Distribution registry serves as a registry mirror
// (dockerd's registry-mirrors pulls library/app from the mirror's host):
// <account>.<public host>/v2/<repo> is the account's repository; pushes
// through a subdomain stay on it.
func TestAccountSubdomainMirror(t *testing.T) {
	t.Parallel()
	dist := test.StartDistribution(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	public := "keppel.test:" + port
	s := test.NewServer(t, test.Options{Listener: ln, Accounts: map[string]string{"team": "tenant1"}, Env: map[string]string{
		"KEPPEL_API_PUBLIC_URL": "http://" + public, "KEPPEL_API_ACCOUNT_SUBDOMAINS": "true"}})
	basic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+test.AdminPassword))}}
	if r := s.Do(t, "PUT", "/keppel/v1/accounts/dockerhub", "", basic, strings.NewReader(
		`{"account":{"auth_tenant_id":"tenant1","replication":{"strategy":"from_external_on_first_use","upstream":{"url":"http://`+dist+`"}}}}`)); r.Status != http.StatusCreated {
		t.Fatalf("creating the mirror account: %d %s", r.Status, r.Body)
	}

	img, err := random.Image(128<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := pushTo(t, dist, "library/app:v1", img)
	opts := []remote.Option{remote.WithTransport(dialingTo(ln.Addr().String())),
		remote.WithAuth(&authn.Basic{Username: "admin", Password: test.AdminPassword})}

	// the mirror's view: library/app on dockerhub.<public host>
	mirrored, err := name.ParseReference("dockerhub."+public+"/library/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(mirrored, opts...)
	if err != nil {
		t.Fatalf("pull through the account subdomain: %v", err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
	// the same repository under its full name
	full, _ := name.ParseReference(public+"/dockerhub/library/app:v1", name.Insecure)
	if d, err := remote.Head(full, opts...); err != nil || d.Digest != want {
		t.Fatalf("the replicated image under its full name: %+v, %v", d, err)
	}

	// a push through a subdomain (uploads follow Location headers)
	pushed, _ := name.ParseReference("team."+public+"/app:v1", name.Insecure)
	if err := remote.Write(pushed, img, opts...); err != nil {
		t.Fatalf("push through the account subdomain: %v", err)
	}
	back, _ := name.ParseReference(public+"/team/app:v1", name.Insecure)
	got, err := remote.Image(back, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatal(err)
	}
	// other host names are not account subdomains
	other, _ := name.ParseReference("team.elsewhere.test:"+port+"/app:v1", name.Insecure)
	if _, err := remote.Head(other, opts...); err == nil {
		t.Fatal("a foreign host name was served as an account subdomain")
	}
}

// TestAnycast: registries A and B of a federation share an anycast host
// name. A client that reaches A under it pulls B's images (A forwards the
// token request and the pulls to B); writes under it are refused; A's own
// accounts are served by A.
func TestAnycast(t *testing.T) {
	t.Parallel()
	const anycast = "registry.anycast.test"
	a, b := federatedPair(t, "KEPPEL_API_ANYCAST_URL=http://"+anycast)
	for _, c := range []struct {
		p       *test.Process
		account string
	}{{a, "at-a"}, {b, "at-b"}} {
		if status, body := adminDo(t, c.p, "PUT", "/keppel/v1/accounts/"+c.account, `{"account":{"auth_tenant_id":"tenant"}}`, nil); status != http.StatusCreated {
			t.Fatalf("creating %s: %d %s", c.account, status, body)
		}
	}
	imgA, _ := random.Image(64<<10, 2)
	imgB, _ := random.Image(64<<10, 2)
	if err := remote.Write(procRef(t, a, "at-a/app:v1"), imgA, adminAuth()); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(procRef(t, b, "at-b/app:v1"), imgB, adminAuth()); err != nil {
		t.Fatal(err)
	}
	// the client reaches A under the anycast name
	opts := []remote.Option{remote.WithTransport(dialingTo(a.Addr)), adminAuth()}
	for account, img := range map[string]v1.Image{"at-a": imgA, "at-b": imgB} {
		r, _ := name.ParseReference(anycast+"/"+account+"/app:v1", name.Insecure)
		pulled, err := remote.Image(r, opts...)
		if err != nil {
			t.Fatalf("pull of %s through anycast at A: %v", account, err)
		}
		if err := validate.Image(pulled); err != nil {
			t.Fatalf("pull of %s through anycast at A: %v", account, err)
		}
		want, _ := img.Digest()
		if got, _ := pulled.Digest(); got != want {
			t.Fatalf("%s through anycast: %s, want %s", account, got, want)
		}
	}
	// writes to B's account through A are refused
	r, _ := name.ParseReference(anycast+"/at-b/app:v2", name.Insecure)
	err := remote.Write(r, imgB, opts...)
	var te *transport.Error
	if err == nil || !errors.As(err, &te) || te.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("push through anycast: %v, want 405", err)
	}
	if !strings.Contains(err.Error(), "UNSUPPORTED") {
		t.Fatalf("push through anycast: %v, want UNSUPPORTED", err)
	}
}
