package test

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// LoadBalancer spreads requests over keppel processes round-robin, as the
// load balancer of a distributed deployment does. Start it before the
// processes, so that they can be given its URL as their public URL.
type LoadBalancer struct {
	// URL is the base URL clients use, Addr its host:port.
	URL, Addr string

	mu       sync.Mutex
	backends []*url.URL
	next     int
}

// StartLoadBalancer listens on a loopback port until the test ends.
func StartLoadBalancer(t testing.TB) *LoadBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := &LoadBalancer{Addr: ln.Addr().String()}
	lb.URL = "http://" + lb.Addr
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(lb.pick())
			r.Out.Host = r.In.Host // the processes see the public host
			r.SetXForwarded()
		},
	}
	srv := &http.Server{Handler: proxy}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return lb
}

// SetBackends replaces the processes that requests go to.
func (lb *LoadBalancer) SetBackends(ps ...*Process) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.backends = lb.backends[:0]
	for _, p := range ps {
		u, _ := url.Parse(p.URL)
		lb.backends = append(lb.backends, u)
	}
}

func (lb *LoadBalancer) pick() *url.URL {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if len(lb.backends) == 0 {
		return &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	}
	u := lb.backends[lb.next%len(lb.backends)]
	lb.next++
	return u
}
