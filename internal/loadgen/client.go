// Package loadgen is the benchmark driver behind `keppel bench`: it speaks
// the raw OCI distribution API over plain net/http, with the Docker token
// flow, against a registry on loopback, and measures scenarios such as blob
// push and pull, manifest reads and writes, listings and a pull storm.
//
// It refuses every target that is not a loopback address: the dialer itself
// checks each connection, so neither token realms nor upload locations can
// lead it elsewhere.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrNotLoopback is returned for a registry, token realm or upload location
// whose host is not a loopback IP address.
var ErrNotLoopback = errors.New("only loopback addresses (127.0.0.0/8, ::1) may be benchmarked")

// CheckLoopback returns an error unless the URL is http(s) with a host that
// is a literal loopback IP address.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("parsing %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", rawURL)
	}
	if !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q: %w", rawURL, ErrNotLoopback)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Client is an OCI registry client for one registry. It is safe for
// concurrent use; all requests share one transport.
type Client struct {
	base     string
	username string
	password string
	http     *http.Client

	mu     sync.Mutex
	tokens map[string]string // scope → bearer token
}

// NewClient returns a client for the registry at baseURL (which must be on
// loopback). Empty credentials mean anonymous access, as with a
// Distribution registry that has no auth.
func NewClient(baseURL, username, password string, maxConns int) (*Client, error) {
	if err := CheckLoopback(baseURL); err != nil {
		return nil, err
	}
	if maxConns < 1 {
		maxConns = 1
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if !isLoopbackHost(host) {
				return nil, fmt.Errorf("dialing %s: %w", addr, ErrNotLoopback)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        maxConns * 2,
		MaxIdleConnsPerHost: maxConns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &Client{
		base:     strings.TrimRight(baseURL, "/"),
		username: username,
		password: password,
		http: &http.Client{
			Transport: tr,
			Timeout:   5 * time.Minute,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				if !isLoopbackHost(req.URL.Hostname()) {
					return fmt.Errorf("redirect to %s: %w", req.URL.Host, ErrNotLoopback)
				}
				return nil
			},
		},
		tokens: map[string]string{},
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// request describes one API call. Scope is the token scope the call needs
// (the cache key); Body, if set, must return a fresh reader each call so
// that the request can be repeated after a token fetch.
type request struct {
	Method  string
	Path    string // path and query below the base URL, or an absolute URL
	Scope   string
	Header  http.Header
	Body    func() io.Reader
	Length  int64
	Expect  []int
	Discard bool // read and drop the body (for status-only calls)
}

// StatusError is an unexpected HTTP status.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d %s", e.Method, e.Path, e.Status, e.Body)
}

// do sends the request, answering one Bearer challenge with a token fetch.
// The caller must close the response body on success.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	for attempt := 0; attempt < 2; attempt++ {
		token := c.cachedToken(r.Scope)
		if attempt == 0 && token == "" && r.Body != nil && r.Length > 1<<20 {
			// Do not send a large body only to learn that a token is needed.
			if err := c.authenticate(ctx, r.Scope); err != nil {
				return nil, err
			}
			token = c.cachedToken(r.Scope)
		}
		resp, err := c.send(ctx, r, token)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			challenge := resp.Header.Get("WWW-Authenticate")
			drain(resp)
			if !strings.HasPrefix(strings.ToLower(challenge), "bearer ") {
				return nil, &StatusError{r.Method, r.Path, http.StatusUnauthorized, "no Bearer challenge"}
			}
			if err := c.fetchToken(ctx, r.Scope, challenge); err != nil {
				return nil, err
			}
			continue
		}
		if !expected(resp.StatusCode, r.Expect) {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			drain(resp)
			return nil, &StatusError{r.Method, r.Path, resp.StatusCode, strings.TrimSpace(string(body))}
		}
		return resp, nil
	}
	return nil, &StatusError{r.Method, r.Path, http.StatusUnauthorized, "token was not accepted"}
}

// call is do for requests whose body is read and dropped; it returns the
// response headers and the number of body bytes.
func (c *Client) call(ctx context.Context, r request) (http.Header, int64, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header, n, err
}

func expected(status int, want []int) bool {
	if len(want) == 0 {
		return status >= 200 && status < 300
	}
	for _, w := range want {
		if status == w {
			return true
		}
	}
	return false
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

func (c *Client) url(path string) string {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	return c.base + path
}

func (c *Client) send(ctx context.Context, r request, token string) (*http.Response, error) {
	var body io.Reader
	if r.Body != nil {
		body = r.Body()
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.url(r.Path), body)
	if err != nil {
		return nil, err
	}
	if r.Body != nil {
		req.ContentLength = r.Length
		if r.Length == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return c.http.Do(req)
}

func (c *Client) cachedToken(scope string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[scope]
}

// authenticate learns the realm from an unauthenticated GET /v2/ and fetches
// a token for the scope. Registries without auth answer 200: then there is
// nothing to do.
func (c *Client) authenticate(ctx context.Context, scope string) error {
	resp, err := c.send(ctx, request{Method: http.MethodGet, Path: "/v2/"}, "")
	if err != nil {
		return err
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	drain(resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(strings.ToLower(challenge), "bearer ") {
		return nil
	}
	return c.fetchToken(ctx, scope, challenge)
}

// fetchToken fetches a token from the challenge's realm for the challenged
// scope (or, if the challenge names none, the request's scope) and caches it
// under the request's scope.
func (c *Client) fetchToken(ctx context.Context, scope, challenge string) error {
	params := parseChallenge(challenge)
	realm := params["realm"]
	if realm == "" {
		return errors.New("Bearer challenge without realm")
	}
	if err := CheckLoopback(realm); err != nil {
		return fmt.Errorf("token realm: %w", err)
	}
	q := url.Values{}
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	want := params["scope"]
	if want == "" {
		want = scope
	}
	for _, s := range strings.Fields(want) {
		q.Add("scope", s)
	}
	sep := "?"
	if strings.Contains(realm, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm+sep+q.Encode(), nil)
	if err != nil {
		return err
	}
	if c.username != "" || c.password != "" {
		req.SetBasicAuth(c.username, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("fetching a token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fetching a token for %q: HTTP %d %s", want, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var out struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return fmt.Errorf("decoding the token response: %w", err)
	}
	token := out.Token
	if token == "" {
		token = out.AccessToken
	}
	if token == "" {
		return errors.New("token response without token")
	}
	c.mu.Lock()
	c.tokens[scope] = token
	c.mu.Unlock()
	return nil
}

// parseChallenge parses the parameters of `Bearer k="v",k2="v2"`.
func parseChallenge(h string) map[string]string {
	out := map[string]string{}
	_, rest, _ := strings.Cut(h, " ")
	for i := 0; i < 32 && rest != ""; i++ { // bounded: a challenge has few parameters
		rest = strings.TrimLeft(rest, " ,")
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			end := strings.Index(after[1:], `"`)
			if end < 0 {
				val, rest = after[1:], ""
			} else {
				val, rest = after[1:1+end], after[2+end:]
			}
		} else {
			val, rest, _ = strings.Cut(after, ",")
		}
		out[key] = val
	}
	return out
}
