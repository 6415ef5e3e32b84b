package oidc

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"keppel/internal/models"
)

// DefaultUsernameClaim is the ID token claim that names the user when
// Config.UsernameClaim is empty.
const DefaultUsernameClaim = "preferred_username"

// DefaultScopes are the scopes requested in the password grant when
// Config.Scopes is empty.
var DefaultScopes = []string{"openid", "profile"}

// Config configures the OpenID Connect credential driver.
type Config struct {
	// IssuerURL is the provider's issuer identifier exactly as it appears in
	// its discovery document and in the "iss" claim of its ID tokens. It must
	// be an https URL; plain http is accepted for loopback hosts only.
	IssuerURL string `yaml:"issuer_url"`
	// ClientID is the client registered for the registry at the provider.
	// ID tokens must name it in their audience.
	ClientID string `yaml:"client_id"`
	// ClientSecret authenticates the client in the password grant. It may be
	// empty for a public client.
	ClientSecret string `yaml:"client_secret"`
	// UsernameClaim is the ID token claim that holds the user name
	// (default "preferred_username"). When a token lacks it, or it is not a
	// non-empty string, the "sub" claim is used instead.
	UsernameClaim string `yaml:"username_claim"`
	// Scopes are requested in the password grant (default "openid" and
	// "profile"). They must include "openid".
	Scopes []string `yaml:"scopes"`
	// AdminClaim and AdminValue make users whose ID token claim AdminClaim
	// (a string or a list of strings) contains AdminValue server
	// administrators, e.g. claim "groups" containing "keppel-admins". Both
	// are set or both are empty.
	AdminClaim string `yaml:"admin_claim"`
	AdminValue string `yaml:"admin_value"`
	// RoleMappings grant roles in auth tenants by ID token claims. When a
	// user matches several mappings for one tenant, the highest role wins.
	RoleMappings []RoleMapping `yaml:"role_mappings"`
	// HTTPClient talks to the provider (discovery, keys, token endpoint).
	// The default has a timeout of 15 seconds.
	HTTPClient *http.Client `yaml:"-"`
}

// RoleMapping grants Role in the auth tenant AuthTenantID to users whose ID
// token claim Claim (a string or a list of strings) contains Value.
type RoleMapping struct {
	Claim        string      `yaml:"claim"`
	Value        string      `yaml:"value"`
	AuthTenantID string      `yaml:"auth_tenant_id"`
	Role         models.Role `yaml:"role"`
}

// withDefaults returns a validated copy of c with defaults filled in. Errors
// name the offending field.
func (c Config) withDefaults() (Config, error) {
	if c.IssuerURL == "" {
		return c, fmt.Errorf("oidc: IssuerURL is required")
	}
	if err := checkIssuerURL(c.IssuerURL); err != nil {
		return c, fmt.Errorf("oidc: IssuerURL: %w", err)
	}
	if strings.TrimSpace(c.ClientID) == "" {
		return c, fmt.Errorf("oidc: ClientID is required")
	}
	if c.UsernameClaim == "" {
		c.UsernameClaim = DefaultUsernameClaim
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	for i, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return c, fmt.Errorf("oidc: Scopes[%d]: %q is not a valid scope", i, s)
		}
	}
	if !slices.Contains(c.Scopes, "openid") {
		return c, fmt.Errorf(`oidc: Scopes must include "openid"`)
	}
	if (c.AdminClaim == "") != (c.AdminValue == "") {
		return c, fmt.Errorf("oidc: AdminClaim and AdminValue must be set together")
	}
	for i, m := range c.RoleMappings {
		switch {
		case m.Claim == "":
			return c, fmt.Errorf("oidc: RoleMappings[%d].Claim is required", i)
		case m.Value == "":
			return c, fmt.Errorf("oidc: RoleMappings[%d].Value is required", i)
		case m.AuthTenantID == "":
			return c, fmt.Errorf("oidc: RoleMappings[%d].AuthTenantID is required", i)
		}
		switch m.Role {
		case models.RoleViewer, models.RolePusher, models.RoleAdmin:
		default:
			return c, fmt.Errorf("oidc: RoleMappings[%d].Role: %q is not one of %q, %q, %q",
				i, m.Role, models.RoleViewer, models.RolePusher, models.RoleAdmin)
		}
	}
	c.RoleMappings = slices.Clone(c.RoleMappings)
	return c, nil
}

// checkIssuerURL accepts absolute https URLs, and http URLs of loopback
// hosts (for tests and local providers). Query and fragment are not allowed
// in an issuer identifier.
func checkIssuerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return fmt.Errorf("%q must not contain user info, a query or a fragment", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http is accepted for loopback hosts only)", s)
	default:
		return fmt.Errorf("%q must use https", s)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
