package oauth

import (
	"net/http"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
)

// serveJWKS answers GET /oauth/jwks.
func serveJWKS(w http.ResponseWriter, r *http.Request, keys signing.KeySource) {
	if !web.ServePublicGet(w, r) {
		return
	}
	ks, err := keys.KeySet(r.Context())
	if err != nil {
		w.Header().Set("Retry-After", "5")
		web.WriteError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "signing keys are not available yet")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Short enough that a rotated key reaches verifiers well within an
	// access token's lifetime.
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(ks.JWKSDocument())
}
