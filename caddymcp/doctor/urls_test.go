package doctor

import (
	"net/url"
	"reflect"
	"testing"
)

func TestWellKnownURLs(t *testing.T) {
	tests := []struct {
		id, suffix, inserted, root, appended string
	}{
		// RFC 9728 §3.1 examples, and the MCP endpoint shapes.
		{"https://resource.example.com/resource1", prmSuffix,
			"https://resource.example.com/.well-known/oauth-protected-resource/resource1",
			"https://resource.example.com/.well-known/oauth-protected-resource",
			"https://resource.example.com/resource1/.well-known/oauth-protected-resource"},
		{"https://h:8443/mcp/", prmSuffix, "https://h:8443/.well-known/oauth-protected-resource/mcp",
			"https://h:8443/.well-known/oauth-protected-resource", "https://h:8443/mcp/.well-known/oauth-protected-resource"},
		{"https://h/mcp?tenant=a", prmSuffix, "https://h/.well-known/oauth-protected-resource/mcp?tenant=a",
			"https://h/.well-known/oauth-protected-resource", "https://h/mcp/.well-known/oauth-protected-resource"},
		{"https://h", prmSuffix, "https://h/.well-known/oauth-protected-resource",
			"https://h/.well-known/oauth-protected-resource", "https://h/.well-known/oauth-protected-resource"},
		{"https://h/", prmSuffix, "https://h/.well-known/oauth-protected-resource",
			"https://h/.well-known/oauth-protected-resource", "https://h/.well-known/oauth-protected-resource"},
		// RFC 8414 §3.1: a path issuer.
		{"https://server.example.com/issuer1", asSuffix,
			"https://server.example.com/.well-known/oauth-authorization-server/issuer1",
			"https://server.example.com/.well-known/oauth-authorization-server",
			"https://server.example.com/issuer1/.well-known/oauth-authorization-server"},
		{"https://auth.example.com/tenant1", oidcSuffix,
			"https://auth.example.com/.well-known/openid-configuration/tenant1",
			"https://auth.example.com/.well-known/openid-configuration",
			"https://auth.example.com/tenant1/.well-known/openid-configuration"},
		{"https://h/a%2Fb", prmSuffix, "https://h/.well-known/oauth-protected-resource/a%2Fb",
			"https://h/.well-known/oauth-protected-resource", "https://h/a%2Fb/.well-known/oauth-protected-resource"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := insertWellKnown(u, tt.suffix); got != tt.inserted {
			t.Errorf("insertWellKnown(%s) = %s, want %s", tt.id, got, tt.inserted)
		}
		if got := rootWellKnown(u, tt.suffix); got != tt.root {
			t.Errorf("rootWellKnown(%s) = %s, want %s", tt.id, got, tt.root)
		}
		if got := appendWellKnown(u, tt.suffix); got != tt.appended {
			t.Errorf("appendWellKnown(%s) = %s, want %s", tt.id, got, tt.appended)
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"https://h", "https://h/", true},
		{"https://H:443/mcp", "https://h/mcp", true},
		{"HTTPS://h/mcp", "https://h/mcp", true},
		{"https://h/mcp", "https://h/mcp/", false},
		{"https://h/mcp", "https://h/MCP", false},
		{"https://h:8443/mcp", "https://h/mcp", false},
		{"http://h:80/", "http://h", true},
		{"https://[::1]:443/mcp", "https://[::1]/mcp", true},
	}
	for _, tt := range tests {
		a, ok1 := canonical(tt.a)
		b, ok2 := canonical(tt.b)
		if !ok1 || !ok2 || (a == b) != tt.same {
			t.Errorf("canonical(%s) = %s, canonical(%s) = %s; same = %v, want %v", tt.a, a, tt.b, b, a == b, tt.same)
		}
	}
	if _, ok := canonical("/mcp"); ok {
		t.Error("a relative URL has a canonical form")
	}
}

func TestCompareIdentifiers(t *testing.T) {
	tests := []struct{ got, want, says string }{
		{"https://h", "https://h", ""},
		{"https://h/", "https://h", `has a trailing slash "https://h" does not have`},
		{"https://h", "https://h/", `lacks the trailing slash of "https://h/"`},
		{"https://H", "https://h", `differs from "https://h" in letter case`},
		{"http://h", "https://h", `has scheme http, not https as in "https://h"`},
		{"https://a.example", "https://b.example", `has host a.example, not b.example as in "https://b.example"`},
		{"https://h:8443", "https://h", `has port 8443, not (none) as in "https://h"`},
		{"https://h/t1", "https://h/t2", `has path /t1, not /t2 as in "https://h/t2"`},
	}
	for _, tt := range tests {
		if got := compareIdentifiers(tt.got, tt.want); got != tt.says {
			t.Errorf("compareIdentifiers(%s, %s) = %q, want %q", tt.got, tt.want, got, tt.says)
		}
	}
}

func TestCheckURL(t *testing.T) {
	tests := map[string]string{
		"https://auth.example.com/token": "",
		"http://localhost:8080/token":    "",
		"http://127.0.0.1/token":         "",
		"http://[::1]:9/token":           "",
		"http://auth.example.com/token":  "uses http on a host that is not loopback",
		"/token":                         "is not an absolute URL",
		"https://h/token#x":              "has a fragment",
		"ftp://h/token":                  "is not an https URL",
		"":                               "is not an absolute URL",
	}
	for in, want := range tests {
		if got := checkURL(in); got != want {
			t.Errorf("checkURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseChallenges(t *testing.T) {
	type ch struct {
		Scheme  string
		Token68 string
		Params  map[string]string
	}
	tests := []struct {
		name   string
		values []string
		want   []ch
	}{
		{"bearer with parameters", []string{`Bearer resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", scope="a b"`},
			[]ch{{"Bearer", "", map[string]string{"resource_metadata": "https://h/.well-known/oauth-protected-resource/mcp", "scope": "a b"}}}},
		{"unquoted values and odd spacing", []string{`Bearer  error=invalid_token ,Scope="x"`},
			[]ch{{"Bearer", "", map[string]string{"error": "invalid_token", "scope": "x"}}}},
		{"escaped quotes", []string{`Bearer error_description="say \"hi\", then \\ go"`},
			[]ch{{"Bearer", "", map[string]string{"error_description": `say "hi", then \ go`}}}},
		{"two challenges in one value", []string{`Basic realm="x", Bearer scope="a"`},
			[]ch{{"Basic", "", map[string]string{"realm": "x"}}, {"Bearer", "", map[string]string{"scope": "a"}}}},
		{"two header values", []string{`DPoP algs="ES256"`, `Bearer realm="r"`},
			[]ch{{"DPoP", "", map[string]string{"algs": "ES256"}}, {"Bearer", "", map[string]string{"realm": "r"}}}},
		{"scheme alone", []string{`Bearer`}, []ch{{"Bearer", "", map[string]string{}}}},
		{"token68 then a challenge", []string{`Negotiate abc123==, Bearer scope="a"`},
			[]ch{{"Negotiate", "abc123==", map[string]string{}}, {"Bearer", "", map[string]string{"scope": "a"}}}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []ch
			for _, c := range parseChallenges(tt.values) {
				got = append(got, ch{c.scheme, c.token68, c.params})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseChallenges(%q) = %+v, want %+v", tt.values, got, tt.want)
			}
		})
	}
}

func TestFindRPCInEventStream(t *testing.T) {
	body := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n" +
		"id: 7\ndata: {\"jsonrpc\":\"2.0\",\n" + "data: \"id\":3,\"result\":{\"tools\":[]}}\n\n"
	res := response{status: 200, header: map[string][]string{"Content-Type": {"text/event-stream"}}, body: []byte(body)}
	m := findRPC(res, 3)
	if m == nil || string(m.Result) != `{"tools":[]}` {
		t.Fatalf("findRPC = %+v", m)
	}
	if findRPC(res, 4) != nil {
		t.Error("found a response with another id")
	}
}

func TestReadToken(t *testing.T) {
	// {"iss":"https://h","aud":["https://h/mcp"],"scp":"a b","exp":2000000000}
	const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2giLCJhdWQiOlsiaHR0cHM6Ly9oL21jcCJdLCJzY3AiOiJhIGIiLCJleHAiOjIwMDAwMDAwMDB9.c2ln"
	c := readToken(jwt)
	if !c.jwt || !c.known || !reflect.DeepEqual(c.scopes, []string{"a", "b"}) || c.issuer != "https://h" ||
		!reflect.DeepEqual(c.audience, []string{"https://h/mcp"}) || c.expires.Unix() != 2000000000 {
		t.Errorf("readToken = %+v", c)
	}
	if c := readToken("mcpat_opaque"); c.jwt || c.known {
		t.Errorf("opaque token read as %+v", c)
	}
}
