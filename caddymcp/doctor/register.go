package doctor

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// The loopback redirect URIs of the registration dry run: the one
// registered (no port), and the one used at authorization time (VS
// Code's usual port; RFC 8252 §7.3 lets any port match).
const (
	registeredRedirect = "http://127.0.0.1/callback"
	otherPortRedirect  = "http://127.0.0.1:33418/callback"
)

// checkRegistration registers a public client with a loopback redirect
// URI, as native clients do, and checks that the authorization endpoint
// accepts that URI on another port. It runs only with Options.Register.
func (r *runner) checkRegistration(ctx context.Context) {
	if !r.opts.Register {
		r.info("register.skipped", "dynamic registration not tried (--register does it; it creates a client on the host)", "")
		return
	}
	endpoint, _ := str(r.asMeta, "registration_endpoint")
	if endpoint == "" || checkURL(endpoint) != "" {
		r.info("register.skipped", "dynamic registration not tried: no usable registration_endpoint", "")
		return
	}
	req := map[string]any{
		"client_name":                "caddy mcp-doctor",
		"redirect_uris":              []string{registeredRedirect},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
	}
	if sc := r.scope(); sc != "" {
		req["scope"] = sc
	}
	body, _ := json.Marshal(req)
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	r.subject = endpoint
	res := r.do(ctx, http.MethodPost, endpoint, h, string(body))
	r.subject = ""
	regFix := "Open registration in mcp_oauth: no `registration off`, and no `registration { initial_access_token … }` for clients that register themselves."
	if res.err != nil || (res.status != http.StatusCreated && res.status != http.StatusOK) {
		r.fail("register.client", impact{dcrClients(), regFix}, "the registration of a public client with a loopback redirect URI was refused", res.describe())
		return
	}
	var reg map[string]any
	if err := json.Unmarshal(res.body, &reg); err != nil || reg == nil {
		r.fail("register.client", impact{dcrClients(), regFix}, "the registration response is not a JSON object", res.describe())
		return
	}
	clientID, _ := str(reg, "client_id")
	if clientID == "" {
		r.fail("register.client", impact{dcrClients(), regFix}, "the registration response has no client_id", snippet(res.body))
		return
	}
	r.add("register.client", SeverityPass, impact{}, fmt.Sprintf("registered client %s (HTTP %d)", clientID, res.status),
		"it stays registered: delete it with `caddy mcp-clients delete "+clientID+"`, or let client_retention remove it")

	_, hasSecret := reg["client_secret"]
	method, hasMethod := str(reg, "token_endpoint_auth_method")
	publicFix := "mcp_oauth issues no secret to a client registering with token_endpoint_auth_method none; an external authorization server must allow public clients."
	switch {
	case hasSecret:
		r.fail("register.public", impact{[]string{clientClaude, clientCursor}, publicFix},
			"a client_secret was issued to a client registering with token_endpoint_auth_method none", "")
	case hasMethod && method != "none":
		r.fail("register.public", impact{[]string{clientClaude, clientCursor}, publicFix},
			"token_endpoint_auth_method none was changed to "+method, "")
	default:
		r.pass("register.public", "a public client: no secret, token_endpoint_auth_method none")
	}
	if uris, ok := strs(reg, "redirect_uris"); ok && len(uris) > 0 {
		r.pass("register.redirect_uris", "the response echoes redirect_uris")
	} else {
		r.fail("register.redirect_uris", impact{[]string{clientSDK, clientInspector},
			"Return every registered metadata field in the registration response (RFC 7591 §3.2.1), as mcp_oauth does."},
			"the registration response does not echo redirect_uris: the MCP TypeScript SDK rejects it", "members: "+strings.Join(sortedKeys(reg), ", "))
	}
	r.checkLoopbackPort(ctx, clientID)
}

// scope is what a client would ask for: the challenge's scope, else the
// metadata's scopes_supported.
func (r *runner) scope() string {
	if r.challenge != nil && r.challenge.params["scope"] != "" {
		return r.challenge.params["scope"]
	}
	scopes, _ := strs(r.prm, "scopes_supported")
	return strings.Join(scopes, " ")
}

// checkLoopbackPort sends two authorization requests, with the registered
// loopback redirect URI and with the same URI on another port, and checks
// that the second is treated like the first (RFC 8252 §7.3). A sign-in
// page or a redirect is fine; an invalid-redirect error is not.
func (r *runner) checkLoopbackPort(ctx context.Context, clientID string) {
	authz, _ := str(r.asMeta, "authorization_endpoint")
	if checkURL(authz) != "" {
		return
	}
	verifier, err := r.randomString(32)
	if err != nil {
		return
	}
	state, err := r.randomString(16)
	if err != nil {
		return
	}
	sum := sha256.Sum256([]byte(verifier))
	query := func(redirect string) string {
		q := url.Values{
			"response_type":         {"code"},
			"client_id":             {clientID},
			"redirect_uri":          {redirect},
			"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
			"code_challenge_method": {"S256"},
			"state":                 {state},
			"resource":              {r.endpoint.String()},
		}
		if sc := r.scope(); sc != "" {
			q.Set("scope", sc)
		}
		u, _ := url.Parse(authz)
		if u.RawQuery != "" {
			return authz + "&" + q.Encode()
		}
		return authz + "?" + q.Encode()
	}
	h := http.Header{"Accept": {"text/html"}}
	control := r.do(ctx, http.MethodGet, query(registeredRedirect), h, "")
	other := r.do(ctx, http.MethodGet, query(otherPortRedirect), h, "")
	detail := "registered " + registeredRedirect + ": " + brief(control) + "; " + otherPortRedirect + ": " + brief(other)
	im := impact{[]string{clientVSCode, clientNativeLoop},
		"mcp_oauth matches loopback redirect URIs on any port; an external authorization server must too (RFC 8252 §7.3, OAuth 2.1 §8.4.2)."}
	switch {
	case other.err != nil:
		r.fail("register.loopback_port", im, "the authorization request failed", other.err.Error())
	case redirectRefused(control):
		r.warn("register.loopback_port", impact{dcrClients(), im.fix},
			"the authorization endpoint refuses even the registered redirect URI: the port rule cannot be checked", detail)
	case redirectRefused(other):
		r.fail("register.loopback_port", im,
			"a loopback redirect URI on another port is refused: clients whose port changes cannot authorize", detail)
	case other.status == control.status || other.status < 400:
		r.add("register.loopback_port", SeverityPass, impact{},
			"a loopback redirect URI on another port is accepted at the authorization endpoint", detail)
	default:
		r.fail("register.loopback_port", im,
			"a loopback redirect URI on another port is answered differently from the registered one", detail)
	}
}

// redirectRefused reports whether an authorization response is an
// invalid-redirect-URI error: an error status whose body speaks of the
// redirect, or a redirect carrying such an error.
func redirectRefused(res response) bool {
	if res.err != nil {
		return false
	}
	if res.status >= 400 {
		b := strings.ToLower(string(res.body))
		return strings.Contains(b, "redirect")
	}
	if loc, err := url.Parse(res.header.Get("Location")); err == nil && res.status >= 300 && res.status < 400 {
		q := loc.Query()
		return q.Get("error") != "" && strings.Contains(strings.ToLower(q.Get("error")+q.Get("error_description")), "redirect")
	}
	return false
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// brief describes an authorization response: status, where it redirects,
// or the title of its page.
func brief(res response) string {
	if res.err != nil {
		return res.err.Error()
	}
	s := fmt.Sprintf("HTTP %d", res.status)
	if loc := res.header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			u.RawQuery = "" // may hold a code or a state
			loc = u.String()
		}
		return s + " to " + loc
	}
	if m := titleRE.FindSubmatch(res.body); m != nil {
		return s + " " + quote(strings.Join(strings.Fields(string(m[1])), " "))
	}
	if b := snippet(res.body); b != "" {
		return s + ": " + b
	}
	return s
}

// sortedKeys returns the member names of a JSON object (never their
// values, which may hold a secret).
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// randomString returns n random bytes, base64url-encoded.
func (r *runner) randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r.opts.Random, b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
