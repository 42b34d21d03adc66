package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// document is a fetched JSON metadata document.
type document struct {
	url string
	res response
	// meta is the JSON object; nil when the fetch failed.
	meta map[string]any
	// problem says why meta is nil.
	problem string
	// note is a lesser problem with a usable document.
	note string
}

func (d document) ok() bool { return d.meta != nil }

// fetchJSON GETs a metadata document as clients do, following at most
// three redirects (noted, since clients that guard against SSRF do not
// follow them).
func (r *runner) fetchJSON(ctx context.Context, target string) document {
	d := document{url: target}
	current := target
	for hop := 0; ; hop++ {
		d.res = r.do(ctx, http.MethodGet, current, metadataHeader(), "")
		if d.res.err != nil {
			d.problem = d.res.err.Error()
			return d
		}
		loc := d.res.header.Get("Location")
		if d.res.status < 300 || d.res.status >= 400 || loc == "" || hop == 3 {
			break
		}
		next, err := url.Parse(current)
		if err == nil {
			next, err = next.Parse(loc)
		}
		if err != nil {
			break
		}
		d.note = fmt.Sprintf("redirected (HTTP %d) to %s; clients that do not follow redirects fail", d.res.status, next)
		current = next.String()
	}
	if d.res.status != http.StatusOK {
		d.problem = d.res.describe()
		return d
	}
	if len(bytes.TrimSpace(d.res.body)) == 0 {
		d.problem = "HTTP 200 with an empty body: nothing serves this URL (Caddy's answer when no handler matches)"
		return d
	}
	var m map[string]any
	if err := json.Unmarshal(d.res.body, &m); err != nil || m == nil {
		d.problem = "not a JSON object: " + d.res.describe()
		return d
	}
	d.meta = m
	if mt, _, _ := mime.ParseMediaType(d.res.header.Get("Content-Type")); mt != "application/json" && d.note == "" {
		d.note = "Content-Type is " + quote(d.res.header.Get("Content-Type")) + ", not application/json"
	}
	return d
}

// str returns a string member of a JSON object.
func str(m map[string]any, key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok
}

// strs returns a member that is an array of strings; ok is false when it
// is missing or of another type.
func strs(m map[string]any, key string) ([]string, bool) {
	raw, ok := m[key].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

const prmPathFix = "Let the mcp_bearer route see the well-known URLs: `mcp_bearer /mcp*` answers /.well-known/oauth-protected-resource/mcp and /.well-known/oauth-protected-resource by itself, but not from inside a `handle /mcp*` block or behind a matcher that excludes them."

// checkPRM fetches the protected resource metadata at the URL of the
// challenge and at both well-known URLs, and checks the document clients
// would use. It returns false when no document was found.
func (r *runner) checkPRM(ctx context.Context) bool {
	pathURL := insertWellKnown(r.endpoint, prmSuffix)
	rootURL := rootWellKnown(r.endpoint, prmSuffix)
	headerURL := ""
	if r.challenge != nil {
		if rm := r.challenge.params["resource_metadata"]; rm != "" && checkURL(rm) == "" {
			headerURL = rm
		}
	}
	fetched := map[string]document{}
	fetch := func(u string) document {
		if d, ok := fetched[u]; ok {
			return d
		}
		d := r.fetchJSON(ctx, u)
		fetched[u] = d
		return d
	}
	report := func(id string, d document, im impact, what string) {
		r.subject = d.url
		defer func() { r.subject = "" }()
		switch {
		case !d.ok():
			r.fail(id, im, what+" is missing", d.problem)
		case d.note != "":
			r.warn(id, impact{im.clients, "Serve the document directly, with Content-Type application/json."}, what+" is served, with a problem", d.note)
		default:
			r.pass(id, what+" is served")
		}
	}

	var header, path, root document
	if headerURL != "" {
		header = fetch(headerURL)
		report("prm.header", header, impact{everyClient(), "Serve the metadata at the resource_metadata URL: " + prmPathFix},
			"the metadata at the challenge's resource_metadata URL")
	}
	path = fetch(pathURL)
	report("prm.path", path, impact{[]string{clientStrictRFC9728, clientSDK + " without the challenge's URL"}, prmPathFix},
		"the metadata at the path-suffixed well-known URL (RFC 9728 §3.1)")
	root = fetch(rootURL)
	if rootURL == pathURL {
		r.subject = rootURL
		r.info("prm.root", "the endpoint is at the origin: the root well-known URL is its RFC 9728 URL", "")
		r.subject = ""
	} else if rootImpact := (impact{[]string{"clients that only try the root well-known URL"}, prmPathFix}); root.ok() {
		report("prm.root", root, rootImpact, "the metadata at the root well-known URL")
	} else {
		r.subject = rootURL
		r.warn("prm.root", rootImpact, "no metadata at the root well-known URL", root.problem)
		r.subject = ""
	}

	primary := header
	switch {
	case primary.ok():
	case path.ok():
		primary = path
	case root.ok():
		primary = root
	default:
		return false
	}
	r.prm, r.prmURL = primary.meta, primary.url

	r.checkPRMConsistency(primary, []document{header, path, root})
	r.checkPRMResource(primary.meta)
	r.checkPRMServers(primary.meta)

	methods, ok := strs(primary.meta, "bearer_methods_supported")
	switch {
	case !ok:
		r.warn("prm.bearer_methods", impact{[]string{"clients that read bearer_methods_supported"},
			"mcp_bearer publishes [\"header\"]; another resource server should too."},
			"bearer_methods_supported is missing", "")
	case !slices.Contains(methods, "header"):
		r.fail("prm.bearer_methods", impact{everyClient(), "Publish bearer_methods_supported: [\"header\"]: MCP clients send tokens only in the Authorization header."},
			"bearer_methods_supported does not contain header", fmt.Sprint(methods))
	default:
		r.pass("prm.bearer_methods", "bearer_methods_supported contains header")
	}
	if scopes, _ := strs(primary.meta, "scopes_supported"); len(scopes) > 0 {
		r.pass("prm.scopes", "scopes_supported: "+strings.Join(scopes, " "))
	} else {
		r.warn("prm.scopes", impact{[]string{clientSDK, clientClaude, clientVSCode},
			"mcp_bearer publishes the caddymcp `scopes` (or its own `scopes …`)."},
			"scopes_supported is missing: without a scope in the challenge, clients ask for no scope", "")
	}
	return true
}

// checkPRMConsistency compares every document found to the one clients
// use.
func (r *runner) checkPRMConsistency(primary document, docs []document) {
	var fails, warns []string
	n := 1
	seen := map[string]bool{primary.url: true}
	for _, d := range docs {
		if !d.ok() || seen[d.url] {
			continue
		}
		seen[d.url] = true
		n++
		diff := diffKeys(primary.meta, d.meta)
		if len(diff) == 0 {
			continue
		}
		line := d.url + " differs in " + strings.Join(diff, ", ")
		if !slices.Contains(diff, "resource") && !slices.Contains(diff, "authorization_servers") {
			warns = append(warns, line)
			continue
		}
		res, _ := str(d.meta, "resource")
		if u, err := url.Parse(res); err == nil && d.url == rootWellKnown(r.endpoint, prmSuffix) && isOriginOnly(u) &&
			!slices.Contains(diff, "authorization_servers") {
			warns = append(warns, line+" (it describes the origin "+res+"; clients that read it ask for a token for the origin, which the endpoint refuses)")
			continue
		}
		fails = append(fails, line+fmt.Sprintf(" (resource %q)", res))
	}
	im := impact{[]string{clientClaudeCode, clientStrictRFC9728},
		"Serve one document at every URL: let mcp_bearer answer them all, and drop other handlers (a `respond` or a second mcp_bearer) that answer /.well-known/oauth-protected-resource."}
	switch {
	case len(fails) > 0:
		r.fail("prm.consistent", im, "the metadata URLs serve documents with different resource or authorization_servers: a client gets a different answer depending on the URL it tries",
			strings.Join(append(fails, warns...), "; "))
	case len(warns) > 0:
		r.warn("prm.consistent", im, "the metadata URLs serve different documents", strings.Join(warns, "; "))
	case n == 1:
		r.info("prm.consistent", "only one metadata document was found", "")
	default:
		r.pass("prm.consistent", fmt.Sprintf("the %d metadata URLs serve the same document", n))
	}
}

// diffKeys lists the members that differ between two JSON objects.
func diffKeys(a, b map[string]any) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// checkPRMResource checks that resource names the endpoint (RFC 9728
// §3.3).
func (r *runner) checkPRMResource(meta map[string]any) {
	want := r.endpoint.String()
	fix := impact{everyClient(), "Set `mcp_bearer { resource " + want + " }`, or give mcp_bearer the endpoint's path matcher (`mcp_bearer /mcp*`: the resource defaults to its path)."}
	res, ok := str(meta, "resource")
	if !ok || res == "" {
		r.fail("prm.resource", impact{everyClient(), fix.fix}, "the metadata has no resource: clients reject it", "")
		return
	}
	if res == want {
		r.pass("prm.resource", "resource "+quote(res)+" is the endpoint URL")
		return
	}
	cr, ok1 := canonical(res)
	cw, ok2 := canonical(want)
	if ok1 && ok2 && cr == cw {
		if isOriginOnly(r.endpoint) && strings.EqualFold(strings.TrimSuffix(res, "/"), strings.TrimSuffix(want, "/")) {
			r.pass("prm.resource", "resource "+quote(res)+" names the endpoint "+want+": the same for the root path (Claude and SDK clients send it with a trailing slash; the authorization server must accept both)")
			return
		}
		r.warn("prm.resource", impact{[]string{clientStrictRFC9728}, fix.fix},
			"resource "+quote(res)+" is the endpoint URL only after normalising case or the default port", "endpoint "+want)
		return
	}
	detail := "resource " + compareIdentifiers(res, want)
	if ok1 && ok2 && strings.HasPrefix(cw, strings.TrimSuffix(cr, "/")+"/") {
		detail += "; the MCP TypeScript SDK accepts a resource that is a prefix of the endpoint, strict clients do not"
		r.fail("prm.resource", impact{[]string{clientStrictRFC9728, clientClaude, clientCursor, clientVSCode}, fix.fix},
			"resource "+quote(res)+" is not the endpoint URL "+want+": clients must reject the metadata (RFC 9728 §3.3) or get tokens for another audience", detail)
		return
	}
	if strings.TrimSuffix(cr, "/") == strings.TrimSuffix(cw, "/") {
		detail += " (a trailing slash is significant except for the root path)"
	}
	r.fail("prm.resource", fix,
		"resource "+quote(res)+" is not the endpoint URL "+want+": clients must reject the metadata (RFC 9728 §3.3) or get tokens for another audience", detail)
}

// checkPRMServers checks authorization_servers and keeps its entries.
func (r *runner) checkPRMServers(meta map[string]any) {
	im := impact{everyClient(), "Add mcp_oauth to the site (mcp_bearer then names it), or name the issuer with `mcp_bearer { authorization_server … }` or an `issuer` block."}
	servers, ok := strs(meta, "authorization_servers")
	if !ok || len(servers) == 0 {
		r.fail("prm.authorization_servers", im, "authorization_servers is missing or empty: clients cannot find where to authorize", "")
		return
	}
	var bad []string
	for _, s := range servers {
		if p := checkURL(s); p != "" {
			bad = append(bad, quote(s)+" "+p)
			continue
		}
		r.servers = append(r.servers, s)
	}
	if len(bad) > 0 {
		r.fail("prm.authorization_servers", impact{everyClient(), "Use https issuer URLs (http only on loopback) in `mcp_bearer { authorization_server … }` or the caddymcp `issuer`."},
			"authorization_servers has invalid entries", strings.Join(bad, "; "))
		return
	}
	summary := "authorization_servers: " + strings.Join(servers, ", ")
	if len(servers) > 1 {
		summary += " (most clients use only the first)"
	}
	r.pass("prm.authorization_servers", summary)
}
