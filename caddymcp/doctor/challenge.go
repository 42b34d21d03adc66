package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// challenge is one WWW-Authenticate challenge (RFC 9110 §11.6.1).
type challenge struct {
	scheme  string
	token68 string
	params  map[string]string
}

// parseChallenges parses WWW-Authenticate header values into their
// challenges, in order. Parameter names are lowercased; a malformed
// remainder is dropped.
func parseChallenges(values []string) []challenge {
	p := &headerParser{s: strings.Join(values, ", ")}
	var out []challenge
	for {
		p.skip(" \t,")
		scheme := p.token()
		if scheme == "" {
			return out
		}
		c := challenge{scheme: scheme, params: map[string]string{}}
		p.skip(" \t")
		// A token68 (letters, digits, -._~+/ and "=" padding) stands
		// alone: it is followed by a comma or the end.
		save := p.i
		if t := p.token68(); t != "" {
			p.skip(" \t")
			if p.eof() || p.peek() == ',' {
				c.token68 = t
				out = append(out, c)
				continue
			}
		}
		p.i = save
		for {
			save := p.i
			p.skip(" \t,")
			name := p.token()
			p.skip(" \t")
			if name == "" || p.eof() || p.peek() != '=' {
				p.i = save // the next challenge's scheme, or the end
				break
			}
			p.i++ // '='
			p.skip(" \t")
			var value string
			if !p.eof() && p.peek() == '"' {
				value = p.quoted()
			} else {
				value = p.token()
			}
			c.params[strings.ToLower(name)] = value
			p.skip(" \t")
		}
		out = append(out, c)
	}
}

type headerParser struct {
	s string
	i int
}

func (p *headerParser) eof() bool  { return p.i >= len(p.s) }
func (p *headerParser) peek() byte { return p.s[p.i] }

func (p *headerParser) skip(set string) {
	for !p.eof() && strings.IndexByte(set, p.peek()) >= 0 {
		p.i++
	}
}

// token reads an RFC 9110 token.
func (p *headerParser) token() string {
	start := p.i
	for !p.eof() && isTchar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// token68 reads an RFC 9110 token68 (letters, digits, -._~+/ then "=").
func (p *headerParser) token68() string {
	start := p.i
	for !p.eof() && (isAlnum(p.peek()) || strings.IndexByte("-._~+/", p.peek()) >= 0) {
		p.i++
	}
	for !p.eof() && p.peek() == '=' {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string and returns its unescaped content.
func (p *headerParser) quoted() string {
	var b strings.Builder
	p.i++ // opening quote
	for !p.eof() {
		c := p.peek()
		p.i++
		switch {
		case c == '\\' && !p.eof():
			b.WriteByte(p.peek())
			p.i++
		case c == '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isTchar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// findBearer returns the first Bearer challenge.
func findBearer(cs []challenge) *challenge {
	for i := range cs {
		if strings.EqualFold(cs[i].scheme, "Bearer") {
			return &cs[i]
		}
	}
	return nil
}

// initializeBody is the first request every MCP client sends.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + protocolVersion +
	`","capabilities":{},"clientInfo":{"name":"caddy-mcp-doctor","version":"1.0.0"}}}`

// mcpHeader is the header of an MCP POST.
func mcpHeader() http.Header {
	return http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}}
}

const bearerFix = "Guard the endpoint with mcp_bearer (e.g. `mcp_bearer /mcp*` in the site block); it answers requests without a token with the 401 challenge."

// checkChallenge sends an MCP initialize without a token, as every client
// does first, and checks the 401 challenge. It returns false when the
// endpoint cannot be reached at all.
func (r *runner) checkChallenge(ctx context.Context) bool {
	res := r.do(ctx, http.MethodPost, r.endpoint.String(), mcpHeader(), initializeBody)
	if res.err != nil {
		r.fail("challenge.status", impact{everyClient(), "Check that Caddy runs and serves this URL."},
			"cannot reach the endpoint", res.err.Error())
		return false
	}
	switch {
	case res.status == http.StatusUnauthorized:
		r.pass("challenge.status", "an initialize request without a token gets 401")
	case res.status >= 200 && res.status < 300:
		r.fail("challenge.status", impact{everyClient(), bearerFix},
			fmt.Sprintf("an initialize request without a token gets %d: the endpoint is not protected, so clients never start authorization", res.status),
			res.describe())
		return true
	case res.status == http.StatusNotFound || res.status == http.StatusMethodNotAllowed:
		r.fail("challenge.status", impact{everyClient(), "Check the URL; mcp_tools serves /mcp by default (`mcp_tools { path … }`)."},
			fmt.Sprintf("POST to the endpoint gets %d: no MCP endpoint here", res.status), res.describe())
		return true
	default:
		r.fail("challenge.status", impact{everyClient(), bearerFix},
			fmt.Sprintf("an initialize request without a token gets %d, not 401: clients start authorization only on 401", res.status),
			res.describe())
		return true
	}

	values := res.header.Values("WWW-Authenticate")
	cs := parseChallenges(values)
	bearer := findBearer(cs)
	switch {
	case len(values) == 0 || bearer == nil:
		r.fail("challenge.www_authenticate", impact{everyClient(),
			bearerFix + " If handle_errors or a proxy rewrites the 401, it must keep the WWW-Authenticate header."},
			"the 401 has no WWW-Authenticate: Bearer challenge", "WWW-Authenticate: "+orNone(strings.Join(values, ", ")))
		return true
	case !strings.EqualFold(cs[0].scheme, "Bearer"):
		r.fail("challenge.www_authenticate", impact{[]string{clientSDK, clientInspector},
			"Put the Bearer challenge first: remove other auth handlers (basic_auth, forward_auth) from the MCP route, or order mcp_bearer before them."},
			"the first challenge is "+cs[0].scheme+", not Bearer: the MCP TypeScript SDK reads the header only when it starts with Bearer",
			"WWW-Authenticate: "+strings.Join(values, ", "))
	default:
		r.pass("challenge.www_authenticate", "the 401 starts with a Bearer challenge")
	}
	r.challenge = bearer

	rm, ok := bearer.params["resource_metadata"]
	switch {
	case !ok || rm == "":
		r.fail("challenge.resource_metadata", impact{[]string{"clients of MCP 2025-06-18, where the challenge is the only way to find the metadata"},
			"mcp_bearer adds resource_metadata to its challenge; do not answer the 401 from another handler, and keep mcp_bearer's WWW-Authenticate in handle_errors."},
			"the Bearer challenge has no resource_metadata parameter", "WWW-Authenticate: "+strings.Join(values, ", "))
	case checkURL(rm) != "":
		r.fail("challenge.resource_metadata", impact{everyClient(),
			"Set an absolute https `resource` in mcp_bearer, or the caddymcp `issuer` when Caddy sits behind a proxy."},
			"resource_metadata "+checkURL(rm), "resource_metadata="+quote(rm))
	default:
		r.pass("challenge.resource_metadata", "resource_metadata="+quote(rm))
	}
	if sc := bearer.params["scope"]; sc != "" {
		r.pass("challenge.scope", "scope="+quote(sc))
	} else {
		r.warn("challenge.scope", impact{[]string{clientClaude, clientSDK, clientVSCode},
			"List the scopes the endpoint needs with `mcp_bearer { scope … }`, or those offered with `scopes …` (default: the caddymcp `scopes`)."},
			"the Bearer challenge has no scope: clients then ask for every scope in scopes_supported, or none", "")
	}
	mt, _, _ := mime.ParseMediaType(res.header.Get("Content-Type"))
	if mt == "application/json" && json.Valid(res.body) {
		r.pass("challenge.body", "the 401 has a JSON body")
	} else {
		r.warn("challenge.body", impact{[]string{"clients that show the error body"},
			"Let mcp_bearer write the 401 (it sends a JSON error), or make handle_errors answer JSON."},
			"the 401 body is not JSON", res.describe())
	}
	return true
}

// checkCORS checks what browser clients (MCP Inspector) need from the
// endpoint: a preflight answered without a 401 that allows the MCP
// request headers, and a 401 whose challenge they may read.
func (r *runner) checkCORS(ctx context.Context) {
	origin := r.opts.Origin
	fix := "mcp_bearer answers preflights itself: remove handlers that answer OPTIONS before it (basic_auth, forward_auth, a `respond`), and for an origin that is not loopback add it to `mcp_tools { allowed_origins … }` so that the request after the preflight is served."
	h := http.Header{
		"Origin":                         {origin},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"authorization, content-type, mcp-protocol-version"},
	}
	res := r.do(ctx, http.MethodOptions, r.endpoint.String(), h, "")
	switch {
	case res.err != nil:
		r.fail("cors.preflight", impact{browserClients(), fix}, "the CORS preflight failed", res.err.Error())
	case res.status == http.StatusUnauthorized:
		r.fail("cors.preflight", impact{browserClients(), fix},
			"the CORS preflight gets 401: browsers send preflights without credentials, so browser clients cannot call the endpoint at all", res.describe())
	case res.status < 200 || res.status >= 300:
		r.fail("cors.preflight", impact{browserClients(), fix}, fmt.Sprintf("the CORS preflight gets %d, not 2xx", res.status), res.describe())
	case !originAllowed(res.header, origin):
		r.fail("cors.preflight", impact{browserClients(), fix},
			"the CORS preflight does not allow origin "+origin, "Access-Control-Allow-Origin: "+orNone(res.header.Get("Access-Control-Allow-Origin")))
	default:
		if missing := missingTokens(res.header.Values("Access-Control-Allow-Headers"), true,
			"authorization", "content-type", "mcp-protocol-version"); len(missing) > 0 {
			r.fail("cors.preflight", impact{browserClients(), "Allow the MCP request headers in the preflight answer (mcp_tools does: do not override Access-Control-Allow-Headers with a `header` directive)."},
				"the CORS preflight does not allow the request headers "+strings.Join(missing, ", "),
				"Access-Control-Allow-Headers: "+orNone(strings.Join(res.header.Values("Access-Control-Allow-Headers"), ", ")))
		} else {
			r.pass("cors.preflight", fmt.Sprintf("the CORS preflight from %s gets %d and allows Authorization, Content-Type and MCP-Protocol-Version", origin, res.status))
		}
	}

	if r.challenge == nil {
		return // no 401 challenge to expose
	}
	hdr := mcpHeader()
	hdr.Set("Origin", origin)
	res = r.do(ctx, http.MethodPost, r.endpoint.String(), hdr, initializeBody)
	exposeFix := "mcp_bearer exposes WWW-Authenticate; a `header` directive or an upstream that sets Access-Control-Expose-Headers must keep WWW-Authenticate in it."
	switch {
	case res.err != nil:
		r.fail("cors.expose_www_authenticate", impact{browserClients(), exposeFix}, "the request from a browser origin failed", res.err.Error())
	case res.status != http.StatusUnauthorized:
		r.fail("cors.expose_www_authenticate", impact{browserClients(), fix},
			fmt.Sprintf("a request without a token from origin %s gets %d, not 401", origin, res.status), res.describe())
	case !originAllowed(res.header, origin):
		r.fail("cors.expose_www_authenticate", impact{browserClients(), exposeFix},
			"the 401 does not allow origin "+origin+": browsers hide it from the client",
			"Access-Control-Allow-Origin: "+orNone(res.header.Get("Access-Control-Allow-Origin")))
	case len(missingTokens(res.header.Values("Access-Control-Expose-Headers"), false, "www-authenticate")) > 0:
		r.fail("cors.expose_www_authenticate", impact{browserClients(), exposeFix},
			"the 401 does not expose WWW-Authenticate (Access-Control-Expose-Headers): browser clients cannot see the challenge",
			"Access-Control-Expose-Headers: "+orNone(strings.Join(res.header.Values("Access-Control-Expose-Headers"), ", ")))
	default:
		r.pass("cors.expose_www_authenticate", "the 401 exposes WWW-Authenticate to browser clients")
	}
}

// originAllowed reports whether a CORS response lets origin read it.
func originAllowed(h http.Header, origin string) bool {
	v := strings.TrimSpace(h.Get("Access-Control-Allow-Origin"))
	return v == "*" || v == origin
}

// missingTokens returns the names in want that the comma-separated
// header values do not list (case-insensitively). A "*" wildcard covers
// every name except Authorization, which the Fetch standard never
// matches with a wildcard.
func missingTokens(values []string, authNeedsName bool, want ...string) []string {
	have := map[string]bool{}
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			have[strings.ToLower(strings.TrimSpace(t))] = true
		}
	}
	var missing []string
	for _, w := range want {
		if have[w] || (have["*"] && !(authNeedsName && w == "authorization")) {
			continue
		}
		missing = append(missing, w)
	}
	return missing
}

// checkMetadataCORS checks that browser clients may read the metadata
// documents they fetch cross-origin.
func (r *runner) checkMetadataCORS(ctx context.Context) {
	var urls []string
	if r.prmURL != "" {
		urls = append(urls, r.prmURL)
	}
	if r.asMetaURL != "" {
		urls = append(urls, r.asMetaURL)
	}
	if len(urls) == 0 {
		return
	}
	var bad []string
	for _, u := range urls {
		h := metadataHeader()
		h.Del("Mcp-Protocol-Version") // the simple request a browser retries with
		h.Set("Origin", r.opts.Origin)
		res := r.do(ctx, http.MethodGet, u, h, "")
		if res.err != nil || res.status != http.StatusOK || !originAllowed(res.header, r.opts.Origin) {
			bad = append(bad, u+" ("+res.describe()+", Access-Control-Allow-Origin: "+orNone(res.header.Get("Access-Control-Allow-Origin"))+")")
		}
	}
	if len(bad) > 0 {
		r.fail("cors.metadata", impact{browserClients(),
			"mcp_oauth and mcp_bearer serve their metadata to any origin; a `header` directive or proxy must not drop Access-Control-Allow-Origin (or set `mcp_oauth { allowed_origins … }` to include the client's origin)."},
			"browser clients cannot read the metadata from origin "+r.opts.Origin, strings.Join(bad, "; "))
		return
	}
	r.pass("cors.metadata", "the protected resource and authorization server metadata are readable from origin "+r.opts.Origin)
}
