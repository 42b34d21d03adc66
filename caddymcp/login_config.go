package caddymcp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddymcp/caddymcp/caddymcp/login"
	"github.com/caddymcp/caddymcp/caddymcp/ratelimit"
)

// LoginProvider is an upstream identity provider users sign in with,
// or the development sign-in.
type LoginProvider struct {
	// Name identifies the provider in URLs (/auth/login/<name>):
	// lowercase letters, digits, '-' and '_'. "google" selects Google's
	// built-in settings. "dev" with Dev set is the development sign-in.
	Name string `json:"name,omitempty"`

	// Dev makes this the development sign-in (`login dev`): a form at
	// /auth/login/dev asks for an email address and a display name, and
	// signs in whoever fills it in as that address, marked verified, as
	// a user of provider "dev". Anyone who can reach the site can then
	// sign in as anyone, so Caddy refuses it unless the site is loopback
	// only: every listener address of its server is localhost,
	// 127.0.0.1 or [::1] (an explicit `bind`; not all interfaces), every
	// route of the server matches only those host names, and the
	// issuer, if set, is on one of them. It logs a warning at every
	// start. Name defaults to "dev" and must be "dev"; Issuer, ClientID,
	// ClientSecret and Scopes must be empty. The access policy applies
	// as for any provider.
	Dev bool `json:"dev,omitempty"`

	// Issuer is the OpenID Connect issuer URL; its discovery document is
	// read at the first login. Default for "google":
	// https://accounts.google.com.
	Issuer string `json:"issuer,omitempty"`

	// ClientID is this server's client id at the provider. Supports
	// `{env.*}` and `{file.*}` placeholders.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is this server's client secret at the provider.
	// Supports `{env.*}` and `{file.*}` placeholders; write it as one.
	ClientSecret string `json:"client_secret,omitempty"`

	// Scopes requested upstream. Default: openid email profile.
	Scopes []string `json:"scopes,omitempty"`

	// Label is the button text on the login page. Default: the name.
	Label string `json:"label,omitempty"`
}

// AccessRule lets some users in, and says which scopes they may grant.
// Access is denied unless a rule matches.
type AccessRule struct {
	// Everyone matches every signed-in user ("allow *").
	Everyone bool `json:"everyone,omitempty"`

	// Emails match users by verified email address.
	Emails []string `json:"emails,omitempty"`

	// Domains match users by the domain of their verified email.
	Domains []string `json:"domains,omitempty"`

	// HostedDomains match Google Workspace users by their hd claim.
	HostedDomains []string `json:"hosted_domains,omitempty"`

	// Scopes the matched users may grant. Default: all scopes. A user
	// matched by several rules gets the union.
	Scopes []string `json:"scopes,omitempty"`
}

// loginServer builds the login core from the configured providers and
// rules, held to limit; nil when no provider is configured.
func (o *OAuthServer) loginServer(ctx caddy.Context, app *App, limit *ratelimit.RequestLimiter) (*login.Server, error) {
	if len(o.Login) == 0 {
		if len(o.Allow) > 0 {
			return nil, errors.New("allow rules need at least one login provider")
		}
		return nil, nil
	}
	providers := make([]login.Provider, 0, len(o.Login))
	for _, p := range o.Login {
		if p.Dev {
			dev, err := devProvider(p)
			if err != nil {
				return nil, err
			}
			providers = append(providers, dev)
			continue
		}
		id, err := resolve("login "+p.Name+" client_id", p.ClientID)
		if err != nil {
			return nil, err
		}
		secret, err := resolve("login "+p.Name+" client_secret", p.ClientSecret)
		if err != nil {
			return nil, err
		}
		lp := login.Provider{Name: p.Name, Issuer: p.Issuer, ClientID: id, ClientSecret: secret, Scopes: p.Scopes, Label: p.Label}
		if p.Name == "google" {
			g := login.Google(id, secret)
			if lp.Issuer == "" {
				lp.Issuer = g.Issuer
			}
			if lp.Scopes == nil {
				lp.Scopes = g.Scopes
			}
			if lp.Label == "" {
				lp.Label = g.Label
			}
		}
		if lp.Issuer == "" {
			return nil, fmt.Errorf("login %s: issuer is required", p.Name)
		}
		providers = append(providers, lp)
	}
	if len(o.Allow) == 0 {
		return nil, errors.New("no allow rule: nobody could sign in (write 'allow *' to let everyone in)")
	}
	rules := make([]login.Rule, 0, len(o.Allow))
	for _, r := range o.Allow {
		if err := validateScopes(r.Scopes); err != nil {
			return nil, err
		}
		lower := func(v []string) []string {
			out := make([]string, len(v))
			for i, s := range v {
				out[i] = strings.ToLower(s)
			}
			return out
		}
		rules = append(rules, login.Rule{Everyone: r.Everyone, Emails: lower(r.Emails), Domains: lower(r.Domains),
			HostedDomains: lower(r.HostedDomains), Scopes: r.Scopes})
	}
	issuer, err := resolve("issuer", o.Issuer)
	if err != nil {
		return nil, err
	}
	if issuer == "" {
		issuer = app.Issuer
	}
	base := ""
	if issuer != "" {
		base = originOf(issuer)
	}
	names := map[string]string{}
	for _, c := range o.Clients {
		if c.Name != "" {
			names[c.ID] = c.Name
		}
	}
	return login.New(login.Config{
		Providers:       providers,
		Rules:           rules,
		Store:           app.Store(),
		BaseURL:         base,
		SessionIdle:     durationOf(o.SessionIdle),
		SessionLifetime: durationOf(o.SessionLifetime),
		RateLimit:       limit,
		ScopeTools:      consentScopeTools(),
		ClientNames:     names,
		OnRevoke:        app.refreshDenyList,
		Logger:          ctx.Slogger(),
	})
}

// devProvider checks a development sign-in's settings and returns its
// provider.
func devProvider(p LoginProvider) (login.Provider, error) {
	if p.Name != "" && p.Name != login.DevName {
		return login.Provider{}, fmt.Errorf("login dev: the development sign-in is named %q, not %q", login.DevName, p.Name)
	}
	if p.Issuer != "" || p.ClientID != "" || p.ClientSecret != "" || p.Scopes != nil {
		return login.Provider{}, errors.New("login dev takes no issuer, client_id, client_secret or scopes")
	}
	dev := login.Dev()
	if p.Label != "" {
		dev.Label = p.Label
	}
	return dev, nil
}

// hasDevLogin reports whether the development sign-in is configured.
func (o *OAuthServer) hasDevLogin() bool {
	for _, p := range o.Login {
		if p.Dev {
			return true
		}
	}
	return false
}

// parseLogin reads `login google|oidc <name> { … }` and `login dev
// [{ label <text> }]`.
func (o *OAuthServer) parseLogin(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	var p LoginProvider
	switch kind := d.Val(); kind {
	case "google":
		p.Name = "google"
	case "oidc":
		if !d.NextArg() {
			return d.Errf("login oidc needs a name")
		}
		p.Name = d.Val()
	case "dev":
		p.Name, p.Dev = login.DevName, true
	default:
		return d.Errf("login takes 'google', 'oidc <name>' or 'dev', not '%s'", kind)
	}
	if err := noArgs(d); err != nil {
		return err
	}
	for _, other := range o.Login {
		if other.Name == p.Name {
			return d.Errf("login provider '%s' is declared twice", p.Name)
		}
	}
	if p.Dev {
		if err := parseBlock(d, map[string]func() error{
			"label": func() error { return oneArg(d, &p.Label) },
		}); err != nil {
			return err
		}
		o.Login = append(o.Login, p)
		return nil
	}
	err := parseBlock(d, map[string]func() error{
		"issuer":        func() error { return oneArg(d, &p.Issuer) },
		"client_id":     func() error { return oneArg(d, &p.ClientID) },
		"client_secret": func() error { return oneArg(d, &p.ClientSecret) },
		"scopes":        func() error { return listArg(d, &p.Scopes) },
		"label":         func() error { return oneArg(d, &p.Label) },
	})
	if err != nil {
		return err
	}
	if p.ClientID == "" {
		return d.Errf("login %s needs client_id", p.Name)
	}
	if p.Name != "google" && p.Issuer == "" {
		return d.Errf("login oidc %s needs issuer", p.Name)
	}
	o.Login = append(o.Login, p)
	return nil
}

// parseAllow reads `allow * | email <a…> | domain <d…> | hosted_domain
// <d…> [{ scopes <scope…> }]`.
func (o *OAuthServer) parseAllow(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	var r AccessRule
	kind := d.Val()
	if kind == "*" {
		r.Everyone = true
		if err := noArgs(d); err != nil {
			return err
		}
	} else {
		var dst *[]string
		switch kind {
		case "email":
			dst = &r.Emails
		case "domain":
			dst = &r.Domains
		case "hosted_domain":
			dst = &r.HostedDomains
		default:
			return d.Errf("allow takes '*', 'email', 'domain' or 'hosted_domain', not '%s'", kind)
		}
		if err := listArg(d, dst); err != nil {
			return err
		}
	}
	err := parseBlock(d, map[string]func() error{
		"scopes": func() error { return scopesArg(d, &r.Scopes) },
	})
	if err != nil {
		return err
	}
	o.Allow = append(o.Allow, r)
	return nil
}

func originOf(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host
}
