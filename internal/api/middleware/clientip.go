package middleware

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// ClientIPResolver finds the address a request came from. X-Forwarded-For is
// believed only when the direct peer is one of the trusted proxies, and then
// only up to the first address that is not itself a trusted proxy.
type ClientIPResolver struct {
	trusted []*net.IPNet
}

// NewClientIPResolver parses the trusted proxies (CIDRs or single addresses).
func NewClientIPResolver(trustedProxies []string) (*ClientIPResolver, error) {
	r := &ClientIPResolver{}
	for _, s := range trustedProxies {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			if ip := net.ParseIP(s); ip != nil && ip.To4() != nil {
				s += "/32"
			} else {
				s += "/128"
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		r.trusted = append(r.trusted, n)
	}
	return r, nil
}

func (c *ClientIPResolver) isTrusted(ip net.IP) bool {
	for _, n := range c.trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ClientIP returns the request's client address (nil if unparsable).
func (c *ClientIPResolver) ClientIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || !c.isTrusted(ip) {
		return ip
	}
	// Walk X-Forwarded-For from the right: each hop was added by the proxy
	// before it; stop at the first one that is not a trusted proxy.
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop := net.ParseIP(strings.TrimSpace(hops[i]))
		if hop == nil {
			return ip
		}
		ip = hop
		if !c.isTrusted(hop) {
			return hop
		}
	}
	return ip
}
