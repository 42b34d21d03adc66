package caddymcp

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// loadApp returns the caddymcp app of the config being provisioned,
// creating it with defaults when the config has no caddymcp block.
func loadApp(ctx caddy.Context) (*App, error) {
	mod, err := ctx.App("caddymcp")
	if err != nil {
		return nil, fmt.Errorf("loading the caddymcp app: %w", err)
	}
	app, ok := mod.(*App)
	if !ok {
		return nil, errors.New("the caddymcp app has an unexpected type")
	}
	return app, nil
}

// validateScopes checks that every scope is a valid, unique scope token.
func validateScopes(scopes []string) error {
	seen := map[string]bool{}
	for _, s := range scopes {
		if !web.ValidScopeToken(s) {
			return fmt.Errorf("invalid scope %q: scopes are printable ASCII without spaces, quotes or backslashes", s)
		}
		if seen[s] {
			return fmt.Errorf("scope %q is listed twice", s)
		}
		seen[s] = true
	}
	return nil
}

// resolve replaces {env.*} and {file.*} placeholders in s, failing on an
// unknown or empty one.
func resolve(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	v, err := caddy.NewReplacer().ReplaceOrErr(s, true, true)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return v, nil
}

// hasErrorRoutes reports whether the server handling r has handle_errors
// routes, which should then render a handler's error.
func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv != nil && srv.Errors != nil && len(srv.Errors.Routes) > 0
}

// serveUnavailable answers a request that arrived before the store could
// be made ready (migrated and keyed): 503 temporarily_unavailable, to be
// retried.
func serveUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	web.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
		"the server is starting or cannot reach its database; retry shortly")
}
