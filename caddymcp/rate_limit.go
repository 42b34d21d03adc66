package caddymcp

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/ratelimit"
)

// RateLimits are mcp_oauth's per-client request limits. A client is an
// IP address as Caddy determines it: the connection's address, or the
// address a trusted proxy reports (the server's `trusted_proxies` and
// `client_ip_headers`); an IPv6 client is its whole network of
// IPv6Prefix bits. A request over its limit gets `429 Too Many Requests`
// with `Retry-After` (seconds): the JSON endpoints answer the OAuth error
// `too_many_requests`, the browser endpoints an error page. Limits are on
// by default; the state is in memory, per instance, and starts afresh
// when the config is reloaded.
type RateLimits struct {
	// Disabled turns every limit off.
	Disabled bool `json:"disabled,omitempty"`

	// Register limits dynamic client registration
	// (`POST /oauth/register`). Default: 10 per minute, bursts of 20.
	Register *RateLimit `json:"register,omitempty"`

	// Token limits the token endpoint (`POST /oauth/token`). Default: 600
	// per minute, bursts of 100.
	Token *RateLimit `json:"token,omitempty"`

	// Authorize limits the authorization endpoint and the consent form
	// (`/oauth/authorize` and `POST /oauth/consent`, counted together).
	// Default: 60 per minute, bursts of 30.
	Authorize *RateLimit `json:"authorize,omitempty"`

	// Login limits the start of a sign-in and the identity provider's
	// callback (`/auth/login`, `/auth/login/<provider>` and
	// `/auth/callback/<provider>`). Default: 60 per minute, bursts of 30.
	Login *RateLimit `json:"login,omitempty"`

	// IPv6Prefix is the length in bits of the IPv6 network counted as
	// one client, 1 to 128. Default: 64, the smallest network a
	// subscriber is usually given.
	IPv6Prefix int `json:"ipv6_prefix,omitempty"`
}

// RateLimit is the limit of one endpoint: a token bucket per client that
// holds Burst requests and refills at Requests per Window.
type RateLimit struct {
	// Disabled turns this endpoint's limit off.
	Disabled bool `json:"disabled,omitempty"`

	// Requests is how many requests a client may make per Window, on
	// average. Required unless Disabled.
	Requests int `json:"requests,omitempty"`

	// Window is the period Requests are counted over. Required unless
	// Disabled.
	Window caddy.Duration `json:"window,omitempty"`

	// Burst is how many requests a client that has been idle may make at
	// once. Default: Requests.
	Burst int `json:"burst,omitempty"`
}

// defaultRateLimits are the limits of endpoints that RateLimits leaves
// unset. Each is generous for many people behind one NAT and still stops
// one address from filling the client registry, flooding the database or
// driving sign-ins at the identity provider.
var defaultRateLimits = map[string]ratelimit.Rate{
	// One registration per client install; a crowd arriving together
	// (20) passes at once, and one address needs about 17 hours to fill
	// the default 10000 registrations instead of seconds.
	"register": {Requests: 10, Window: time.Minute, Burst: 20},
	// Ten requests a second from one address: far above what clients
	// refreshing hourly tokens need, well below what the endpoint serves.
	"token": {Requests: 600, Window: time.Minute, Burst: 100},
	// A sign-in is about three requests of each kind, so one address may
	// start ten at once and twenty a minute.
	"authorize": {Requests: 60, Window: time.Minute, Burst: 30},
	"login":     {Requests: 60, Window: time.Minute, Burst: 30},
}

// rateLimiters are the provisioned limiters; nil fields mean no limit.
type rateLimiters struct {
	oauth oauth.RateLimits
	login *ratelimit.RequestLimiter
}

// rateLimiters builds the limiters of o.RateLimit over the defaults.
func (o *OAuthServer) rateLimiters() (rateLimiters, error) {
	cfg := o.RateLimit
	if cfg == nil {
		cfg = new(RateLimits)
	}
	if cfg.Disabled {
		return rateLimiters{}, nil
	}
	bits := cfg.IPv6Prefix
	switch {
	case bits == 0:
		bits = ratelimit.DefaultIPv6Prefix
	case bits < 1 || bits > 128:
		return rateLimiters{}, fmt.Errorf("rate_limit ipv6_prefix: %d is not between 1 and 128", bits)
	}
	key := clientIPKey(bits)
	build := func(name string, l *RateLimit) (*ratelimit.RequestLimiter, error) {
		rate := defaultRateLimits[name]
		if l != nil {
			if l.Disabled {
				return nil, nil
			}
			rate = ratelimit.Rate{Requests: l.Requests, Window: time.Duration(l.Window), Burst: l.Burst}
		}
		lim, err := ratelimit.New(ratelimit.Config{Rate: rate})
		if err != nil {
			return nil, fmt.Errorf("rate_limit %s: %w", name, err)
		}
		return ratelimit.NewRequestLimiter(lim, key), nil
	}
	var out rateLimiters
	var err [4]error
	out.oauth.Register, err[0] = build("register", cfg.Register)
	out.oauth.Token, err[1] = build("token", cfg.Token)
	out.oauth.Authorize, err[2] = build("authorize", cfg.Authorize)
	out.login, err[3] = build("login", cfg.Login)
	return out, errors.Join(err[:]...)
}

// clientIPKey keys requests by the client IP address Caddy determined for
// them, which honours the server's trusted_proxies and client_ip_headers;
// IPv6 addresses by their network of ipv6Bits bits. A request whose
// address Caddy could not tell (a Unix socket without
// trusted_proxies_unix) is not limited: all such requests come from one
// local proxy, and counting them together would hold every user to one
// client's limit.
func clientIPKey(ipv6Bits int) ratelimit.KeyFunc {
	return func(r *http.Request) string {
		if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
			return ratelimit.IPKey(ip, ipv6Bits)
		}
		return ratelimit.RemoteAddrKey(ipv6Bits)(r)
	}
}

// parseRateLimit reads `rate_limit off` or
//
//	rate_limit {
//		register|token|authorize|login <requests>/<window> [<burst>] | off
//		ipv6_prefix <bits>
//	}
func (o *OAuthServer) parseRateLimit(d *caddyfile.Dispenser) error {
	if o.RateLimit != nil {
		return d.Err("rate_limit already specified")
	}
	rl := new(RateLimits)
	o.RateLimit = rl
	return offOrBlock(d, &rl.Disabled, map[string]func() error{
		"register":  func() error { return rateLimitArg(d, &rl.Register) },
		"token":     func() error { return rateLimitArg(d, &rl.Token) },
		"authorize": func() error { return rateLimitArg(d, &rl.Authorize) },
		"login":     func() error { return rateLimitArg(d, &rl.Login) },
		"ipv6_prefix": func() error {
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			if rl.IPv6Prefix != 0 {
				return d.Err("rate_limit ipv6_prefix already specified")
			}
			bits, err := strconv.Atoi(v)
			if err != nil || bits < 1 || bits > 128 {
				return d.Errf("rate_limit ipv6_prefix: '%s' is not a number of bits between 1 and 128", v)
			}
			rl.IPv6Prefix = bits
			return nil
		},
	})
}

// rateLimitArg reads `<requests>/<window> [<burst>]` or `off`.
func rateLimitArg(d *caddyfile.Dispenser, dst **RateLimit) error {
	name := d.Val()
	if *dst != nil {
		return d.Errf("rate_limit %s already specified", name)
	}
	args := d.RemainingArgs()
	if len(args) == 1 && args[0] == "off" {
		*dst = &RateLimit{Disabled: true}
		return nil
	}
	if len(args) < 1 || len(args) > 2 {
		return d.Errf("rate_limit %s takes <requests>/<window> [<burst>] or off", name)
	}
	requests, window, err := parseRate(args[0])
	if err != nil {
		return d.Errf("rate_limit %s: %v", name, err)
	}
	l := &RateLimit{Requests: requests, Window: caddy.Duration(window)}
	if len(args) == 2 {
		l.Burst, err = strconv.Atoi(args[1])
		if err != nil || l.Burst < 1 {
			return d.Errf("rate_limit %s: burst '%s' is not a positive integer", name, args[1])
		}
	}
	rate := ratelimit.Rate{Requests: l.Requests, Window: window, Burst: l.Burst}
	if err := rate.Validate(); err != nil {
		return d.Errf("rate_limit %s: %v", name, err)
	}
	*dst = l
	return nil
}

// parseRate reads `<requests>/<window>`, where the window is s, m, h or
// a duration such as 15m.
func parseRate(s string) (int, time.Duration, error) {
	n, unit, ok := strings.Cut(s, "/")
	requests, err := strconv.Atoi(n)
	if !ok || err != nil || requests < 1 {
		return 0, 0, fmt.Errorf("'%s' is not <requests>/<window>, such as 20/m or 100/15m", s)
	}
	var window time.Duration
	switch unit {
	case "s":
		window = time.Second
	case "m":
		window = time.Minute
	case "h":
		window = time.Hour
	default:
		window, err = caddy.ParseDuration(unit)
		if err != nil || window <= 0 {
			return 0, 0, fmt.Errorf("'%s': the window '%s' is not s, m, h or a positive duration", s, unit)
		}
	}
	return requests, window, nil
}
