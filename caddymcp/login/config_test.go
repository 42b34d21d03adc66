package login

import (
	"strings"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func TestNew(t *testing.T) {
	st, err := store.OpenEmbedded(t.TempDir() + "/unused.db")
	if err != nil {
		t.Fatal(err)
	}
	good := func() Config {
		return Config{
			Providers: []Provider{Google("id.apps.example", "secret")},
			Rules:     []Rule{{Domains: []string{"example.com"}}},
			Store:     st,
		}
	}
	tests := []struct {
		name   string
		change func(*Config)
		err    string // "" for success
	}{
		{"valid", func(*Config) {}, ""},
		{"loopback http issuer", func(c *Config) {
			c.Providers = append(c.Providers, Provider{Name: "local_1", Issuer: "http://127.0.0.1:9000/realms/x", ClientID: "c"})
		}, ""},
		{"base URL", func(c *Config) { c.BaseURL = "https://mcp.example.com" }, ""},
		{"no store", func(c *Config) { c.Store = nil }, "no store"},
		{"no provider", func(c *Config) { c.Providers = nil }, "no provider"},
		{"duplicate provider", func(c *Config) { c.Providers = append(c.Providers, Google("b", "c")) }, "twice"},
		{"uppercase name", func(c *Config) { c.Providers[0].Name = "Google" }, "lowercase"},
		{"empty name", func(c *Config) { c.Providers[0].Name = "" }, "lowercase"},
		{"slash in name", func(c *Config) { c.Providers[0].Name = "a/b" }, "lowercase"},
		{"http issuer", func(c *Config) { c.Providers[0].Issuer = "http://accounts.example.com" }, "https"},
		{"relative issuer", func(c *Config) { c.Providers[0].Issuer = "accounts.example.com" }, "absolute"},
		{"issuer with query", func(c *Config) { c.Providers[0].Issuer = "https://a.example?x=1" }, "query"},
		{"no client id", func(c *Config) { c.Providers[0].ClientID = "" }, "client id"},
		{"bad upstream scope", func(c *Config) { c.Providers[0].Scopes = []string{"a b"} }, "scope"},
		{"development sign-in alone", func(c *Config) { c.Providers = []Provider{Dev()} }, ""},
		{"development sign-in and Google", func(c *Config) { c.Providers = append(c.Providers, Dev()) }, ""},
		{"development sign-in twice", func(c *Config) { c.Providers = []Provider{Dev(), Dev()} }, "twice"},
		{"development sign-in with an issuer", func(c *Config) {
			d := Dev()
			d.Issuer = "https://accounts.example.com"
			c.Providers = []Provider{d}
		}, "takes no issuer"},
		{"development sign-in with a client id", func(c *Config) {
			d := Dev()
			d.ClientID = "c"
			c.Providers = []Provider{d}
		}, "takes no issuer, client id"},
		{"development sign-in with scopes", func(c *Config) {
			d := Dev()
			d.Scopes = []string{"openid"}
			c.Providers = []Provider{d}
		}, "scopes"},
		{"development sign-in with a bad name", func(c *Config) {
			d := Dev()
			d.Name = "Dev"
			c.Providers = []Provider{d}
		}, "lowercase"},
		{"no rules", func(c *Config) { c.Rules = nil }, "no access rule"},
		{"empty rule", func(c *Config) { c.Rules = []Rule{{Scopes: []string{"a"}}} }, "matches nobody"},
		{"bad email", func(c *Config) { c.Rules[0].Emails = []string{"alice"} }, "email"},
		{"bad domain", func(c *Config) { c.Rules[0].Domains = []string{"@example.com"} }, "domain"},
		{"bad scope", func(c *Config) { c.Rules[0].Scopes = []string{`a"b`} }, "scope"},
		{"http base URL", func(c *Config) { c.BaseURL = "http://mcp.example.com" }, "https"},
		{"base URL with path", func(c *Config) { c.BaseURL = "https://mcp.example.com/x" }, "path"},
		{"negative idle", func(c *Config) { c.SessionIdle = -1 }, "negative"},
		{"negative lifetime", func(c *Config) { c.SessionLifetime = -1 }, "negative"},
		{"negative HTTP timeout", func(c *Config) { c.HTTPTimeout = -1 }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			s, err := New(c)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.cfg.SessionIdle != DefaultSessionIdle || s.cfg.SessionLifetime != DefaultSessionLifetime ||
					s.cfg.Now == nil || s.cfg.Random == nil ||
					s.cfg.HTTPTimeout != DefaultHTTPTimeout || s.cfg.HTTPClient.Timeout != DefaultHTTPTimeout {
					t.Errorf("defaults not filled in: %+v", s.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want one about %q", err, tt.err)
			}
		})
	}
}

func TestGoogle(t *testing.T) {
	p := Google("id", "secret")
	if p.Name != "google" || p.Issuer != "https://accounts.google.com" || p.Label != "Google" ||
		p.ClientID != "id" || p.ClientSecret != "secret" || strings.Join(p.Scopes, " ") != "openid email profile" {
		t.Errorf("Google() = %+v", p)
	}
	pp, err := newProvider(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pp.issuers, " ") != "https://accounts.google.com accounts.google.com" {
		t.Errorf("accepted issuers %q", pp.issuers)
	}
}

func TestHandles(t *testing.T) {
	s := &Server{}
	for path, want := range map[string]bool{
		"/auth/login":           true,
		"/auth/login/google":    true,
		"/auth/callback/google": true,
		"/auth/me":              true,
		"/auth/logout":          true,
		"/auth":                 false,
		"/auth/":                false,
		"/auth/mee":             false,
		"/oauth/authorize":      false,
		"/":                     false,
	} {
		if got := s.Handles(path); got != want {
			t.Errorf("Handles(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestSafeReturn(t *testing.T) {
	for v, want := range map[string]bool{
		"/":                      true,
		"/oauth/authorize?a=b&c": true,
		"/x?u=https://evil.com":  true,
		"":                       false,
		"//evil.com":             false,
		`/\evil.com`:             false,
		"/\t/evil.com":           false,
		"/ /evil.com":            false,
		"https://evil.com":       false,
		"evil.com":               false,
		"/a\r\nLocation: x":      false,
	} {
		if got := safeReturn(v); got != want {
			t.Errorf("safeReturn(%q) = %v, want %v", v, got, want)
		}
	}
}
