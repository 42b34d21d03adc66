package oauth

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Tests of the steps of the refresh_token grant, each on its own.

func TestParseRefresh(t *testing.T) {
	for _, tt := range []struct {
		name string
		form map[string]string
		want refreshRequest
		err  bool
	}{
		{"no token", map[string]string{"scope": "a"}, refreshRequest{}, true},
		{"empty token", map[string]string{"refresh_token": ""}, refreshRequest{}, true},
		{"token only", map[string]string{"refresh_token": "rt"}, refreshRequest{token: "rt"}, false},
		{"scope and resource", map[string]string{"refresh_token": "rt", "scope": "a  b", "resource": "https://r.example/"},
			refreshRequest{token: "rt", scope: "a  b", resource: "https://r.example/", hasResource: true}, false},
		{"empty resource is sent", map[string]string{"refresh_token": "rt", "resource": ""},
			refreshRequest{token: "rt", hasResource: true}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, oe := parseRefresh(tt.form)
			if (oe != nil) != tt.err {
				t.Fatalf("error %v, want one: %v", oe, tt.err)
			}
			if oe != nil {
				if oe.Code != "invalid_request" {
					t.Fatalf("error %s, want invalid_request", oe.Code)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("parsed %+v, want %+v", got, tt.want)
			}
		})
	}
}

// newRefreshIssuer is a token request of client "dyn" over a connection
// with certificate thumbprint "cert-1" and a DPoP proof of key "key-1".
func newRefreshIssuer(t *testing.T) *tokenIssuer {
	t.Helper()
	s := newStepServer(t, &stepStore{}, &stepUsers{})
	s.cfg.Random = rand.Reader
	return &tokenIssuer{s: s, issuer: stepIssuer, client: &store.Client{ID: "dyn"}, now: time.Unix(1_800_000_000, 0),
		proof: &dpop.Proof{JKT: "key-1"}, cert: "cert-1"}
}

func TestDecideRefresh(t *testing.T) {
	const all = "booking:read booking:write order:read"
	token := func(change func(*store.RefreshToken)) *store.RefreshToken {
		rt := &store.RefreshToken{ClientID: "dyn", UserID: "alice", Scope: all, Resource: stepResource}
		if change != nil {
			change(rt)
		}
		return rt
	}
	allowed := userPolicy{userID: "alice", allowed: true}
	for _, tt := range []struct {
		name   string
		req    refreshRequest
		policy userPolicy
		old    *store.RefreshToken
		noKey  bool // the request has no DPoP proof
		want   refreshScopes
		code   string // an OAuth error
		err    error  // another error
	}{
		{name: "the scope is kept", policy: allowed, old: token(nil), want: refreshScopes{all, all}},
		{name: "another client's token", policy: allowed, old: token(func(rt *store.RefreshToken) { rt.ClientID = "other" }), code: "invalid_grant"},
		{name: "bound to the request's key", policy: allowed, old: token(func(rt *store.RefreshToken) { rt.DPoPJKT = "key-1" }), want: refreshScopes{all, all}},
		{name: "bound to another key", policy: allowed, old: token(func(rt *store.RefreshToken) { rt.DPoPJKT = "key-2" }), code: "invalid_grant"},
		{name: "bound to a key, no proof", policy: allowed, old: token(func(rt *store.RefreshToken) { rt.DPoPJKT = "key-1" }), noKey: true, code: "invalid_grant"},
		{name: "bound to the request's certificate", policy: allowed, old: token(func(rt *store.RefreshToken) { rt.CertThumbprint = "cert-1" }), want: refreshScopes{all, all}},
		{name: "bound to another certificate", policy: allowed, old: token(func(rt *store.RefreshToken) { rt.CertThumbprint = "cert-2" }), code: "invalid_grant"},
		{name: "a narrower scope for the access token", req: refreshRequest{scope: " order:read  booking:read"}, policy: allowed, old: token(nil),
			want: refreshScopes{"order:read booking:read", all}},
		{name: "a wider scope", req: refreshRequest{scope: "booking:read product:read"}, policy: allowed, old: token(nil), code: "invalid_scope"},
		{name: "the user is no longer allowed", req: refreshRequest{}, policy: userPolicy{userID: "alice"}, old: token(nil), err: errUserNotAllowed},
		{name: "the policy is of another user", policy: userPolicy{userID: "bob", allowed: true}, old: token(nil), err: errUserNotAllowed},
		{name: "an unknown token has no policy", policy: userPolicy{}, old: token(nil), err: errUserNotAllowed},
		{name: "the policy narrows both scopes", req: refreshRequest{scope: "booking:read order:read"},
			policy: userPolicy{userID: "alice", allowed: true, scopes: []string{"order:read", "booking:write"}}, old: token(nil),
			want: refreshScopes{"order:read", "booking:write order:read"}},
		{name: "the policy leaves nothing", req: refreshRequest{scope: "booking:read"},
			policy: userPolicy{userID: "alice", allowed: true, scopes: []string{"order:read"}}, old: token(nil), err: errUserNotAllowed},
		{name: "the same resource", req: refreshRequest{resource: stepResource, hasResource: true}, policy: allowed, old: token(nil), want: refreshScopes{all, all}},
		{name: "another resource", req: refreshRequest{resource: "https://other.example.com/mcp", hasResource: true}, policy: allowed, old: token(nil), code: "invalid_target"},
		{name: "an empty resource", req: refreshRequest{hasResource: true}, policy: allowed, old: token(nil), code: "invalid_target"},
		// The rules apply in order: the client before the scope.
		{name: "another client asking for more", req: refreshRequest{scope: "product:read"}, policy: allowed,
			old: token(func(rt *store.RefreshToken) { rt.ClientID = "other" }), code: "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti := newRefreshIssuer(t)
			if tt.noKey {
				ti.proof = nil
			}
			before := *tt.old
			got, err := ti.decideRefresh(tt.req, tt.policy, tt.old)
			var oe *oauthError
			switch {
			case tt.code != "":
				if !errors.As(err, &oe) || oe.Code != tt.code {
					t.Fatalf("error %v, want %s", err, tt.code)
				}
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
			case err != nil:
				t.Fatalf("error %v", err)
			case got != tt.want:
				t.Fatalf("scopes %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(*tt.old, before) {
				t.Errorf("the old token was changed: %+v", tt.old)
			}
		})
	}
}

func TestRotateRefresh(t *testing.T) {
	ks := testkeys.NewKeySetAt(t, time.Unix(1_800_000_000, 0))
	ti := newRefreshIssuer(t)
	ti.keys = ks
	ti.client = &store.Client{ID: "dyn", GrantTypes: []string{"authorization_code", "refresh_token"}}
	old := &store.RefreshToken{ClientID: "dyn", UserID: "alice", Scope: "booking:read booking:write", Resource: stepResource, CertThumbprint: "cert-0"}
	g := &store.Grant{ID: "g1", CreatedAt: ti.now.Add(-time.Hour)}
	out, resp, err := ti.rotateRefresh("old-token", old, g, refreshScopes{access: "booking:read", refresh: "booking:write"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Scope != "booking:read" || out.Access.Scope != "booking:read" || out.Access.GrantID != "g1" {
		t.Errorf("access token of scope %q / %q, grant %q", resp.Scope, out.Access.Scope, out.Access.GrantID)
	}
	// OAuth 2.1 §4.3.1: the new refresh token keeps the scope it is given;
	// and a certificate binding is kept.
	if out.Refreshed == nil || out.Refreshed.Scope != "booking:write" || out.Refreshed.CertThumbprint != "cert-0" || resp.RefreshToken == "" {
		t.Fatalf("refresh token %+v", out.Refreshed)
	}
	// The response is sealed under the old token, for a replay in the
	// grace window, and only the old token opens it.
	body, err := unseal("old-token", out.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(resp)
	if !bytes.Equal(body, want) {
		t.Errorf("sealed %s, want %s", body, want)
	}
	if _, err := unseal("other-token", out.Sealed); err == nil {
		t.Error("another token opens the sealed response")
	}
}

func TestDecideReplay(t *testing.T) {
	ti := newRefreshIssuer(t)
	resp := &tokenResponse{AccessToken: "at", TokenType: "DPoP", ExpiresIn: 3600, RefreshToken: "rt-2", Scope: "booking:read"}
	body, _ := json.Marshal(resp)
	sealed, err := seal("rt-1", body, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	grace := ti.s.cfg.RefreshGrace
	rotated := func(change func(*store.RefreshToken)) *store.RefreshToken {
		rt := &store.RefreshToken{ClientID: "dyn", GrantID: "g1", RotatedAt: ti.now.Add(-grace / 2), Successor: sealed}
		if change != nil {
			change(rt)
		}
		return rt
	}
	for _, tt := range []struct {
		name   string
		token  string
		old    *store.RefreshToken
		replay bool   // answered again
		code   string // refused without revoking
	}{
		{name: "within the grace window", token: "rt-1", old: rotated(nil), replay: true},
		{name: "at the end of the grace window", token: "rt-1", old: rotated(func(rt *store.RefreshToken) { rt.RotatedAt = ti.now.Add(-grace) }), replay: true},
		{name: "after the grace window", token: "rt-1", old: rotated(func(rt *store.RefreshToken) { rt.RotatedAt = ti.now.Add(-grace - time.Second) })},
		{name: "no sealed response", token: "rt-1", old: rotated(func(rt *store.RefreshToken) { rt.Successor = nil })},
		{name: "a sealed response that does not open", token: "rt-1", old: rotated(func(rt *store.RefreshToken) { rt.Successor = []byte("garbage, not sealed") })},
		{name: "sealed under another token", token: "rt-x", old: rotated(nil)},
		{name: "another client's token", token: "rt-1", old: rotated(func(rt *store.RefreshToken) { rt.ClientID = "other" }), code: "invalid_grant"},
		{name: "bound to another key", token: "rt-1", old: rotated(func(rt *store.RefreshToken) { rt.DPoPJKT = "key-2" }), code: "invalid_grant"},
		{name: "bound to another certificate", token: "rt-1", old: rotated(func(rt *store.RefreshToken) { rt.CertThumbprint = "cert-2" }), code: "invalid_grant"},
		{name: "bound to the request's key and certificate", token: "rt-1",
			old: rotated(func(rt *store.RefreshToken) { rt.DPoPJKT, rt.CertThumbprint = "key-1", "cert-1" }), replay: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Each request with a proof of its own: decideReplay records
			// the proof it answers.
			ti.proof = &dpop.Proof{JKT: "key-1", JTI: tt.name}
			got, oe := ti.decideReplay(tt.token, tt.old)
			switch {
			case tt.code != "":
				if oe == nil || oe.Code != tt.code || got != nil {
					t.Fatalf("%+v, %v; want %s", got, oe, tt.code)
				}
			case oe != nil:
				t.Fatalf("refused: %v", oe)
			case tt.replay && (got == nil || *got != *resp):
				t.Fatalf("replayed %+v, want %+v", got, resp)
			case !tt.replay && got != nil:
				t.Fatalf("replayed %+v, want reuse", got)
			}
		})
	}
	// A proof already used gets neither the first response again nor a
	// revocation (two identical requests at once, RFC 9449 §11.1).
	ti.proof = &dpop.Proof{JKT: "key-1", JTI: "used"}
	if _, oe := ti.decideReplay("rt-1", rotated(nil)); oe != nil {
		t.Fatalf("first use refused: %v", oe)
	}
	if got, oe := ti.decideReplay("rt-1", rotated(nil)); oe == nil || oe.Code != "invalid_dpop_proof" || got != nil {
		t.Fatalf("a used proof: %+v, %v; want invalid_dpop_proof", got, oe)
	}
}
