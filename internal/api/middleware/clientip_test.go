package middleware

import (
	"net/http"
	"testing"
)

func TestClientIP(t *testing.T) {
	r, err := NewClientIPResolver([]string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.5:1234", nil, "203.0.113.5"},
		// an untrusted peer cannot claim another address
		{"203.0.113.5:1234", []string{"198.51.100.7"}, "203.0.113.5"},
		// a trusted proxy can
		{"10.1.2.3:1234", []string{"198.51.100.7"}, "198.51.100.7"},
		{"192.0.2.1:80", []string{"198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		// a client cannot smuggle an address in front of the real one
		{"10.1.2.3:1234", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"10.1.2.3:1234", []string{"1.2.3.4", "198.51.100.7"}, "198.51.100.7"},
		{"10.1.2.3:1234", []string{"garbage"}, "10.1.2.3"},
		{"10.1.2.3:1234", nil, "10.1.2.3"},
		{"[2001:db8::1]:443", []string{"2001:db9::5"}, "2001:db9::5"},
		{"[2001:db9::1]:443", []string{"198.51.100.7"}, "2001:db9::1"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", "/", nil)
		req.RemoteAddr = c.remote
		for _, h := range c.xff {
			req.Header.Add("X-Forwarded-For", h)
		}
		if got := r.ClientIP(req); got.String() != c.want {
			t.Errorf("%s via %v: got %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	if _, err := NewClientIPResolver([]string{"not-a-cidr/99"}); err == nil {
		t.Error("bad CIDR accepted")
	}
}
