package login

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func TestPolicy(t *testing.T) {
	tests := []struct {
		name   string
		rules  []Rule
		claims jwt.MapClaims
		allow  bool
		scopes []string // when allowed; nil means all
	}{
		{"exact email, any case", []Rule{{Emails: []string{"Alice@Example.com"}, Scopes: []string{"booking:read"}}},
			jwt.MapClaims{"email": "alice@EXAMPLE.com"}, true, []string{"booking:read"}},
		{"domain", []Rule{{Domains: []string{"example.com"}}},
			nil, true, nil},
		{"hosted domain", []Rule{{HostedDomains: []string{"corp.example"}, Scopes: []string{"order:read"}}},
			jwt.MapClaims{"email": "alice@gmail.example", "hd": "corp.example"}, true, []string{"order:read"}},
		{"everyone", []Rule{{Everyone: true}}, jwt.MapClaims{"email": "bob@elsewhere.example"}, true, nil},
		{"unverified email, email rule", []Rule{{Emails: []string{"alice@example.com"}}},
			jwt.MapClaims{"email_verified": false}, false, nil},
		{"unverified email, domain rule", []Rule{{Domains: []string{"example.com"}}},
			jwt.MapClaims{"email_verified": "false"}, false, nil},
		{"missing email_verified", []Rule{{Emails: []string{"alice@example.com"}}},
			jwt.MapClaims{"email_verified": nil}, false, nil},
		{"email_verified as a string", []Rule{{Emails: []string{"alice@example.com"}}},
			jwt.MapClaims{"email_verified": "true"}, true, nil},
		{"subdomain is not the domain", []Rule{{Domains: []string{"example.com"}}},
			jwt.MapClaims{"email": "alice@evil-example.com"}, false, nil},
		{"union of scopes", []Rule{
			{Emails: []string{"alice@example.com"}, Scopes: []string{"a:read", "b:read"}},
			{Domains: []string{"example.com"}, Scopes: []string{"b:read", "c:write"}},
			{Domains: []string{"other.example"}, Scopes: []string{"d:read"}},
		}, nil, true, []string{"a:read", "b:read", "c:write"}},
		{"a rule without scopes grants all", []Rule{
			{Emails: []string{"alice@example.com"}, Scopes: []string{"a:read"}},
			{Domains: []string{"example.com"}},
		}, nil, true, nil},
		{"a rule with empty scopes grants none", []Rule{{Everyone: true, Scopes: []string{}}},
			nil, true, []string{}},
		{"no rule matches", []Rule{{Emails: []string{"bob@example.com"}}, {Domains: []string{"other.example"}}},
			nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{rules: tt.rules})
			e.op().set(func(op *fakeOP) {
				for k, v := range tt.claims {
					if v == nil {
						delete(op.user, k)
					} else {
						op.user[k] = v
					}
				}
			})
			r := e.login(LoginPath)
			if !tt.allow {
				wantPage(t, r, http.StatusForbidden, "is not allowed to use this server")
				email, _ := e.op().user["email"].(string)
				if !strings.Contains(r.body, "Access denied: "+email+" is not allowed to use this server") {
					t.Errorf("the page does not name %s:\n%s", email, r.body)
				}
				if r.cookie(InsecureSessionCookie) != nil || e.sessionCookie(e.client) != "" {
					t.Error("a denied user got a session cookie")
				}
				if n := countSessions(t, e); n != 0 {
					t.Errorf("a denied user has %d sessions", n)
				}
				if !strings.Contains(e.logs.String(), "reason=policy") {
					t.Errorf("no audit record:\n%s", e.logs.String())
				}
				return
			}
			if r.status != http.StatusSeeOther {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var me Me
			_ = json.Unmarshal([]byte(e.me(e.sessionCookie(e.client)).body), &me)
			if (me.Scopes == nil) != (tt.scopes == nil) || !slices.Equal(me.Scopes, tt.scopes) {
				t.Errorf("scopes %#v, want %#v", me.Scopes, tt.scopes)
			}
		})
	}
}

// countSessions counts the live sessions of the provider's user.
func countSessions(t *testing.T, e *env) int {
	t.Helper()
	ctx := context.Background()
	now := e.clock.Now()
	u, err := e.store.UpsertUser(ctx, &store.User{ID: "probe", Provider: "test", Subject: "1234567890",
		CreatedAt: now, UpdatedAt: now, LastLoginAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == "probe" {
		t.Fatal("the user was not recorded")
	}
	list, err := e.store.ListSessionsByUser(ctx, u.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}
