package caddymcp

// The development sign-in (`login dev`) lets anyone who reaches the site
// sign in as any address, so mcp_oauth refuses it unless the site is
// loopback only. The check runs in Provision, where `caddy validate`,
// `caddy run` and every reload reach it, and reads the HTTP server the
// handler is being provisioned in (caddyhttp.ServerCtxKey): its listener
// addresses, already resolved, and its routes' host matchers, already
// provisioned. So a JSON config is held to it as much as a Caddyfile.
//
// The Caddyfile's directive parser is no place for it: the Helper it
// gets does not expose the site block's addresses, and `bind` and global
// options are applied to the server only after the directives are
// parsed.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// devHosts are the names a site with the development sign-in may answer
// to and listen on.
var devHosts = map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}

// devAllowed is the end of every refusal.
const devAllowed = "only localhost, 127.0.0.1 and [::1] are allowed"

// devRefusal is the error of a site that is not loopback only.
func devRefusal(format string, args ...any) error {
	return fmt.Errorf("mcp_oauth: login dev is for development only: "+format+"; "+devAllowed, args...)
}

// isDevHost reports whether a host name (without port; an IPv6 address
// with or without brackets) is one devHosts allows.
func isDevHost(h string) bool {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return devHosts[strings.ToLower(h)]
}

// checkDevSite refuses a development sign-in in a server that listens or
// answers beyond loopback, or whose issuer is elsewhere: issuer is the
// resolved issuer ("" for the request's origin, which the host matchers
// then bound). srv is the server mcp_oauth is provisioned in, nil when
// there is none.
func checkDevSite(srv *caddyhttp.Server, issuer string) error {
	if srv == nil {
		return devRefusal("it is not in a site of the http app, whose addresses could be checked")
	}
	if issuer != "" {
		u, err := url.Parse(issuer)
		if err != nil || !isDevHost(u.Hostname()) {
			return devRefusal("the issuer is %s", issuer)
		}
	}
	for _, addr := range srv.Listen {
		if err := checkDevListener(addr); err != nil {
			return err
		}
	}
	// Every route of the server counts, not only the site's: a request
	// reaches mcp_oauth only through the server's routes (or its error
	// routes, after one of them failed), so if each of them matches
	// loopback host names only, no other Host gets to it.
	for _, routes := range []caddyhttp.RouteList{srv.Routes, errorRoutes(srv)} {
		for _, r := range routes {
			if err := checkDevRoute(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDevListener refuses a listener address that is not a loopback
// host: no host (every interface), a wildcard, another address, a Unix
// socket or a file descriptor (both of which a proxy may expose).
func checkDevListener(addr string) error {
	na, err := caddy.ParseNetworkAddress(addr)
	switch {
	case err != nil:
		return devRefusal("its listener address %q cannot be read: %v", addr, err)
	case !na.IsUnixNetwork() && !na.IsFdNetwork() && na.Host == "":
		return devRefusal("the site listens on %s, on every network interface; bind it to loopback (bind localhost)", addr)
	case na.IsUnixNetwork() || na.IsFdNetwork() || !isDevHost(na.Host):
		return devRefusal("the site listens on %s", addr)
	}
	return nil
}

// errorRoutes are a server's error routes, if it has any.
func errorRoutes(srv *caddyhttp.Server) caddyhttp.RouteList {
	if srv.Errors == nil {
		return nil
	}
	return srv.Errors.Routes
}

// checkDevRoute refuses a route that may match a request for a host
// other than a loopback one: a route without matchers, or one of whose
// matcher sets (any of which may match) has no host matcher or one that
// names another host.
func checkDevRoute(r caddyhttp.Route) error {
	sets, err := routeHosts(r)
	if err != nil {
		return devRefusal("the host names of its routes cannot be read: %v", err)
	}
	if len(sets) == 0 {
		return devRefusal("the site answers to any host name (it has no host, as in :8443)")
	}
	for _, hosts := range sets {
		if hosts == nil {
			return devRefusal("the site answers to any host name (a route matches without a host)")
		}
		for _, h := range hosts {
			// Caddy resolves a host's placeholders per request; those
			// known now ({env.*}, {file.*}) are checked resolved, the
			// others (request placeholders) as written: refused.
			if h = caddy.NewReplacer().ReplaceKnown(h, ""); !isDevHost(h) {
				return devRefusal("the site answers to %s", h)
			}
		}
	}
	return nil
}

// routeHosts returns, for each matcher set of r, the host names its host
// matcher allows (nil for a set without one). The server's routes have
// their matchers provisioned by the time a handler is; its error routes
// only later, so their raw JSON is read instead.
func routeHosts(r caddyhttp.Route) ([][]string, error) {
	var sets [][]string
	for _, set := range r.MatcherSets {
		var hosts []string
		for _, m := range set {
			switch v := m.(type) {
			case caddyhttp.MatchHost:
				hosts = append([]string{}, v...)
			case *caddyhttp.MatchHost:
				hosts = append([]string{}, *v...)
			}
		}
		sets = append(sets, hosts)
	}
	if len(r.MatcherSets) > 0 {
		return sets, nil
	}
	for _, raw := range r.MatcherSetsRaw {
		hostJSON, ok := raw["host"]
		if !ok {
			sets = append(sets, nil)
			continue
		}
		hosts := []string{}
		if err := json.Unmarshal(hostJSON, &hosts); err != nil {
			return nil, err
		}
		sets = append(sets, hosts)
	}
	return sets, nil
}

// checkDevLogin applies checkDevSite when mcp_oauth has the development
// sign-in, and then warns, at every start and reload, that it is on.
func (o *OAuthServer) checkDevLogin(ctx caddy.Context, issuer string, log *slog.Logger) error {
	if !o.hasDevLogin() {
		return nil
	}
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if err := checkDevSite(srv, issuer); err != nil {
		return err
	}
	log.Warn("development sign-in is enabled (login dev): anyone who can reach this host can sign in as any email address; never use it in production",
		"listen", srv.Listen)
	return nil
}
