package testkeys

import (
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/golang-jwt/jwt/v5"
)

// IdP is an external authorization server on loopback: it publishes
// metadata and a JWKS, and signs tokens with its keys.
type IdP struct {
	Server      *httptest.Server
	Issuer      string
	mu          sync.Mutex
	keys        map[string]crypto.Signer // by kid
	algs        map[string]string        // alg published per kid ("" = none)
	ExtraJWKS   []map[string]string      // raw extra entries
	JWKSFetches atomic.Int32
	MetaIssuer  string // issuer its metadata claims; default: issuer
	Down        atomic.Bool
	OIDCOnly    bool // serve only /.well-known/openid-configuration
	HugeJWKS    bool
}

// NewIdP starts an IdP whose issuer is its URL plus issuerPath.
func NewIdP(t *testing.T, issuerPath string) *IdP {
	t.Helper()
	idp := &IdP{keys: map[string]crypto.Signer{}, algs: map[string]string{}}
	mux := http.NewServeMux()
	meta := func(w http.ResponseWriter, r *http.Request) {
		iss := idp.MetaIssuer
		if iss == "" {
			iss = idp.Issuer
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": idp.Server.URL + "/keys"})
	}
	p := strings.TrimSuffix(issuerPath, "/")
	mux.HandleFunc("/.well-known/oauth-authorization-server"+p, func(w http.ResponseWriter, r *http.Request) {
		if idp.OIDCOnly {
			http.NotFound(w, r)
			return
		}
		meta(w, r)
	})
	mux.HandleFunc(p+"/.well-known/openid-configuration", meta)
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		idp.JWKSFetches.Add(1)
		if idp.Down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if idp.HugeJWKS {
			_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`))
			return
		}
		idp.mu.Lock()
		defer idp.mu.Unlock()
		var keys []any
		for kid, k := range idp.keys {
			keys = append(keys, JWKOf(t, k.Public(), kid, idp.algs[kid]))
		}
		for _, e := range idp.ExtraJWKS {
			keys = append(keys, e)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	idp.Server = httptest.NewServer(mux)
	t.Cleanup(idp.Server.Close)
	idp.Issuer = idp.Server.URL + issuerPath
	return idp
}

// AddKey publishes k under kid, with publishedAlg as its alg ("" for none).
func (idp *IdP) AddKey(t *testing.T, kid string, k crypto.Signer, publishedAlg string) {
	t.Helper()
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.keys[kid] = k
	idp.algs[kid] = publishedAlg
}

// RemoveKey withdraws the key kid from the published set (the IdP can
// still sign with a key it holds elsewhere: tests keep the signer).
func (idp *IdP) RemoveKey(kid string) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	delete(idp.algs, kid)
	delete(idp.keys, kid)
}

// Sign signs claims with the key kid under alg and header typ.
func (idp *IdP) Sign(t *testing.T, kid, alg, typ string, claims jwt.MapClaims) string {
	t.Helper()
	idp.mu.Lock()
	k := idp.keys[kid]
	idp.mu.Unlock()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if typ == "" {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = typ
	}
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// RemoteEnv is a resource that accepts the tokens of an IdP, with a
// settable clock.
type RemoteEnv struct {
	IdP   *IdP
	RS    *bearer.Resource
	Now   time.Time
	Clock func() time.Time
}

// RemoteResource is the resource identifier of a RemoteEnv.
const RemoteResource = "https://mcp.example.com/mcp"

// NewRemoteEnv starts an IdP and a resource that trusts it.
func NewRemoteEnv(t *testing.T, issuerPath string, mod func(*bearer.RemoteIssuerConfig), required ...string) *RemoteEnv {
	t.Helper()
	e := &RemoteEnv{IdP: NewIdP(t, issuerPath), Now: T0.Add(time.Minute)}
	var mu sync.Mutex
	e.Clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return e.Now }
	cfg := bearer.RemoteIssuerConfig{Issuer: e.IdP.Issuer, Now: e.Clock}
	if mod != nil {
		mod(&cfg)
	}
	ri, err := bearer.NewRemoteIssuer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.RS, err = bearer.NewResource(bearer.ResourceConfig{Resource: "/mcp", Remote: []*bearer.RemoteIssuer{ri},
		Required: required, Now: e.Clock, Keys: Static{KS: NewKeySet(t)}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Claims are valid claims of the IdP for RemoteResource, changed by mod.
func (e *RemoteEnv) Claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"iss": e.IdP.Issuer, "sub": "user-7", "aud": []string{RemoteResource},
		"iat": T0.Unix(), "exp": T0.Add(time.Hour).Unix(), "jti": "remote-1", "client_id": "cli", "scope": "product:read"}
	if mod != nil {
		mod(c)
	}
	return c
}

// Check sends token to the resource as a bearer token.
func (e *RemoteEnv) Check(t *testing.T, token string) (*bearer.Principal, *bearer.Failure) {
	t.Helper()
	r := httptest.NewRequest("POST", "https://mcp.example.com/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return e.RS.Check(r)
}
