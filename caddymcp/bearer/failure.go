package bearer

// Refusals: the status, error code and WWW-Authenticate challenge of a
// request the resource does not serve (RFC 6750 §3, RFC 9449 §7.1).

import (
	"net/http"
	"strings"

	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
)

// Failure is a refused request: the status, the WWW-Authenticate
// challenge and the JSON body to send. It is an error, so that it can
// travel through error-handling middleware.
type Failure struct {
	// Status is 400, 401 or 403.
	Status int
	// Code is the RFC 6750 error code, or "unauthorized" when the request
	// carried no token.
	Code string
	// Description explains the refusal to the client.
	Description string
	// Challenge is the WWW-Authenticate header value.
	Challenge string
	// MoreChallenges are further challenges, each sent as one more
	// WWW-Authenticate header after Challenge: the DPoP challenge of a
	// resource that also accepts bearer tokens (RFC 9449 §7.2).
	MoreChallenges []string
	// Reason narrows Code down for metrics where it says more ("revoked"
	// for an invalid_token); empty otherwise.
	Reason string
}

func (f *Failure) Error() string { return f.Code + ": " + f.Description }

// Write sends the failure as the response.
func (f *Failure) Write(w http.ResponseWriter) {
	f.SetHeaders(w)
	web.WriteError(w, f.Status, f.Code, f.Description)
}

// SetHeaders sets WWW-Authenticate and the CORS headers that let browser
// clients read it (the refusal carries no credentials, so any origin may).
func (f *Failure) SetHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("WWW-Authenticate", f.Challenge)
	for _, c := range f.MoreChallenges {
		h.Add("WWW-Authenticate", c)
	}
	if h.Get("Access-Control-Allow-Origin") == "" {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	h.Set("Access-Control-Expose-Headers", web.CORSExposeHeaders)
}

// Missing-token body of the seed design, kept verbatim for clients that
// show it.
const missingTokenDescription = "Bearer token required. See WWW-Authenticate header for authentication details."

// missingDPoPDescription is the missing-token body where only DPoP-bound
// tokens are accepted.
const missingDPoPDescription = "DPoP-bound access token required. See WWW-Authenticate header for authentication details."

// dpopAlgs is the algs parameter of DPoP challenges.
var dpopAlgs = strings.Join(dpop.Algorithms, " ")

// refusal builds the failures of one request, with the challenges of RFC
// 6750 §3 and RFC 9449 §7.1: the error goes in the challenge of the
// scheme the request used, and where bearer tokens are accepted a 400 or
// 401 also offers DPoP (§7.2), Bearer first, as clients that read only
// one challenge expect.
type refusal struct {
	metadataURL string
	bearerOK    bool
}

func (rf refusal) fail(scheme string, status int, code, desc, scope string) *Failure {
	p := web.ChallengeParams{ResourceMetadata: rf.metadataURL, Scope: scope, Error: code, Description: desc}
	if status == http.StatusServiceUnavailable {
		// Not a credentials problem: the challenge only points the way.
		p.Error, p.Description = "", ""
	}
	f := &Failure{Status: status, Code: code, Description: desc}
	if scheme == dpop.Scheme || !rf.bearerOK {
		p.Algs = dpopAlgs
		f.Challenge = web.Challenge(dpop.Scheme, p)
		return f
	}
	f.Challenge = web.Challenge("Bearer", p)
	if status == http.StatusBadRequest || status == http.StatusUnauthorized {
		f.MoreChallenges = []string{web.Challenge(dpop.Scheme, web.ChallengeParams{Algs: dpopAlgs})}
	}
	return f
}

// InsufficientScope is the 403 failure for a principal that lacks needed
// (MCP step-up): the challenge names the scopes it holds and the one
// needed, in the scheme the principal's token was presented with.
func InsufficientScope(p *Principal, needed string) *Failure {
	const desc = "the access token lacks the scope this request needs"
	scope := web.UnionScope(strings.Join(p.Scopes, " "), needed)
	params := web.ChallengeParams{ResourceMetadata: p.ResourceMetadata, Scope: scope, Error: "insufficient_scope", Description: desc}
	scheme := "Bearer"
	if p.DPoPKey != "" {
		scheme, params.Algs = dpop.Scheme, dpopAlgs
	}
	return &Failure{Status: http.StatusForbidden, Code: "insufficient_scope", Description: desc,
		Challenge: web.Challenge(scheme, params)}
}
