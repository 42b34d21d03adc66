package caddymcp

// A native fuzz target (go test -fuzz) of the Caddyfile syntax of the
// caddymcp global option and the mcp_oauth, mcp_bearer and mcp_tools
// directives. Its seeds, and any input kept under
// testdata/fuzz/FuzzCaddyfile/, run as ordinary tests.
//
//	go test -run '^$' -fuzz '^FuzzCaddyfile$' -fuzztime 2m ./caddymcp/

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// fuzzDirectives are the option and directives FuzzCaddyfile feeds, by
// its kind argument.
var fuzzDirectives = []string{"caddymcp", "mcp_oauth", "mcp_bearer", "mcp_tools"}

// FuzzCaddyfile parses "<directive><input>" for the caddymcp global
// option and each directive, twice: with the directive's own parser, and
// inside a whole Caddyfile through Caddy's adapter. Neither may panic. A
// parse either fails with an error naming the file and line, or yields a
// module whose JSON decodes strictly (no unknown member) back into the
// module and encodes to the same JSON.
func FuzzCaddyfile(f *testing.F) {
	seeds := [][]string{
		{ // caddymcp
			"", " {\n}", " postgres://x",
			everyGlobalOption,
			" {\n\tembedded_path /var/lib/caddymcp.db\n\tdatabase x\n}",
			" {\n\tmax_conns -1\n\tstart_timeout 0s\n\tscopes a a\n}",
			" {\n\tscopes a\"b\n\tissuer\n}",
			" {\n\tissuer a b\n\tissuer c\n}",
		},
		{ // mcp_oauth
			"", " {\n\tissuer https://a.example\n\tscopes x y\n}",
			everyOAuthSetting,
			oauthLoginAndPolicy,
			" {\n\trate_limit {\n\t\tregister 10/m 20\n\t\ttoken off\n\t\tipv6_prefix 64\n\t}\n}",
			" {\n\trate_limit off\n}",
			" {\n\tregistration off\n\tregistration {\n\t\tmax_clients x\n\t}\n}",
			" {\n\tclient \"\" {\n\t\tredirect_uris \"\"\n\t}\n}",
			" {\n\tclient a {\n\t\tname A\n\t}\n\tclient a {\n\t}\n}",
			" {\n\tlogin oidc\n\tlogin github\n\tallow\n\tallow * bob\n}",
			" {\n\tcode_lifetime 200000d\n\taccess_token_lifetime 1ns\n\trefresh_grace -5s\n}",
			" https://a.example",
		},
		{ // mcp_bearer
			"", " /mcp*", " /mcp* {\n\tscope booking:write order:write\n\tscope_match all\n}",
			everyBearerSetting,
			" @api {\n\tscope_match some\n}", " * {\n\tauthorization_server\n}", " /a /b",
			" {\n\tresource\n\tresource a b\n}",
		},
		{ // mcp_tools
			"", " /rpc*", " {\n\tpath /rpc\n\tallowed_origins https://app.example\n\tunguarded\n}",
			" {\n\tsessions 5m\n\tsessions\n}", " {\n\tsessions forever\n}", " {\n\troute /x\n}", " {\n\tunguarded yes\n}",
		},
	}
	for kind, inputs := range seeds {
		for _, in := range inputs {
			f.Add(uint8(kind), in)
		}
	}
	f.Add(uint8(1), " {\n\tname `a\nb`\n}")
	f.Add(uint8(1), " {\n\tscopes <<EOF\n\ta\n\tEOF\n}")
	f.Add(uint8(2), " {\n\tresource_name \"unterminated\n}")

	f.Fuzz(func(t *testing.T, kind uint8, input string) {
		name := fuzzDirectives[int(kind)%len(fuzzDirectives)]
		tokens, err := caddyfile.Tokenize([]byte(name+input), "Testfile")
		if err != nil {
			return // not Caddyfile tokens at all: the lexer's business
		}
		unmarshalDirective(t, name, tokens)
		if inScope(tokens) {
			adaptDirective(t, name, input)
		}
	})
}

// unmarshalDirective runs the directive's own parser on tokens.
func unmarshalDirective(t *testing.T, name string, tokens []caddyfile.Token) {
	t.Helper()
	d := caddyfile.NewDispenser(tokens)
	module := newModule(name)
	var err error
	if name == "caddymcp" {
		var v any
		if v, err = parseGlobalOption(d, nil); err == nil {
			if err := strictJSON(v.(httpcaddyfile.App).Value, module); err != nil {
				t.Fatalf("the app's JSON %s: %v", v.(httpcaddyfile.App).Value, err)
			}
		}
	} else {
		err = module.(caddyfile.Unmarshaler).UnmarshalCaddyfile(d)
	}
	if err != nil {
		if !strings.Contains(err.Error(), "Testfile:") {
			t.Fatalf("%s: error %q does not name the file and line", name, err)
		}
		return
	}
	roundTrip(t, name, module)
}

// roundTrip checks that a parsed module's JSON decodes strictly into a
// new module of its type and encodes to the same JSON.
func roundTrip(t *testing.T, name string, module any) {
	t.Helper()
	b, err := json.Marshal(module)
	if err != nil {
		t.Fatalf("%s: %+v does not encode: %v", name, module, err)
	}
	again := newModule(name)
	if err := strictJSON(b, again); err != nil {
		t.Fatalf("%s: JSON %s does not decode back: %v", name, b, err)
	}
	if b2, _ := json.Marshal(again); !bytes.Equal(b, b2) {
		t.Fatalf("%s: JSON %s decodes and encodes as %s", name, b, b2)
	}
}

// newModule is a new module of the global option or directive name; nil
// for any other name.
func newModule(name string) any {
	switch name {
	case "caddymcp":
		return new(App)
	case "mcp_oauth":
		return new(OAuthServer)
	case "mcp_bearer":
		return new(BearerAuth)
	case "mcp_tools":
		return new(Tools)
	}
	return nil
}

// strictJSON decodes b into v, refusing unknown members and trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// inScope reports whether tokens stay inside their directive: braces
// balanced and never closing an enclosing block, nothing outside them on
// another line than the directive's, and no import (which would read
// other files) or snippet.
func inScope(tokens []caddyfile.Token) bool {
	depth := 0
	for _, tok := range tokens {
		if depth == 0 && tok.Line != tokens[0].Line && tok.Text != "}" {
			return false
		}
		switch {
		case tok.Text == "{":
			depth++
		case tok.Text == "}":
			depth--
		case tok.Text == "import" || strings.HasPrefix(tok.Text, "("):
			return false
		}
		if depth < 0 {
			return false
		}
	}
	return depth == 0
}

// adaptDirective adapts a Caddyfile in which the directive (or the
// global option) carries input, and checks our modules in the result.
func adaptDirective(t *testing.T, name, input string) {
	t.Helper()
	global, site := "", map[string]string{"mcp_oauth": "", "mcp_bearer": " /mcp*", "mcp_tools": ""}
	if name == "caddymcp" {
		global = "\tcaddymcp" + input + "\n"
	} else {
		site[name] = input
	}
	src := "{\n\tadmin off\n" + global + "}\nhttp://localhost:9 {\n\tmcp_oauth" + site["mcp_oauth"] +
		"\n\tmcp_bearer" + site["mcp_bearer"] + "\n\tmcp_tools" + site["mcp_tools"] + "\n}\n"
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatalf("adapted config does not decode: %v\n%s", err, cfgJSON)
	}
	var doc map[string]any
	if err := json.Unmarshal(cfgJSON, &doc); err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	if app, ok := cfg.AppsRaw["caddymcp"]; ok {
		if err := strictJSON(app, new(App)); err != nil {
			t.Fatalf("adapted caddymcp app %s: %v", app, err)
		}
		found["caddymcp"]++
	}
	walkHandlers(doc, func(handler string, raw map[string]any) {
		delete(raw, "handler")
		b, _ := json.Marshal(raw)
		module := newModule(handler)
		if module == nil || handler == "caddymcp" {
			return
		}
		if err := strictJSON(b, module); err != nil {
			t.Fatalf("adapted %s handler %s: %v", handler, b, err)
		}
		found[handler]++
	})
	for _, want := range fuzzDirectives[1:] {
		if found[want] != 1 {
			t.Fatalf("adapting %q gave %d %s handlers:\n%s", src, found[want], want, cfgJSON)
		}
	}
	if name == "caddymcp" && found["caddymcp"] != 1 {
		t.Fatalf("adapting %q gave no caddymcp app:\n%s", src, cfgJSON)
	}
}

// walkHandlers calls fn for every JSON object with a "handler" member.
func walkHandlers(v any, fn func(handler string, raw map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		if h, ok := x["handler"].(string); ok {
			fn(h, x)
		}
		for _, child := range x {
			walkHandlers(child, fn)
		}
	case []any:
		for _, child := range x {
			walkHandlers(child, fn)
		}
	}
}
