package doctor

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

const (
	asFix         = "mcp_oauth publishes this; for an external authorization server, change its settings."
	issuerFixText = "Make the issuer byte-identical everywhere: `mcp_bearer { authorization_server … }` must equal the issuer of mcp_oauth (the caddymcp `issuer`, `mcp_oauth { issuer … }`, or by default the site's origin https://host[:port]) — same scheme, host, port and path, no trailing slash."
)

// checkAuthorizationServer checks the metadata of one issuer (RFC 8414,
// with the OpenID Connect Discovery fallback clients use) and its keys.
// It returns the metadata and its URL, or nil when none was found.
func (r *runner) checkAuthorizationServer(ctx context.Context, issuer string) (map[string]any, string) {
	iu, err := url.Parse(issuer)
	if err != nil {
		return nil, ""
	}
	rfcURL := insertWellKnown(iu, asSuffix)
	oidcURLs := []string{insertWellKnown(iu, oidcSuffix)}
	if appended := appendWellKnown(iu, oidcSuffix); appended != oidcURLs[0] {
		oidcURLs = append(oidcURLs, appended)
	}
	findOIDC := func() document {
		var last document
		for _, u := range oidcURLs {
			last = r.fetchJSON(ctx, u)
			if last.ok() {
				return last
			}
		}
		return last
	}

	d := r.fetchJSON(ctx, rfcURL)
	switch {
	case d.ok() && d.note != "":
		r.warn("as.metadata", impact{[]string{"clients that do not follow redirects or insist on application/json"}, asFix},
			"the RFC 8414 metadata at "+rfcURL+" is served, with a problem", d.note)
	case d.ok():
		r.pass("as.metadata", "RFC 8414 metadata at "+rfcURL)
	}
	oidc := findOIDC()
	if !d.ok() {
		if !oidc.ok() {
			r.fail("as.metadata", impact{everyClient(),
				"Add mcp_oauth to the site that serves the issuer: it answers /.well-known/oauth-authorization-server (with the issuer's path after it, if it has one)."},
				"no authorization server metadata for "+issuer,
				rfcURL+": "+d.problem+"; "+strings.Join(oidcURLs, ", ")+": "+oidc.problem)
			return nil, ""
		}
		r.warn("as.metadata", impact{[]string{"clients of MCP 2025-06-18, which read only RFC 8414 metadata"},
			"Serve RFC 8414 metadata at " + rfcURL + " (mcp_oauth does)."},
			"no RFC 8414 metadata; found OpenID Connect discovery at "+oidc.url, rfcURL+": "+d.problem)
		d = oidc
	}
	if oidc.ok() && oidc.url != d.url {
		iss, _ := str(oidc.meta, "issuer")
		detail := ""
		if iss != issuer {
			detail = "its issuer " + quote(iss) + " differs from " + quote(issuer)
		}
		r.info("as.oidc", "also serves OpenID Connect discovery at "+oidc.url+" (clients read RFC 8414 first)", detail)
	} else if !oidc.ok() {
		r.info("as.oidc", "no OpenID Connect discovery document (not needed: clients read the RFC 8414 metadata first)", "")
	}
	meta := d.meta
	r.checkIssuer(meta, issuer)
	r.checkEndpoints(meta)
	r.checkCapabilities(meta)
	r.checkJWKS(ctx, meta)
	return meta, d.url
}

func (r *runner) checkIssuer(meta map[string]any, issuer string) {
	got, ok := str(meta, "issuer")
	switch {
	case !ok || got == "":
		r.fail("as.issuer", impact{everyClient(), asFix}, "the metadata has no issuer: clients reject it", "")
	case got != issuer:
		detail := "metadata issuer " + quote(got) + " " + compareIdentifiers(got, issuer) + " (authorization_servers entry)"
		if strings.TrimSuffix(issuer, "/") == got {
			detail += "; the MCP TypeScript SDK 2.x tolerates only this direction of trailing slash"
		}
		r.fail("as.issuer", impact{strictIssuer(), issuerFixText},
			"issuer is not byte-identical to the authorization_servers entry (RFC 8414 §3.3): clients must reject the metadata", detail)
	default:
		r.pass("as.issuer", "issuer "+quote(got)+" is byte-identical to the authorization_servers entry")
	}
}

func (r *runner) checkEndpoints(meta map[string]any) {
	var bad []string
	for _, name := range []string{"authorization_endpoint", "token_endpoint"} {
		v, _ := str(meta, name)
		if v == "" {
			bad = append(bad, name+" is missing")
		} else if p := checkURL(v); p != "" {
			bad = append(bad, name+" "+quote(v)+" "+p)
		}
	}
	for _, name := range []string{"registration_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint"} {
		if v, ok := meta[name]; ok {
			s, _ := v.(string)
			if p := checkURL(s); p != "" {
				bad = append(bad, name+" "+quote(s)+" "+p)
			}
		}
	}
	if len(bad) > 0 {
		r.fail("as.endpoints", impact{everyClient(),
			"mcp_oauth builds its endpoints from the issuer: set the caddymcp `issuer` to the public https origin when Caddy sits behind a proxy."},
			"endpoints must be absolute https URLs (http only on loopback)", strings.Join(bad, "; "))
		return
	}
	r.pass("as.endpoints", "the endpoints are absolute https URLs")
}

func (r *runner) checkCapabilities(meta map[string]any) {
	switch methods, ok := strs(meta, "code_challenge_methods_supported"); {
	case !ok:
		r.fail("as.pkce", impact{everyClient(), asFix + " It must publish code_challenge_methods_supported: [\"S256\"]."},
			"code_challenge_methods_supported is missing: MCP clients must refuse to go on without it", "")
	case !slices.Contains(methods, "S256"):
		r.fail("as.pkce", impact{everyClient(), asFix + " It must support PKCE with S256."},
			"code_challenge_methods_supported lacks S256: clients refuse to authorize", fmt.Sprint(methods))
	default:
		r.pass("as.pkce", "PKCE with S256")
	}

	if types, _ := strs(meta, "response_types_supported"); slices.Contains(types, "code") {
		r.pass("as.response_types", "response_types_supported has code")
	} else {
		r.fail("as.response_types", impact{everyClient(), asFix + " It must publish response_types_supported: [\"code\"]."},
			"response_types_supported lacks code (or is missing)", fmt.Sprint(meta["response_types_supported"]))
	}

	switch grants, ok := strs(meta, "grant_types_supported"); {
	case !ok:
		r.warn("as.grant_types", impact{[]string{"clients that plan refreshes from the metadata"}, asFix + " Publish grant_types_supported: [\"authorization_code\", \"refresh_token\"]."},
			"grant_types_supported is missing: the RFC 8414 default (authorization_code, implicit) advertises no refresh_token", "")
	case !slices.Contains(grants, "authorization_code"):
		r.fail("as.grant_types", impact{everyClient(), asFix}, "grant_types_supported lacks authorization_code", fmt.Sprint(grants))
	case !slices.Contains(grants, "refresh_token"):
		r.warn("as.grant_types", impact{everyClient(), asFix}, "grant_types_supported lacks refresh_token: users sign in again whenever an access token expires", fmt.Sprint(grants))
	default:
		r.pass("as.grant_types", "grant_types_supported has authorization_code and refresh_token")
	}

	noneImpact := impact{[]string{clientClaude, clientCursor, clientVSCode, clientInspector},
		asFix + " Public clients (token_endpoint_auth_method none) must be allowed."}
	switch methods, ok := strs(meta, "token_endpoint_auth_methods_supported"); {
	case !ok:
		r.fail("as.auth_method_none", noneImpact,
			"token_endpoint_auth_methods_supported is missing: the default is client_secret_basic only, so public clients look unsupported", "")
	case !slices.Contains(methods, "none"):
		r.fail("as.auth_method_none", noneImpact,
			"token_endpoint_auth_methods_supported lacks none: public clients (Claude, Cursor, VS Code) cannot use it", fmt.Sprint(methods))
	default:
		r.pass("as.auth_method_none", "token_endpoint_auth_methods_supported has none (public clients)")
	}

	cimd := meta["client_id_metadata_document_supported"] == true
	if reg, _ := str(meta, "registration_endpoint"); reg != "" {
		r.pass("as.registration", "dynamic client registration at "+reg)
	} else {
		summary := "no registration_endpoint: clients that need dynamic registration cannot register"
		if cimd {
			summary += " (those that support client ID metadata documents can)"
		}
		r.warn("as.registration", impact{dcrClients(),
			"Remove `registration off` from mcp_oauth, or pre-register each client with a `client <id> { … }` block and give it the client id."},
			summary, "")
	}
	if cimd {
		r.info("as.cimd", "client ID metadata documents are supported (Claude uses them when none is also listed)", "")
	} else {
		r.info("as.cimd", "client ID metadata documents are not advertised: clients use dynamic registration", "")
	}

	scopes, _ := strs(meta, "scopes_supported")
	if len(scopes) == 0 {
		r.warn("as.scopes", impact{[]string{clientSDK}, asFix + " Publish scopes_supported (the caddymcp `scopes`)."},
			"scopes_supported is missing", "")
		return
	}
	var wanted []string
	if r.prm != nil {
		wanted, _ = strs(r.prm, "scopes_supported")
	}
	if r.challenge != nil {
		wanted = append(wanted, strings.Fields(r.challenge.params["scope"])...)
	}
	var unknown []string
	for _, s := range wanted {
		if !slices.Contains(scopes, s) && !slices.Contains(unknown, s) {
			unknown = append(unknown, s)
		}
	}
	if len(unknown) > 0 {
		r.warn("as.scopes", impact{everyClient(),
			"Make the resource's scopes (`mcp_bearer { scopes … }` / `scope …`) a subset of the authorization server's (`caddymcp { scopes … }` or `mcp_oauth { scopes … }`)."},
			"the resource asks for scopes the authorization server does not offer: they are never granted", strings.Join(unknown, " "))
		return
	}
	r.pass("as.scopes", "scopes_supported: "+strings.Join(scopes, " "))
}

func (r *runner) checkJWKS(ctx context.Context, meta map[string]any) {
	uri, _ := str(meta, "jwks_uri")
	if uri == "" {
		r.info("as.jwks", "no jwks_uri: resource servers must check tokens another way (introspection)", "")
		return
	}
	im := impact{[]string{"resource servers that verify its tokens (mcp_bearer `issuer` blocks)"},
		"mcp_oauth serves its public keys at /oauth/jwks; check that the route reaches it."}
	d := r.fetchJSON(ctx, uri)
	if !d.ok() {
		r.fail("as.jwks", im, "the JWKS at "+uri+" cannot be read", d.problem)
		return
	}
	keys, ok := d.meta["keys"].([]any)
	if !ok || len(keys) == 0 {
		r.fail("as.jwks", im, "the JWKS at "+uri+" has no keys", snippet(d.res.body))
		return
	}
	var leaks, kids []string
	for i, k := range keys {
		jwk, ok := k.(map[string]any)
		if !ok {
			continue
		}
		kid, _ := str(jwk, "kid")
		if kid == "" {
			kid = fmt.Sprintf("#%d", i)
		}
		kids = append(kids, kid)
		// Members holding private or secret key material (RFC 7518
		// §6.2.2, §6.3.2, §6.4.1).
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := jwk[m]; ok {
				leaks = append(leaks, kid+"."+m)
			}
		}
	}
	if len(leaks) > 0 {
		r.fail("as.jwks", impact{everyClient(),
			"Publish public keys only, and replace the exposed keys at once (`caddy mcp-keys rotate --compromised`)."},
			"the JWKS publishes private key material: anyone can sign tokens", "members "+strings.Join(leaks, ", "))
		return
	}
	r.pass("as.jwks", fmt.Sprintf("the JWKS has %d public key(s): %s", len(keys), strings.Join(kids, ", ")))
}
