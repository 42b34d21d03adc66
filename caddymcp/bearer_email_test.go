package caddymcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// countingUsers knows one user and counts the lookups.
type countingUsers struct {
	store.Users
	calls int
}

func (c *countingUsers) GetUser(_ context.Context, id string) (*store.User, error) {
	c.calls++
	if id != "u1" {
		return nil, store.ErrNotFound
	}
	return &store.User{ID: id, Email: "ada@example.com", EmailVerified: true}, nil
}

// TestLazyEmail: {http.auth.user.email} costs a lookup only when a
// placeholder asks for it, and one per request however often it is asked.
func TestLazyEmail(t *testing.T) {
	users := &countingUsers{}
	b := &BearerAuth{emails: bearer.NewEmails(users, nil)}
	repl := caddy.NewReplacer()
	repl.Map(b.lazyEmail(context.Background(), &bearer.Principal{Subject: "u1", Local: true}))
	if got := repl.ReplaceAll("{http.auth.user.id}", "-"); got != "-" || users.calls != 0 {
		t.Fatalf("another placeholder: %q after %d lookups, want no lookup", got, users.calls)
	}
	if got := repl.ReplaceAll("{http.auth.user.email} {http.auth.user.email} {http.auth.user.email_verified}", ""); got != "ada@example.com ada@example.com true" {
		t.Fatalf("email placeholders: %q", got)
	}
	if users.calls != 1 {
		t.Fatalf("%d lookups, want 1", users.calls)
	}
}

// verifiedUsers are local users, some of whose addresses the provider
// they signed in with did not verify.
type verifiedUsers struct {
	store.Users
	calls int
}

func (v *verifiedUsers) GetUser(_ context.Context, id string) (*store.User, error) {
	v.calls++
	switch id {
	case "u-verified":
		return &store.User{ID: id, Email: "ada@example.com", EmailVerified: true}, nil
	case "u-unverified":
		return &store.User{ID: id, Email: "ceo@victim.example"}, nil
	}
	return nil, store.ErrNotFound
}

// TestBearerEmailPlaceholders: {http.auth.user.email} carries only
// verified addresses, and {http.auth.user.email_verified} says whether it
// holds one (security finding 3). A local user's address counts only if
// their provider verified it; an external token's email claim only with
// email_verified true (or trust_email); and an external token's subject
// is never looked up among the local users.
func TestBearerEmailPlaceholders(t *testing.T) {
	ks := testkeys.NewKeySet(t)
	idp := testkeys.NewIdP(t, "/realms/x")
	idp.AddKey(t, "k1", testkeys.SignerFor(t, "ES256"), "ES256")
	now := testkeys.T0.Add(time.Minute)
	clock := func() time.Time { return now }
	newHandler := func(t *testing.T, trustEmail bool) (*BearerAuth, *verifiedUsers) {
		t.Helper()
		ri, err := bearer.NewRemoteIssuer(bearer.RemoteIssuerConfig{Issuer: idp.Issuer, Now: clock, TrustEmail: trustEmail})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", AuthorizationServers: []string{"https://mcp.example.com"},
			Remote: []*bearer.RemoteIssuer{ri}, Keys: testkeys.Static{KS: ks}, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		users := &verifiedUsers{}
		return &BearerAuth{resource: rs, emails: bearer.NewEmails(users, clock)}, users
	}
	local := func(sub string) string {
		c := testkeys.ValidClaims()
		c.Subject = sub
		tok, err := ks.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	external := func(mod func(jwt.MapClaims)) string {
		c := jwt.MapClaims{"iss": idp.Issuer, "sub": "u-verified", "aud": "https://mcp.example.com/mcp", "client_id": "cli",
			"iat": testkeys.T0.Unix(), "exp": testkeys.T0.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return idp.Sign(t, "k1", "ES256", "at+jwt", c)
	}
	tests := []struct {
		name       string
		trustEmail bool
		token      string
		want       string
		lookups    int
	}{
		{"local, verified", false, local("u-verified"), "ada@example.com|true", 1},
		{"local, unverified", false, local("u-unverified"), "|false", 1},
		{"external, no email claim, local subject", false, external(nil), "|false", 0},
		{"external, unverified email", false, external(func(c jwt.MapClaims) { c["email"] = "ceo@victim.example" }), "|false", 0},
		{"external, email_verified false", false, external(func(c jwt.MapClaims) {
			c["email"], c["email_verified"] = "ceo@victim.example", false
		}), "|false", 0},
		{"external, email_verified true", false, external(func(c jwt.MapClaims) {
			c["email"], c["email_verified"] = "kc@example.com", true
		}), "kc@example.com|true", 0},
		{"external, email_verified \"true\"", false, external(func(c jwt.MapClaims) {
			c["email"], c["email_verified"] = "kc@example.com", "true"
		}), "kc@example.com|true", 0},
		{"external, trust_email", true, external(func(c jwt.MapClaims) { c["email"] = "kc@example.com" }), "kc@example.com|true", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, users := newHandler(t, tt.trustEmail)
			r := httpsRequest("POST", "https://mcp.example.com/mcp", nil)
			r.Header.Set("Authorization", "Bearer "+tt.token)
			repl := caddy.NewReplacer()
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
			var got string
			next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				got = repl.ReplaceAll("{http.auth.user.email}|{http.auth.user.email_verified}", "")
				return nil
			})
			w := httptest.NewRecorder()
			if err := b.ServeHTTP(w, r, next); err != nil || w.Code != 200 {
				t.Fatalf("err %v, status %d %s", err, w.Code, w.Body)
			}
			if got != tt.want {
				t.Errorf("placeholders %q, want %q", got, tt.want)
			}
			if users.calls != tt.lookups {
				t.Errorf("%d local user lookups, want %d", users.calls, tt.lookups)
			}
		})
	}
}
