package caddymcp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestBearerExternalIssuer runs mcp_bearer in Caddy with an external
// issuer block: the issuer's keys are discovered from its metadata, its
// tokens pass with the identity placeholders set, and the resource's
// metadata names it as the authorization server.
func TestBearerExternalIssuer(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var idp *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": idp.URL, "jwks_uri": idp.URL + "/certs"})
	})
	mux.HandleFunc("/certs", func(w http.ResponseWriter, r *http.Request) {
		raw, _ := key.PublicKey.Bytes()
		b64 := base64.RawURLEncoding.EncodeToString
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": "kc-1", "use": "sig", "x": b64(raw[1:33]), "y": b64(raw[33:]),
		}}})
	})
	idp = httptest.NewServer(mux)
	t.Cleanup(idp.Close)

	site := startSite(t, "", fmt.Sprintf(`	mcp_bearer /mcp* {
		issuer %s {
			audience account
			accept_jwt_type
		}
		scope product:read
	}
	respond /mcp* "user={http.auth.user.id} client={http.auth.user.client_id} iss={http.auth.user.iss} email={http.auth.user.email} verified={http.auth.user.email_verified} auth={header.Authorization}"
`, idp.URL))

	sign := func(mod func(jwt.MapClaims)) string {
		c := jwt.MapClaims{"iss": idp.URL, "sub": "kc-user", "aud": "account", "azp": "claude", "email": "kc@example.com", "email_verified": true,
			"scope": "openid product:read", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		tok.Header["typ"], tok.Header["kid"] = "JWT", "kc-1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	call := func(token string) (int, string, string) { return postBearer(t, site+"/mcp", token) }

	code, body, _ := call(sign(nil))
	if want := "user=kc-user client=claude iss=" + idp.URL + " email=kc@example.com verified=true auth="; code != 200 || body != want {
		t.Fatalf("valid token: %d %q, want %q", code, body, want)
	}
	// An address the issuer did not verify is not passed on.
	code, body, _ = call(sign(func(c jwt.MapClaims) { delete(c, "email_verified") }))
	if want := "user=kc-user client=claude iss=" + idp.URL + " email= verified=false auth="; code != 200 || body != want {
		t.Fatalf("unverified email: %d %q, want %q", code, body, want)
	}
	code, _, chal := call(sign(func(c jwt.MapClaims) { c["scope"] = "openid" }))
	if code != 403 || !strings.Contains(chal, `error="insufficient_scope"`) || !strings.Contains(chal, `scope="openid product:read"`) {
		t.Fatalf("missing scope: %d %q", code, chal)
	}
	code, _, chal = call(sign(func(c jwt.MapClaims) { c["aud"] = "other" }))
	if code != 401 || !strings.Contains(chal, `error="invalid_token"`) {
		t.Fatalf("wrong audience: %d %q", code, chal)
	}
	code, _, chal = call("")
	if code != 401 || !strings.Contains(chal, `resource_metadata="`+site+`/.well-known/oauth-protected-resource/mcp"`) {
		t.Fatalf("no token: %d %q", code, chal)
	}
	var prm struct {
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if code := getJSON(t, site+"/.well-known/oauth-protected-resource/mcp", &prm); code != 200 ||
		len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != idp.URL {
		t.Fatalf("metadata: %d %v", code, prm.AuthorizationServers)
	}
}

// TestBearerExternalIssuerValidation checks that a bad issuer block
// fails at provisioning with a message naming it.
func TestBearerExternalIssuerValidation(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	for block, want := range map[string]string{
		"issuer http://idp.example.com":                                        `issuer "http://idp.example.com"`,
		"issuer https://idp.example.com {\n\t\t\tjwks_url ftp://x/keys\n\t\t}": "jwks_url",
		"issuer https://idp.example.com {\n\t\t\tleeway 10m\n\t\t}":            "leeway",
	} {
		cfg := adaptCaddyfile(t, "{\n\tadmin off\n}\nhttp://localhost:9 {\n\tmcp_bearer /mcp* {\n\t\t"+block+"\n\t}\n\trespond ok\n}\n")
		if err := validateErr(cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to name %q", block, err, want)
		}
	}
}
