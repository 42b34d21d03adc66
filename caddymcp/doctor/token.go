package doctor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// rpcMessage is a JSON-RPC response.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// mcpClient makes authenticated MCP requests.
type mcpClient struct {
	r       *runner
	session string
	version string
}

// call sends one JSON-RPC request (a notification when id is 0) and
// returns the HTTP response and, for a request, the JSON-RPC response
// with the same id (nil when there is none).
func (c *mcpClient) call(ctx context.Context, id int, method string, params any) (response, *rpcMessage) {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	if id != 0 {
		msg["id"] = id
	}
	if params != nil {
		msg["params"] = params
	}
	body, _ := json.Marshal(msg)
	h := mcpHeader()
	h.Set("Authorization", "Bearer "+c.r.opts.Token)
	if c.version != "" {
		h.Set("Mcp-Protocol-Version", c.version)
	}
	if c.session != "" {
		h.Set("Mcp-Session-Id", c.session)
	}
	res := c.r.do(ctx, http.MethodPost, c.r.endpoint.String(), h, string(body))
	if res.err != nil || id == 0 {
		return res, nil
	}
	return res, findRPC(res, id)
}

// findRPC finds the JSON-RPC response with id in a JSON or SSE body.
func findRPC(res response, id int) *rpcMessage {
	want := fmt.Sprint(id)
	match := func(b []byte) *rpcMessage {
		var m rpcMessage
		if json.Unmarshal(b, &m) == nil && string(m.ID) == want && (m.Result != nil || m.Error != nil) {
			return &m
		}
		return nil
	}
	mt, _, _ := mime.ParseMediaType(res.header.Get("Content-Type"))
	if mt != "text/event-stream" {
		return match(res.body)
	}
	var data []string
	sc := bufio.NewScanner(bytes.NewReader(res.body))
	sc.Buffer(make([]byte, 64<<10), maxBody)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if m := match([]byte(strings.Join(data, "\n"))); m != nil {
				return m
			}
			data = data[:0]
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return match([]byte(strings.Join(data, "\n")))
}

// tokenClaims are the claims of a JWT access token that the report shows.
type tokenClaims struct {
	jwt      bool
	scopes   []string
	known    bool // scopes were found in the token
	issuer   string
	audience []string
	expires  time.Time
}

// readToken decodes a JWT's payload without verifying it: the report
// only describes the token, the host decides whether it is valid.
func readToken(token string) tokenClaims {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return tokenClaims{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return tokenClaims{}
	}
	var c map[string]any
	if json.Unmarshal(raw, &c) != nil {
		return tokenClaims{}
	}
	tc := tokenClaims{jwt: true}
	tc.issuer, _ = c["iss"].(string)
	for _, key := range []string{"scope", "scp"} {
		switch v := c[key].(type) {
		case string:
			tc.scopes, tc.known = strings.Fields(v), true
		case []any:
			for _, s := range v {
				if s, ok := s.(string); ok {
					tc.scopes = append(tc.scopes, s)
				}
			}
			tc.known = true
		}
		if tc.known {
			break
		}
	}
	switch v := c["aud"].(type) {
	case string:
		tc.audience = []string{v}
	case []any:
		for _, a := range v {
			if a, ok := a.(string); ok {
				tc.audience = append(tc.audience, a)
			}
		}
	}
	if exp, ok := c["exp"].(float64); ok {
		tc.expires = time.Unix(int64(exp), 0)
	}
	return tc
}

// tool is what the report needs of a tools/list entry.
type tool struct {
	Name        string         `json:"name"`
	Meta        map[string]any `json:"_meta"`
	Annotations struct {
		ReadOnlyHint *bool `json:"readOnlyHint"`
	} `json:"annotations"`
}

// scope returns the scope the tool names in _meta.scope.
func (t tool) scope() string {
	switch v := t.Meta["scope"].(type) {
	case string:
		return v
	case []any:
		var out []string
		for _, s := range v {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
		return strings.Join(out, " ")
	}
	return ""
}

// checkToken uses the token as a client would: initialize, tools/list,
// and a call it lacks the scope for, to see the 403 step-up challenge.
func (r *runner) checkToken(ctx context.Context) {
	if r.opts.Token == "" {
		r.info("token.skipped", "authenticated checks not run (--token <ENV_VAR> runs tools/list and the 403 step-up challenge)", "")
		return
	}
	claims := readToken(r.opts.Token)
	r.reportClaims(claims)

	c := &mcpClient{r: r}
	im := impact{everyClient(), "Get a new token for resource " + r.endpoint.String() + "; `mcp_bearer` accepts tokens of its authorization servers whose aud names the resource."}
	res, msg := c.call(ctx, 1, "initialize", json.RawMessage(`{"protocolVersion":"`+protocolVersion+`","capabilities":{},"clientInfo":{"name":"caddy-mcp-doctor","version":"1.0.0"}}`))
	if !r.rpcOK("token.tools_list", im, "initialize", res, msg) {
		return
	}
	var init struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(msg.Result, &init)
	c.version = init.ProtocolVersion
	c.session = res.header.Get("Mcp-Session-Id")
	if c.session != "" {
		defer func() {
			h := http.Header{"Authorization": {"Bearer " + r.opts.Token}, "Mcp-Session-Id": {c.session}}
			if c.version != "" {
				h.Set("Mcp-Protocol-Version", c.version)
			}
			r.do(context.WithoutCancel(ctx), http.MethodDelete, r.endpoint.String(), h, "")
		}()
	}
	c.call(ctx, 0, "notifications/initialized", nil)

	var tools []tool
	cursor := ""
	for page := 0; page < 20; page++ {
		var params any
		if cursor != "" {
			params = map[string]string{"cursor": cursor}
		}
		res, msg := c.call(ctx, 2+page, "tools/list", params)
		if !r.rpcOK("token.tools_list", im, "tools/list", res, msg) {
			return
		}
		var list struct {
			Tools      []tool `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(msg.Result, &list); err != nil {
			r.fail("token.tools_list", im, "the tools/list result is not a tool list", snippet(msg.Result))
			return
		}
		tools = append(tools, list.Tools...)
		if cursor = list.NextCursor; cursor == "" {
			break
		}
	}
	r.pass("token.tools_list", fmt.Sprintf("tools/list with the token returns %d tools", len(tools)))

	var without []string
	for _, t := range tools {
		if t.scope() == "" {
			without = append(without, t.Name)
		}
	}
	metaIm := impact{[]string{"clients that plan a step-up from _meta.scope"}, "mcp_tools names each tool's scope in _meta.scope; other servers may add it to their tool definitions."}
	switch {
	case len(tools) == 0:
		r.info("token.meta_scope", "no tools to check", "")
	case len(without) == len(tools):
		r.warn("token.meta_scope", metaIm, "no tool names its scope in _meta.scope", "")
	case len(without) > 0:
		r.warn("token.meta_scope", metaIm, fmt.Sprintf("%d of %d tools name no scope in _meta.scope", len(without), len(tools)), strings.Join(without, ", "))
	default:
		r.pass("token.meta_scope", "every tool names its scope in _meta.scope")
	}
	if claims.known {
		callable := 0
		for _, t := range tools {
			if s := t.scope(); s != "" && slices.Contains(claims.scopes, s) {
				callable++
			}
		}
		if len(without) == 0 && len(tools) > 0 {
			r.info("token.callable", fmt.Sprintf("the token's scopes allow %d of %d tools", callable, len(tools)), "")
		}
	}
	r.checkStepUp(ctx, c, claims, tools)
}

// reportClaims describes the token without showing it.
func (r *runner) reportClaims(c tokenClaims) {
	if !c.jwt {
		r.info("token.scopes", "opaque token: its scopes cannot be read", "")
		return
	}
	var parts []string
	if c.issuer != "" {
		parts = append(parts, "issuer "+c.issuer)
	}
	if len(c.audience) > 0 {
		parts = append(parts, "audience "+strings.Join(c.audience, " "))
	}
	if !c.expires.IsZero() {
		if left := c.expires.Sub(r.opts.Now()); left > 0 {
			parts = append(parts, "expires in "+left.Round(time.Second).String())
		} else {
			parts = append(parts, "expired "+(-left).Round(time.Second).String()+" ago")
		}
	}
	summary := "JWT access token without a scope claim"
	if c.known {
		summary = "token scopes: " + orNone(strings.Join(c.scopes, " "))
	}
	r.info("token.scopes", summary, strings.Join(parts, ", "))
}

// rpcOK checks an MCP exchange and fails check id when it went wrong.
func (r *runner) rpcOK(id string, im impact, what string, res response, msg *rpcMessage) bool {
	switch {
	case res.err != nil:
		r.fail(id, im, what+" with the token failed", res.err.Error())
	case res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
		detail := "WWW-Authenticate: " + orNone(res.header.Get("WWW-Authenticate"))
		r.fail(id, im, fmt.Sprintf("%s with the token gets %d: the token is refused", what, res.status), detail)
	case res.status != http.StatusOK:
		r.fail(id, im, fmt.Sprintf("%s with the token gets %d", what, res.status), res.describe())
	case msg == nil:
		r.fail(id, im, what+" got no JSON-RPC response", res.describe())
	case msg.Error != nil:
		r.fail(id, im, fmt.Sprintf("%s failed: JSON-RPC error %d %s", what, msg.Error.Code, msg.Error.Message), "")
	default:
		return true
	}
	return false
}

// checkStepUp calls a read-only tool whose scope the token lacks and
// checks the 403 insufficient_scope challenge clients step up from. Only
// read-only tools are called, so a host that does not enforce scopes
// changes nothing.
func (r *runner) checkStepUp(ctx context.Context, c *mcpClient, claims tokenClaims, tools []tool) {
	if !claims.known {
		r.info("token.step_up", "403 challenge not checked: the token's scopes are unknown", "")
		return
	}
	var pick *tool
	for i, t := range tools {
		if s := t.scope(); s != "" && !slices.Contains(claims.scopes, s) && t.Annotations.ReadOnlyHint != nil && *t.Annotations.ReadOnlyHint {
			pick = &tools[i]
			break
		}
	}
	if pick == nil {
		r.info("token.step_up", "403 challenge not checked: no read-only tool needs a scope the token lacks", "")
		return
	}
	need := pick.scope()
	im := impact{[]string{clientSDK, "clients that step up on insufficient_scope"},
		"mcp_tools answers a call the token lacks the scope for with 403 and `WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=…, resource_metadata=…`; give other servers' tools their scope with `mcp_bearer { scope … }` on their route."}
	res, msg := c.call(ctx, 100, "tools/call", map[string]any{"name": pick.Name, "arguments": map[string]any{}})
	call := "tools/call " + pick.Name + " (needs " + need + ")"
	switch {
	case res.err != nil:
		r.fail("token.step_up", im, call+" failed", res.err.Error())
		return
	case res.status == http.StatusUnauthorized:
		r.fail("token.step_up", im, call+" gets 401, not 403: clients re-authorize with the same scope and loop", res.describe())
		return
	case res.status == http.StatusOK && msg != nil && (msg.Error != nil || isToolError(msg.Result)):
		r.warn("token.step_up", im, call+" is refused inside MCP, not with 403 insufficient_scope: clients cannot step up", snippet(res.body))
		return
	case res.status == http.StatusOK:
		r.fail("token.step_up", impact{everyClient(), im.fix}, call+" ran although the token lacks its scope", "")
		return
	case res.status != http.StatusForbidden:
		r.fail("token.step_up", im, fmt.Sprintf("%s gets %d, not 403", call, res.status), res.describe())
		return
	}
	b := findBearer(parseChallenges(res.header.Values("WWW-Authenticate")))
	var missing []string
	switch {
	case b == nil:
		missing = append(missing, "a Bearer challenge")
	default:
		if b.params["error"] != "insufficient_scope" {
			missing = append(missing, `error="insufficient_scope"`)
		}
		if !slices.Contains(strings.Fields(b.params["scope"]), need) {
			missing = append(missing, "scope naming "+need)
		}
		if b.params["resource_metadata"] == "" {
			missing = append(missing, "resource_metadata")
		}
	}
	if len(missing) > 0 {
		r.fail("token.step_up", im, "the 403 challenge lacks "+strings.Join(missing, ", "), "WWW-Authenticate: "+orNone(strings.Join(res.header.Values("WWW-Authenticate"), ", ")))
		return
	}
	r.pass("token.step_up", call+" gets 403 with an insufficient_scope challenge naming "+need)
}

// isToolError reports whether a tools/call result has isError set.
func isToolError(result json.RawMessage) bool {
	var v struct {
		IsError bool `json:"isError"`
	}
	return json.Unmarshal(result, &v) == nil && v.IsError
}
