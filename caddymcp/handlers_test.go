package caddymcp

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
)

// nextRecorder is a next handler that records whether it ran.
type nextRecorder struct{ called bool }

func (n *nextRecorder) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	n.called = true
	w.WriteHeader(http.StatusTeapot)
	return nil
}

func newBearer(t *testing.T) *BearerAuth {
	t.Helper()
	rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp"})
	if err != nil {
		t.Fatal(err)
	}
	return &BearerAuth{resource: rs}
}

func httpsRequest(method, target string, server *caddyhttp.Server) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.TLS = &tls.ConnectionState{}
	if server != nil {
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, server))
	}
	return r
}

func TestBearerAuthServeHTTP(t *testing.T) {
	b := newBearer(t)
	t.Run("metadata without a token", func(t *testing.T) {
		for _, p := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
			next := &nextRecorder{}
			w := httptest.NewRecorder()
			if err := b.ServeHTTP(w, httpsRequest("GET", "https://h.example"+p, nil), next); err != nil {
				t.Fatal(err)
			}
			if w.Code != 200 || next.called || !strings.Contains(w.Body.String(), `"resource":"https://h.example/mcp"`) {
				t.Errorf("%s: %d %s", p, w.Code, w.Body)
			}
		}
	})
	t.Run("no token, no error routes: JSON body", func(t *testing.T) {
		next := &nextRecorder{}
		w := httptest.NewRecorder()
		if err := b.ServeHTTP(w, httpsRequest("POST", "https://h.example/mcp", &caddyhttp.Server{}), next); err != nil {
			t.Fatal(err)
		}
		if w.Code != 401 || next.called || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer resource_metadata="https://h.example/.well-known/oauth-protected-resource/mcp"`) {
			t.Errorf("%d %v %s", w.Code, w.Header(), w.Body)
		}
		if !strings.Contains(w.Body.String(), `"error":"unauthorized"`) {
			t.Errorf("body %s", w.Body)
		}
	})
	t.Run("no token, with handle_errors: an error for those routes", func(t *testing.T) {
		srv := &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}
		next := &nextRecorder{}
		w := httptest.NewRecorder()
		err := b.ServeHTTP(w, httpsRequest("POST", "https://h.example/mcp", srv), next)
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != 401 || next.called {
			t.Fatalf("error = %#v", err)
		}
		var f *bearer.Failure
		if !errors.As(err, &f) || f.Code != "unauthorized" {
			t.Errorf("the failure is not reachable from the error: %v", err)
		}
		if w.Header().Get("WWW-Authenticate") == "" || w.Body.Len() != 0 {
			t.Errorf("headers %v, body %q", w.Header(), w.Body)
		}
	})
	// Security finding 8: a preflight carries no token, so it is
	// answered here and never reaches the next handler (behind
	// reverse_proxy, the upstream would get an unauthenticated request).
	t.Run("preflight is answered, never passed on", func(t *testing.T) {
		next := &nextRecorder{}
		r := httpsRequest("OPTIONS", "https://h.example/mcp", nil)
		r.Header.Set("Origin", "http://localhost:6274")
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		w := httptest.NewRecorder()
		if err := b.ServeHTTP(w, r, next); err != nil || next.called {
			t.Fatalf("preflight: err %v, next called %v", err, next.called)
		}
		h := w.Header()
		if w.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight answer: %d %v", w.Code, h)
		}
	})
}

func TestOAuthServerPassesOtherPaths(t *testing.T) {
	s, err := oauth.New(oauth.Config{Keys: fixedKeys{}})
	if err != nil {
		t.Fatal(err)
	}
	o := &OAuthServer{server: s}
	next := &nextRecorder{}
	if err := o.ServeHTTP(httptest.NewRecorder(), httpsRequest("GET", "https://h/index.html", nil), next); err != nil || !next.called {
		t.Fatalf("other path: err %v, next %v", err, next.called)
	}
	next = &nextRecorder{}
	w := httptest.NewRecorder()
	if err := o.ServeHTTP(w, httpsRequest("GET", "https://h/.well-known/oauth-authorization-server", nil), next); err != nil || next.called || w.Code != 200 {
		t.Fatalf("metadata: err %v, next %v, status %d", err, next.called, w.Code)
	}
}

type fixedKeys struct{}

func (fixedKeys) KeySet(context.Context) (*signing.KeySet, error) { return nil, errors.New("no keys") }

func TestToolsPathValidation(t *testing.T) {
	for _, bad := range []string{"mcp", "/mcp*", "/mcp?x", "/mcp/"} {
		if err := (&Tools{Path: bad}).Validate(); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
	for _, good := range []string{"", "/mcp", "/api/mcp"} {
		if err := (&Tools{Path: good}).Validate(); err != nil {
			t.Errorf("path %q refused: %v", good, err)
		}
	}
}

func TestBearerAuthPassesVerifiedRequests(t *testing.T) {
	ks := newKeySet(t)
	rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Keys: keysOf{ks}, Required: []string{"booking:read"}})
	if err != nil {
		t.Fatal(err)
	}
	b := &BearerAuth{resource: rs}
	tok := signAccess(t, ks, "https://h.example/mcp", "j1", nil)
	r := httpsRequest("POST", "https://h.example/mcp", nil)
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	r.Header.Set("Authorization", "Bearer "+tok)
	next := &requestRecorder{}
	if err := b.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if next.p == nil || next.p.Subject != "user-1" || next.p.ClientID != "client-1" {
		t.Fatalf("principal = %+v", next.p)
	}
	if next.header.Get("Authorization") != "" {
		t.Error("the Authorization header reached the next handler")
	}
	for key, want := range map[string]string{"http.auth.user.id": "user-1", "http.auth.user.client_id": "client-1",
		"http.auth.user.scope": "booking:read", "http.auth.user.aud": "https://h.example/mcp"} {
		if got, _ := repl.GetString(key); got != want {
			t.Errorf("{%s} = %q, want %q", key, got, want)
		}
	}
}
