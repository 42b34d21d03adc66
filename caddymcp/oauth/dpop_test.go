package oauth_test

// DPoP (RFC 9449) at the token endpoint, the authorization endpoint
// (dpop_jkt) and the resource server: every way a proof can be wrong,
// key binding of codes, refresh tokens and access tokens, server nonces,
// and the challenges.

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// tokenURL is the token endpoint, the htu of token request proofs.
const tokenURL = flowIssuer + oauth.TokenPath

// dpopKey is a client's DPoP key pair.
type dpopKey struct {
	signer crypto.Signer
	alg    string
	jwk    map[string]any
	jkt    string
}

func newDPoPKey(t *testing.T, alg string) *dpopKey {
	t.Helper()
	signer := testkeys.SignerFor(t, alg)
	pub := testkeys.JWKOf(t, signer.Public(), "", "")
	delete(pub, "use")
	jwk := map[string]any{}
	for k, v := range pub {
		jwk[k] = v
	}
	return &dpopKey{signer: signer, alg: alg, jwk: jwk, jkt: thumbprintOf(t, pub)}
}

// thumbprintOf computes an RFC 7638 thumbprint: the SHA-256 of the
// required members as JSON with sorted keys and no white space, which is
// what encoding/json makes of a map.
func thumbprintOf(t *testing.T, jwk map[string]string) string {
	t.Helper()
	members := map[string][]string{"EC": {"crv", "kty", "x", "y"}, "RSA": {"e", "kty", "n"}, "OKP": {"crv", "kty", "x"}}[jwk["kty"]]
	req := map[string]string{}
	for _, m := range members {
		req[m] = jwk[m]
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// proofOpt changes a proof's header or claims before it is signed.
type proofOpt func(header, claims map[string]any)

// withClaim sets a claim of the proof (nil removes it).
func withClaim(name string, v any) proofOpt {
	return func(_, c map[string]any) { setMember(c, name, v) }
}

// withHeaderParam sets a header parameter of the proof (nil removes it).
func withHeaderParam(name string, v any) proofOpt {
	return func(h, _ map[string]any) { setMember(h, name, v) }
}

// withATH binds a resource request's proof to an access token.
func withATH(token string) proofOpt {
	sum := sha256.Sum256([]byte(token))
	return withClaim("ath", base64.RawURLEncoding.EncodeToString(sum[:]))
}

// randomJTI is a jti with 128 random bits.
func randomJTI(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// proof makes a DPoP proof for htm and htu at now.
func (k *dpopKey) proof(t *testing.T, htm, htu string, now time.Time, opts ...proofOpt) string {
	t.Helper()
	header := map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk}
	claims := map[string]any{"jti": randomJTI(t), "htm": htm, "htu": htu, "iat": now.Unix()}
	for _, o := range opts {
		o(header, claims)
	}
	// Signed in the key's algorithm, whatever the header says.
	return signProofWith(t, jwt.GetSigningMethod(k.alg), header, claims, k.signer)
}

// signJWS signs claims with key under the header's alg: "none" gets no
// signature, HMAC algorithms take key as the secret.
func signJWS(t *testing.T, header, claims map[string]any, key any) string {
	t.Helper()
	alg, _ := header["alg"].(string)
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		t.Fatalf("unknown alg %q", alg)
	}
	if alg == "none" {
		key = jwt.UnsafeAllowNoneSignatureType
	}
	return signProofWith(t, method, header, claims, key)
}

// signProofWith signs claims under header with method and key.
func signProofWith(t *testing.T, method jwt.SigningMethod, header, claims map[string]any, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	tok.Header = header
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newFlowOn is newFlow on the named store: "embedded" (f.store is set)
// or "postgres" (a private schema of the test server; f.store is nil).
func newFlowOn(t *testing.T, backend string, opts ...func(*oauth.Config)) (*flow, store.Store) {
	t.Helper()
	if backend == "embedded" {
		f := newFlow(t, opts...)
		return f, f.store
	}
	pg, err := store.OpenPostgres(testpg.Schema(t), store.PostgresOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	return newFlowWith(t, pg, opts...), pg
}

// eachStore runs fn on a flow of each store.
func eachStore(t *testing.T, fn func(t *testing.T, f *flow, st store.Store), opts ...func(*oauth.Config)) {
	for _, backend := range []string{"embedded", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			f, st := newFlowOn(t, backend, opts...)
			fn(t, f, st)
		})
	}
}

// tokenCall posts a token request of c with form and the given DPoP
// header values (none: no header).
func (f *flow) tokenCall(c testClient, form url.Values, proofs ...string) *httptest.ResponseRecorder {
	r := postFormRequest(oauth.TokenPath, form, &c)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return f.serve(r)
}

// refreshForm is the form of a refresh.
func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {flowResource}}
}

// tokenProof makes a proof for the token endpoint at the flow's time.
func (f *flow) tokenProof(k *dpopKey, opts ...proofOpt) string {
	f.t.Helper()
	return k.proof(f.t, http.MethodPost, tokenURL, f.clock.Now(), opts...)
}

// wantDPoPToken checks a token response with a DPoP-bound access token
// (RFC 9449 §5, §6.1) bound to jkt.
func wantDPoPToken(t *testing.T, f *flow, w *httptest.ResponseRecorder, jkt string) tokenBody {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("token: status %d: %s", w.Code, w.Body)
	}
	wantNoStore(t, w)
	var tb tokenBody
	if err := json.Unmarshal(w.Body.Bytes(), &tb); err != nil {
		t.Fatal(err)
	}
	if tb.TokenType != "DPoP" {
		t.Fatalf("token_type = %q, want DPoP", tb.TokenType)
	}
	if c := f.verify(tb.AccessToken); c.Cnf == nil || c.Cnf.JKT != jkt {
		t.Fatalf("cnf = %+v, want jkt %s", c.Cnf, jkt)
	}
	if cnf, _ := jwtPart(t, tb.AccessToken, 1)["cnf"].(map[string]any); cnf["jkt"] != jkt || len(cnf) != 1 {
		t.Fatalf("cnf claim = %v, want {jkt: %s}", cnf, jkt)
	}
	return tb
}

// wantBearerToken checks a token response with an unbound access token.
func wantBearerToken(t *testing.T, f *flow, w *httptest.ResponseRecorder) tokenBody {
	t.Helper()
	tb := wantToken(t, w)
	if c := f.verify(tb.AccessToken); c.Cnf != nil {
		t.Fatalf("a bearer token carries cnf %+v", c.Cnf)
	}
	return tb
}

func wantDescription(t *testing.T, w *httptest.ResponseRecorder, part string) {
	t.Helper()
	var e web.ErrorBody
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	if !strings.Contains(e.Description, part) {
		t.Errorf("error_description %q, want it to mention %q", e.Description, part)
	}
}

func TestDPoPMetadata(t *testing.T) {
	f := newFlow(t)
	m := testkeys.DecodeJSON(t, f.get(oauth.ASMetadataPath, nil))
	algs, _ := m["dpop_signing_alg_values_supported"].([]any)
	if len(algs) == 0 || algs[0] != "ES256" {
		t.Fatalf("dpop_signing_alg_values_supported = %v", m["dpop_signing_alg_values_supported"])
	}
	for _, a := range algs {
		if s := a.(string); s == "none" || strings.HasPrefix(s, "HS") {
			t.Errorf("dpop_signing_alg_values_supported offers %s", s)
		}
	}
	off := newFlow(t, func(c *oauth.Config) { c.DPoP.Disabled = true })
	if m := testkeys.DecodeJSON(t, off.get(oauth.ASMetadataPath, nil)); m["dpop_signing_alg_values_supported"] != nil {
		t.Errorf("DPoP off, yet the metadata lists %v", m["dpop_signing_alg_values_supported"])
	}
	if _, err := oauth.New(oauth.Config{Keys: testkeys.Static{KS: f.keys}, DPoP: oauth.DPoPConfig{RequireNonce: true}}); err == nil {
		t.Error("nonces without a nonce secret were accepted")
	}
}

// TestDPoPTokenBinding runs the DPoP flow on both stores: the code
// exchange, the refresh of a public client's bound refresh token, and the
// unbound refresh token of a confidential client.
func TestDPoPTokenBinding(t *testing.T) {
	eachStore(t, func(t *testing.T, f *flow, st store.Store) {
		ctx := context.Background()
		key, other := newDPoPKey(t, "ES256"), newDPoPKey(t, "EdDSA")

		t.Run("public client", func(t *testing.T) {
			c := f.register("none", nil)
			code, verifier := f.authorizeCode(c, nil)
			tb := wantDPoPToken(t, f, f.tokenCall(c, codeForm(c, code, verifier), f.tokenProof(key)), key.jkt)
			if rt, err := st.GetRefreshToken(ctx, tb.RefreshToken, f.clock.Now()); err != nil || rt.DPoPJKT != key.jkt {
				t.Fatalf("refresh token %+v (%v), want it bound to %s", rt, err, key.jkt)
			}

			// A bound refresh token needs a proof of its key; refusals
			// rotate nothing.
			w := f.tokenCall(c, refreshForm(tb.RefreshToken))
			wantOAuthError(t, w, 400, "invalid_grant")
			wantDescription(t, w, "bound to a DPoP key")
			w = f.tokenCall(c, refreshForm(tb.RefreshToken), f.tokenProof(other))
			wantOAuthError(t, w, 400, "invalid_grant")
			wantDescription(t, w, "another key")

			f.clock.Advance(time.Minute)
			next := wantDPoPToken(t, f, f.tokenCall(c, refreshForm(tb.RefreshToken), f.tokenProof(key)), key.jkt)
			if next.RefreshToken == tb.RefreshToken {
				t.Fatal("the refresh token was not rotated")
			}
			if rt, err := st.GetRefreshToken(ctx, next.RefreshToken, f.clock.Now()); err != nil || rt.DPoPJKT != key.jkt {
				t.Fatalf("rotated refresh token %+v (%v), want it bound to %s", rt, err, key.jkt)
			}

			// The rotated token, replayed without its key after the grace
			// period, is refused without revoking the grant: the thief
			// cannot use it, nor end the client's session.
			f.clock.Advance(time.Minute)
			wantOAuthError(t, f.tokenCall(c, refreshForm(tb.RefreshToken), f.tokenProof(other)), 400, "invalid_grant")
			wantOAuthError(t, f.tokenCall(c, refreshForm(tb.RefreshToken)), 400, "invalid_grant")
			wantDPoPToken(t, f, f.tokenCall(c, refreshForm(next.RefreshToken), f.tokenProof(key)), key.jkt)
		})

		t.Run("bearer refresh token bound at its refresh", func(t *testing.T) {
			c := f.register("none", nil)
			code, verifier := f.authorizeCode(c, nil)
			tb := wantBearerToken(t, f, f.exchange(c, code, verifier, nil))
			// RFC 9449 §5: a public client that refreshes with a proof gets
			// a refresh token bound to its key from then on.
			next := wantDPoPToken(t, f, f.tokenCall(c, refreshForm(tb.RefreshToken), f.tokenProof(key)), key.jkt)
			wantOAuthError(t, f.tokenCall(c, refreshForm(next.RefreshToken)), 400, "invalid_grant")
		})

		t.Run("confidential client", func(t *testing.T) {
			c := f.register("client_secret_basic", nil)
			code, verifier := f.authorizeCode(c, nil)
			tb := wantDPoPToken(t, f, f.tokenCall(c, codeForm(c, code, verifier), f.tokenProof(key)), key.jkt)
			// RFC 9449 §5: its refresh token is bound to its credentials,
			// not to the key; each access token to the key of its request.
			if rt, err := st.GetRefreshToken(ctx, tb.RefreshToken, f.clock.Now()); err != nil || rt.DPoPJKT != "" {
				t.Fatalf("refresh token %+v (%v), want it unbound", rt, err)
			}
			next := wantDPoPToken(t, f, f.tokenCall(c, refreshForm(tb.RefreshToken), f.tokenProof(other)), other.jkt)
			wantBearerToken(t, f, f.tokenCall(c, refreshForm(next.RefreshToken)))
		})
	})
}

// TestDPoPProofRejections sends a token request with every kind of bad
// proof: each gets 400 invalid_dpop_proof, and none uses up the code.
func TestDPoPProofRejections(t *testing.T) {
	f := newFlow(t)
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, nil)
	form := codeForm(c, code, verifier)
	key, other := newDPoPKey(t, "ES256"), newDPoPKey(t, "ES256")
	rsaKey := newDPoPKey(t, "RS256")
	now := f.clock.Now()
	privateEC := map[string]any{}
	for k, v := range key.jwk {
		privateEC[k] = v
	}
	privateEC["d"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	withRSAPrivate := func(member string) map[string]any {
		m := map[string]any{}
		for k, v := range rsaKey.jwk {
			m[k] = v
		}
		m[member] = "AQAB"
		return m
	}
	hmac := func(header map[string]any) string {
		return signJWS(t, header, map[string]any{"jti": randomJTI(t), "htm": "POST", "htu": tokenURL, "iat": now.Unix()},
			[]byte("0123456789abcdef0123456789abcdef"))
	}
	replayed := f.tokenProof(key)
	// A proof used once (here by another code's exchange) is never
	// accepted again.
	c0 := f.register("none", nil)
	code0, verifier0 := f.authorizeCode(c0, nil)
	wantDPoPToken(t, f, f.tokenCall(c0, codeForm(c0, code0, verifier0), replayed), key.jkt)

	tests := []struct {
		name   string
		proofs []string
		desc   string
	}{
		{"alg none", []string{signJWS(t, map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk},
			map[string]any{"jti": randomJTI(t), "htm": "POST", "htu": tokenURL, "iat": now.Unix()}, nil)}, "alg"},
		{"HMAC with a symmetric jwk", []string{hmac(map[string]any{"typ": "dpop+jwt", "alg": "HS256",
			"jwk": map[string]any{"kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}})}, "alg"},
		{"HMAC with a public jwk", []string{hmac(map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": key.jwk})}, "alg"},
		{"unknown alg", []string{f.tokenProof(key, withHeaderParam("alg", "ES999"))}, "alg"},
		{"private EC key in the jwk", []string{f.tokenProof(key, withHeaderParam("jwk", privateEC))}, "private key"},
		{"private RSA prime in the jwk", []string{rsaKey.proof(t, "POST", tokenURL, now, withHeaderParam("jwk", withRSAPrivate("p")))}, "private key"},
		{"private RSA CRT member in the jwk", []string{rsaKey.proof(t, "POST", tokenURL, now, withHeaderParam("jwk", withRSAPrivate("qi")))}, "private key"},
		{"no jwk", []string{f.tokenProof(key, withHeaderParam("jwk", nil))}, "jwk"},
		{"jwk as a string", []string{f.tokenProof(key, withHeaderParam("jwk", "key"))}, "jwk"},
		{"alg that does not fit the key", []string{signJWS(t, map[string]any{"typ": "dpop+jwt", "alg": "ES384", "jwk": key.jwk},
			map[string]any{"jti": randomJTI(t), "htm": "POST", "htu": tokenURL, "iat": now.Unix()}, testkeys.ECKey(t, elliptic.P384()))}, "does not fit"},
		{"signed by another key", []string{f.tokenProof(other, withHeaderParam("jwk", key.jwk))}, "signature"},
		{"typ JWT", []string{f.tokenProof(key, withHeaderParam("typ", "JWT"))}, "typ"},
		{"no typ", []string{f.tokenProof(key, withHeaderParam("typ", nil))}, "typ"},
		{"critical header", []string{f.tokenProof(key, withHeaderParam("crit", []string{"exp"}))}, "critical"},
		{"htm GET", []string{key.proof(t, "GET", tokenURL, now)}, "htm"},
		{"htm in lowercase", []string{key.proof(t, "post", tokenURL, now)}, "htm"},
		{"htu of another endpoint", []string{key.proof(t, "POST", flowIssuer+oauth.RevokePath, now)}, "htu"},
		{"htu of another host", []string{key.proof(t, "POST", "https://evil.example.com"+oauth.TokenPath, now)}, "htu"},
		{"htu over http", []string{key.proof(t, "POST", "http://mcp.example.com"+oauth.TokenPath, now)}, "htu"},
		{"relative htu", []string{key.proof(t, "POST", oauth.TokenPath, now)}, "htu"},
		{"iat 66s old", []string{key.proof(t, "POST", tokenURL, now.Add(-66*time.Second))}, "too old"},
		{"iat 6s ahead", []string{key.proof(t, "POST", tokenURL, now.Add(6*time.Second))}, "future"},
		{"no iat", []string{f.tokenProof(key, withClaim("iat", nil))}, "iat"},
		{"no jti", []string{f.tokenProof(key, withClaim("jti", nil))}, "jti"},
		{"huge jti", []string{f.tokenProof(key, withClaim("jti", strings.Repeat("j", 300)))}, "jti"},
		{"no htm", []string{f.tokenProof(key, withClaim("htm", nil))}, "htm"},
		{"htu as a number", []string{f.tokenProof(key, withClaim("htu", 7))}, "well-formed"},
		{"two DPoP headers", []string{f.tokenProof(key), f.tokenProof(key)}, "more than one"},
		{"two proofs in one header", []string{f.tokenProof(key) + ", " + f.tokenProof(key)}, "well-formed"},
		{"not a JWT", []string{"not-a-jwt"}, "well-formed"},
		{"a JWE", []string{"a.b.c.d.e"}, "well-formed"},
		{"tampered claims", []string{tamperProof(t, f.tokenProof(key))}, "signature"},
		{"replayed proof", []string{replayed}, "already used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.tokenCall(c, form, tt.proofs...)
			wantOAuthError(t, w, 400, "invalid_dpop_proof")
			wantDescription(t, w, tt.desc)
		})
	}
	// The window's edges are inside it, and htu is compared normalised.
	t.Run("accepted", func(t *testing.T) {
		for _, p := range []string{
			key.proof(t, "POST", tokenURL, now.Add(-65*time.Second)),
			key.proof(t, "POST", tokenURL, now.Add(5*time.Second)),
			key.proof(t, "POST", "HTTPS://MCP.EXAMPLE.COM:443/oauth/./token?x=1#y", now),
		} {
			c2 := f.register("none", nil)
			code2, verifier2 := f.authorizeCode(c2, nil)
			wantDPoPToken(t, f, f.tokenCall(c2, codeForm(c2, code2, verifier2), p), key.jkt)
		}
		for _, alg := range []string{"ES384", "EdDSA", "PS256", "RS256"} {
			k := newDPoPKey(t, alg)
			c2 := f.register("none", nil)
			code2, verifier2 := f.authorizeCode(c2, nil)
			wantDPoPToken(t, f, f.tokenCall(c2, codeForm(c2, code2, verifier2), f.tokenProof(k)), k.jkt)
		}
	})
	// After all of that, the code is still good.
	wantDPoPToken(t, f, f.tokenCall(c, form, f.tokenProof(key)), key.jkt)
}

// TestDPoPReplayRecordsValidRequestsOnly: the token endpoint records a
// proof's jti only once the request is otherwise valid, so junk token
// requests with fresh proofs take no room in the replay cache (which
// could otherwise be filled to refuse everyone); a proof of a request
// that succeeded is still refused when replayed, for a code or a refresh.
func TestDPoPReplayRecordsValidRequestsOnly(t *testing.T) {
	eachStore(t, func(t *testing.T, f *flow, st store.Store) {
		key := newDPoPKey(t, "ES256")
		c := f.register("none", nil)
		code, verifier := f.authorizeCode(c, nil)

		// Junk: unknown codes, a wrong verifier, an unknown refresh token.
		var junk []string
		for i := range 100 {
			p := f.tokenProof(key)
			junk = append(junk, p)
			form := codeForm(c, "no-such-code", verifier)
			switch i % 3 {
			case 1:
				form = codeForm(c, code, strings.Repeat("v", 43))
			case 2:
				form = refreshForm("no-such-refresh-token")
			}
			wantOAuthError(t, f.tokenCall(c, form, p), 400, "invalid_grant")
		}
		// None of their proofs was recorded: each still serves a valid
		// request once (the same proof for two requests is the client's
		// choice here, to show that nothing was remembered).
		tb := wantDPoPToken(t, f, f.tokenCall(c, codeForm(c, code, verifier), junk[0]), key.jkt)
		next := wantDPoPToken(t, f, f.tokenCall(c, refreshForm(tb.RefreshToken), junk[len(junk)-1]), key.jkt)

		// The proofs of the successful requests are now used: replayed,
		// they are refused, and the refresh token they would carry stays
		// usable.
		w := f.tokenCall(c, refreshForm(next.RefreshToken), junk[0])
		wantOAuthError(t, w, 400, "invalid_dpop_proof")
		wantDescription(t, w, "already used")
		w = f.tokenCall(c, refreshForm(next.RefreshToken), junk[len(junk)-1])
		wantOAuthError(t, w, 400, "invalid_dpop_proof")
		wantDescription(t, w, "already used")
		// Even with the refresh token it was used with, within the grace
		// window: no second answer for a replayed proof.
		w = f.tokenCall(c, refreshForm(tb.RefreshToken), junk[len(junk)-1])
		wantOAuthError(t, w, 400, "invalid_dpop_proof")
		if _, err := st.GetRefreshToken(context.Background(), next.RefreshToken, f.clock.Now()); err != nil {
			t.Fatalf("a refused replay used up the refresh token: %v", err)
		}
		wantDPoPToken(t, f, f.tokenCall(c, refreshForm(next.RefreshToken), f.tokenProof(key)), key.jkt)
	})
}

// TestDPoPOneProofAtOnce: the same request with the same proof sent
// several times at once (all pass the replay look-up before any records
// the proof) gets tokens once; the others are refused without revoking
// what the first one got, for a code and for a refresh.
func TestDPoPOneProofAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, f *flow, st store.Store) {
		key := newDPoPKey(t, "ES256")
		c := f.register("none", nil)
		code, verifier := f.authorizeCode(c, nil)
		const n = 6
		race := func(form func() url.Values, proof string) (ok []tokenBody) {
			t.Helper()
			codes := make([]*httptest.ResponseRecorder, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { codes[i] = f.tokenCall(c, form(), proof) })
			}
			wg.Wait()
			for _, w := range codes {
				switch w.Code {
				case http.StatusOK:
					var tb tokenBody
					if err := json.Unmarshal(w.Body.Bytes(), &tb); err != nil {
						t.Fatal(err)
					}
					ok = append(ok, tb)
				case http.StatusBadRequest:
				default:
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			if len(ok) != 1 {
				t.Fatalf("%d requests with one proof got tokens, want 1", len(ok))
			}
			return ok
		}
		tb := race(func() url.Values { return codeForm(c, code, verifier) }, f.tokenProof(key))[0]
		next := race(func() url.Values { return refreshForm(tb.RefreshToken) }, f.tokenProof(key))[0]
		if _, err := st.GetRefreshToken(context.Background(), next.RefreshToken, f.clock.Now()); err != nil {
			t.Fatalf("the refused duplicates ended the grant: %v", err)
		}
		wantDPoPToken(t, f, f.tokenCall(c, refreshForm(next.RefreshToken), f.tokenProof(key)), key.jkt)
	})
}

// tamperProof changes a signed proof's jti without re-signing it.
func tamperProof(t *testing.T, proof string) string {
	t.Helper()
	parts := strings.Split(proof, ".")
	claims := jwtPart(t, proof, 1)
	claims["jti"] = "changed"
	b, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// TestDPoPCodeBinding checks dpop_jkt (RFC 9449 §10): the code is
// redeemed only with a proof of that key, refusals leave it usable, and
// a replay without the key revokes nothing.
func TestDPoPCodeBinding(t *testing.T) {
	eachStore(t, func(t *testing.T, f *flow, st store.Store) {
		key, other := newDPoPKey(t, "ES256"), newDPoPKey(t, "ES256")
		c := f.register("none", nil)
		// The first authorization shows the consent page: the binding
		// survives the round trip through it.
		code, verifier := f.authorizeCode(c, url.Values{"dpop_jkt": {key.jkt}})
		form := codeForm(c, code, verifier)

		w := f.tokenCall(c, form)
		wantOAuthError(t, w, 400, "invalid_grant")
		wantDescription(t, w, "bound to a DPoP key")
		w = f.tokenCall(c, form, f.tokenProof(other))
		wantOAuthError(t, w, 400, "invalid_grant")
		wantDescription(t, w, "another key")
		tb := wantDPoPToken(t, f, f.tokenCall(c, form, f.tokenProof(key)), key.jkt)

		// A replay of the used code without its key is refused and revokes
		// nothing; with the key it is a real second redemption, and
		// revokes the grant (OAuth 2.1 §4.1.3).
		wantOAuthError(t, f.tokenCall(c, form, f.tokenProof(other)), 400, "invalid_grant")
		grant := f.verify(tb.AccessToken)
		if ok, err := st.AccessTokenActive(context.Background(), grant.ID, f.clock.Now()); err != nil || !ok {
			t.Fatalf("a replay without the key revoked the tokens (%v)", err)
		}
		wantOAuthError(t, f.tokenCall(c, form, f.tokenProof(key)), 400, "invalid_grant")
		if ok, _ := st.AccessTokenActive(context.Background(), grant.ID, f.clock.Now()); ok {
			t.Fatal("a second redemption with the key did not revoke the first one's tokens")
		}

		// Remembered consent: dpop_jkt still binds the code.
		code, verifier = f.authorizeCode(c, url.Values{"dpop_jkt": {other.jkt}})
		wantOAuthError(t, f.tokenCall(c, codeForm(c, code, verifier), f.tokenProof(key)), 400, "invalid_grant")
		wantDPoPToken(t, f, f.tokenCall(c, codeForm(c, code, verifier), f.tokenProof(other)), other.jkt)
	})
}

func TestDPoPJKTParameter(t *testing.T) {
	f := newFlow(t)
	c := f.register("none", nil)
	_, challenge := newPKCE(t)
	for _, bad := range [][]string{{"short"}, {strings.Repeat("a", 42) + "+"}, {strings.Repeat("a", 44)},
		{strings.Repeat("a", 43), strings.Repeat("b", 43)}} {
		q := authQuery(c, challenge, url.Values{"dpop_jkt": bad})
		// The client is not trusted for redirects yet: an error page.
		wantPage(t, f.get(oauth.AuthorizePath, q), 400)
	}
	// DPoP off: dpop_jkt is an unknown parameter, ignored.
	off := newFlow(t, func(c *oauth.Config) { c.DPoP.Disabled = true })
	c = off.register("none", nil)
	key := newDPoPKey(t, "ES256")
	code, verifier := off.authorizeCode(c, url.Values{"dpop_jkt": {key.jkt}})
	// And proofs are ignored: the token is a bearer token.
	wantBearerToken(t, off, off.tokenCall(c, codeForm(c, code, verifier), off.tokenProof(key)))
}

// TestDPoPNonce checks server nonces (RFC 9449 §8): a proof without the
// current nonce gets use_dpop_nonce with a DPoP-Nonce header and leaves
// the code or refresh token usable; the nonce works on another instance
// sharing the secret, for the current and the previous slot.
func TestDPoPNonce(t *testing.T) {
	secret := []byte("a secret every instance shares!!")
	withNonce := func(c *oauth.Config) {
		// Long enough for the code to outlive a nonce slot.
		c.CodeLifetime = oauth.MaxCodeLifetime
		c.DPoP.RequireNonce = true
		c.DPoP.NonceSecret = func(context.Context) ([]byte, error) { return secret, nil }
	}
	eachStore(t, func(t *testing.T, f *flow, st store.Store) {
		key := newDPoPKey(t, "ES256")
		c := f.register("none", nil)
		code, verifier := f.authorizeCode(c, nil)
		form := codeForm(c, code, verifier)

		w := f.tokenCall(c, form, f.tokenProof(key))
		wantOAuthError(t, w, 400, "use_dpop_nonce")
		nonce := w.Header().Get("DPoP-Nonce")
		if nonce == "" || len(w.Header().Values("DPoP-Nonce")) != 1 {
			t.Fatalf("DPoP-Nonce = %q, want exactly one", w.Header().Values("DPoP-Nonce"))
		}
		w = f.tokenCall(c, form, f.tokenProof(key, withClaim("nonce", "made-up")))
		wantOAuthError(t, w, 400, "use_dpop_nonce")
		wantDescription(t, w, "unknown or expired")
		// A bad proof is still invalid_dpop_proof, and carries the nonce.
		w = f.tokenCall(c, form, f.tokenProof(key, withClaim("nonce", nonce), withClaim("htm", "GET")))
		wantOAuthError(t, w, 400, "invalid_dpop_proof")
		if w.Header().Get("DPoP-Nonce") != nonce {
			t.Error("an invalid_dpop_proof answer lacks the nonce")
		}

		// Another instance on the same database (here: another server with
		// the same store and secret, and its own replay cache) takes the
		// nonce; the code was not used up by the refusals.
		f.clock.Advance(dpop.NonceSlot - time.Second)
		other, err := oauth.New(f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := postFormRequest(oauth.TokenPath, form, &c)
		r.Header.Set("DPoP", f.tokenProof(key, withClaim("nonce", nonce)))
		w = httptest.NewRecorder()
		other.ServeHTTP(w, r)
		tb := wantDPoPToken(t, f, w, key.jkt)
		if w.Header().Get("DPoP-Nonce") == "" {
			t.Error("the token response does not hand out the current nonce (RFC 9449 §8.2)")
		}

		// A refresh without the nonce rotates nothing; the retry works.
		w = f.tokenCall(c, refreshForm(tb.RefreshToken), f.tokenProof(key))
		wantOAuthError(t, w, 400, "use_dpop_nonce")
		fresh := w.Header().Get("DPoP-Nonce")
		if _, err := st.GetRefreshToken(context.Background(), tb.RefreshToken, f.clock.Now()); err != nil {
			t.Fatalf("use_dpop_nonce consumed the refresh token: %v", err)
		}
		next := wantDPoPToken(t, f, f.tokenCall(c, refreshForm(tb.RefreshToken), f.tokenProof(key, withClaim("nonce", fresh))), key.jkt)

		// A nonce lives for its slot and the next, then is refused.
		f.clock.Advance(2 * dpop.NonceSlot)
		w = f.tokenCall(c, refreshForm(next.RefreshToken), f.tokenProof(key, withClaim("nonce", fresh)))
		wantOAuthError(t, w, 400, "use_dpop_nonce")
		if w.Header().Get("DPoP-Nonce") == fresh {
			t.Fatal("an expired nonce is handed out again")
		}
		wantDPoPToken(t, f, f.tokenCall(c, refreshForm(next.RefreshToken),
			f.tokenProof(key, withClaim("nonce", w.Header().Get("DPoP-Nonce")))), key.jkt)

		// Bearer requests need no nonce.
		c2 := f.register("none", nil)
		code2, verifier2 := f.authorizeCode(c2, nil)
		wantBearerToken(t, f, f.tokenCall(c2, codeForm(c2, code2, verifier2)))
	}, withNonce)
}

// resourceFor is a resource server for the flow's tokens at flowResource.
func resourceFor(t *testing.T, f *flow, mod func(*bearer.ResourceConfig)) *bearer.Resource {
	t.Helper()
	cfg := bearer.ResourceConfig{Resource: "/mcp", AuthorizationServers: []string{flowIssuer}, Keys: testkeys.Static{KS: f.keys},
		Now: f.clock.Now, Active: func(ctx context.Context, jti string) (bool, error) {
			return f.store.AccessTokenActive(ctx, jti, f.clock.Now())
		}}
	if mod != nil {
		mod(&cfg)
	}
	rs, err := bearer.NewResource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// resourceRequest is a request to the resource with an Authorization
// header of scheme and token (none when scheme is ""), and DPoP headers.
func resourceRequest(method, target, scheme, token string, proofs ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if scheme != "" {
		r.Header.Set("Authorization", scheme+" "+token)
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

// wantRefused checks a failure's status, the scheme its challenge names
// and the error in it.
func wantRefused(t *testing.T, f *bearer.Failure, status int, scheme, code string) {
	t.Helper()
	if f == nil {
		t.Fatalf("accepted, want %d %s", status, code)
	}
	if f.Status != status || f.Code != code || !strings.HasPrefix(f.Challenge, scheme+" ") ||
		!strings.Contains(f.Challenge, `error="`+code+`"`) {
		t.Fatalf("refusal %d %s %q (%s), want %d %s in a %s challenge", f.Status, f.Code, f.Challenge, f.Description, status, code, scheme)
	}
}

// TestDPoPResource checks DPoP at the resource server (RFC 9449 §7):
// proofs on every request, key binding both ways, and the challenges.
func TestDPoPResource(t *testing.T) {
	f := newFlow(t)
	rs := resourceFor(t, f, nil)
	key, other := newDPoPKey(t, "ES256"), newDPoPKey(t, "ES256")
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, nil)
	at := wantDPoPToken(t, f, f.tokenCall(c, codeForm(c, code, verifier), f.tokenProof(key)), key.jkt).AccessToken
	plainToken := f.tokens(f.register("none", nil), nil).AccessToken
	now := f.clock.Now()
	proof := func(k *dpopKey, opts ...proofOpt) string {
		return k.proof(t, "POST", flowResource, f.clock.Now(), append([]proofOpt{withATH(at)}, opts...)...)
	}

	good := proof(key)
	p, fail := rs.Check(resourceRequest("POST", flowResource, "DPoP", at, good))
	if fail != nil {
		t.Fatalf("a valid DPoP request was refused: %+v", fail)
	}
	if p.DPoPKey != key.jkt || p.Subject != alice.ID || p.ClientID != c.ID {
		t.Fatalf("principal %+v", p)
	}
	// The token is cached now: the proof is still checked each time.
	_, fail = rs.Check(resourceRequest("POST", flowResource, "DPoP", at, good))
	wantRefused(t, fail, 401, "DPoP", "invalid_dpop_proof")
	if !strings.Contains(fail.Description, "already used") {
		t.Errorf("replay refused for %q", fail.Description)
	}
	_, fail = rs.Check(resourceRequest("POST", flowResource, "DPoP", at))
	wantRefused(t, fail, 401, "DPoP", "invalid_dpop_proof")
	if _, fail := rs.Check(resourceRequest("POST", flowResource, "DPoP", at, proof(key))); fail != nil {
		t.Fatalf("a second valid request was refused: %+v", fail)
	}
	// Query strings do not count in htu; GET needs htm GET.
	if _, fail := rs.Check(resourceRequest("GET", flowResource+"?cursor=2", "DPoP", at,
		key.proof(t, "GET", flowResource, now, withATH(at)))); fail != nil {
		t.Fatalf("GET with a query was refused: %+v", fail)
	}

	tests := []struct {
		name   string
		r      *http.Request
		status int
		scheme string
		code   string
		desc   string
	}{
		{"wrong htm", resourceRequest("POST", flowResource, "DPoP", at, key.proof(t, "GET", flowResource, now, withATH(at))),
			401, "DPoP", "invalid_dpop_proof", "htm"},
		{"wrong htu", resourceRequest("POST", flowResource, "DPoP", at, key.proof(t, "POST", flowIssuer+"/other", now, withATH(at))),
			401, "DPoP", "invalid_dpop_proof", "htu"},
		{"htu of the token endpoint", resourceRequest("POST", flowResource, "DPoP", at, key.proof(t, "POST", tokenURL, now, withATH(at))),
			401, "DPoP", "invalid_dpop_proof", "htu"},
		{"no ath", resourceRequest("POST", flowResource, "DPoP", at, key.proof(t, "POST", flowResource, now)),
			401, "DPoP", "invalid_dpop_proof", "ath"},
		{"ath of another token", resourceRequest("POST", flowResource, "DPoP", at, key.proof(t, "POST", flowResource, now, withATH(plainToken))),
			401, "DPoP", "invalid_dpop_proof", "ath"},
		{"stale iat", resourceRequest("POST", flowResource, "DPoP", at, key.proof(t, "POST", flowResource, now.Add(-2*time.Minute), withATH(at))),
			401, "DPoP", "invalid_dpop_proof", "too old"},
		{"future iat", resourceRequest("POST", flowResource, "DPoP", at, key.proof(t, "POST", flowResource, now.Add(time.Minute), withATH(at))),
			401, "DPoP", "invalid_dpop_proof", "future"},
		{"alg none", resourceRequest("POST", flowResource, "DPoP", at, signJWS(t, map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk},
			map[string]any{"jti": "n1", "htm": "POST", "htu": flowResource, "iat": now.Unix()}, nil)),
			401, "DPoP", "invalid_dpop_proof", "alg"},
		{"two DPoP headers", resourceRequest("POST", flowResource, "DPoP", at, proof(key), proof(key)),
			401, "DPoP", "invalid_dpop_proof", "more than one"},
		{"proof of another key", resourceRequest("POST", flowResource, "DPoP", at, proof(other)),
			401, "DPoP", "invalid_token", "not made with the key"},
		{"bound token as a bearer token", resourceRequest("POST", flowResource, "Bearer", at),
			401, "Bearer", "invalid_token", "DPoP-bound"},
		{"bound token as a bearer token with a proof", resourceRequest("POST", flowResource, "Bearer", at, proof(key)),
			401, "Bearer", "invalid_token", "DPoP-bound"},
		{"bearer token with the DPoP scheme", resourceRequest("POST", flowResource, "DPoP", plainToken,
			key.proof(t, "POST", flowResource, now, withATH(plainToken))),
			401, "DPoP", "invalid_token", "not DPoP-bound"},
		{"forged token", resourceRequest("POST", flowResource, "DPoP", testkeys.Tamper(at), key.proof(t, "POST", flowResource, now, withATH(testkeys.Tamper(at)))),
			401, "DPoP", "invalid_token", "invalid"},
		{"DPoP scheme without a token", resourceRequest("POST", flowResource, "DPoP", ""),
			400, "DPoP", "invalid_request", "needs a token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fail := rs.Check(tt.r)
			wantRefused(t, fail, tt.status, tt.scheme, tt.code)
			if !strings.Contains(fail.Description, tt.desc) {
				t.Errorf("description %q, want it to mention %q", fail.Description, tt.desc)
			}
			if tt.scheme == "DPoP" && !strings.Contains(fail.Challenge, `algs="ES256 `) {
				t.Errorf("DPoP challenge without algs: %q", fail.Challenge)
			}
		})
	}

	// Bearer tokens keep working where DPoP is not required.
	if p, fail := rs.Check(resourceRequest("POST", flowResource, "Bearer", plainToken)); fail != nil || p.DPoPKey != "" {
		t.Fatalf("bearer token: %+v, %+v", p, fail)
	}

	// A step-up challenge answers in the scheme of the token.
	dp, _ := rs.Check(resourceRequest("POST", flowResource, "DPoP", at, proof(key)))
	if ch := bearer.InsufficientScope(dp, "order:write").Challenge; !strings.HasPrefix(ch, `DPoP resource_metadata="`) ||
		!strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, "order:write") {
		t.Errorf("step-up challenge of a DPoP token: %q", ch)
	}
	bp, _ := rs.Check(resourceRequest("POST", flowResource, "Bearer", plainToken))
	if ch := bearer.InsufficientScope(bp, "order:write").Challenge; !strings.HasPrefix(ch, "Bearer ") {
		t.Errorf("step-up challenge of a bearer token: %q", ch)
	}

	// A revoked DPoP-bound token is refused even with a good proof.
	if w := f.postForm(oauth.RevokePath, url.Values{"token": {at}}, &c); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	_, fail = rs.Check(resourceRequest("POST", flowResource, "DPoP", at, proof(key)))
	wantRefused(t, fail, 401, "DPoP", "invalid_token")
}

// TestDPoPChallenges checks the challenges of a request without
// credentials: Bearer then DPoP where both are accepted (RFC 9449 §7.2),
// DPoP alone where it is required, and what the metadata says.
func TestDPoPChallenges(t *testing.T) {
	f := newFlow(t)
	for _, required := range []bool{false, true} {
		rs := resourceFor(t, f, func(c *bearer.ResourceConfig) { c.RequireDPoP = required; c.Required = []string{"booking:read"} })
		w := httptest.NewRecorder()
		_, fail := rs.Check(resourceRequest("POST", flowResource, "", ""))
		fail.Write(w)
		got := w.Header().Values("WWW-Authenticate")
		const rm = `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`
		dpop := `DPoP ` + rm + `, scope="booking:read", algs="ES256 ES384 ES512 EdDSA PS256 PS384 PS512 RS256 RS384 RS512"`
		want := []string{`Bearer ` + rm + `, scope="booking:read"`, dpop}
		if required {
			want = []string{dpop}
		}
		if w.Code != 401 || !slices.Equal(got, want) {
			t.Errorf("required=%v: %d WWW-Authenticate %q, want %q", required, w.Code, got, want)
		}
		if strings.Contains(strings.Join(got, ", "), "error=") {
			t.Errorf("required=%v: an error code without credentials", required)
		}
		mw := httptest.NewRecorder()
		rs.ServeMetadata(mw, httptest.NewRequest("GET", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", nil))
		m := testkeys.DecodeJSON(t, mw)
		if m["dpop_bound_access_tokens_required"] != required {
			t.Errorf("dpop_bound_access_tokens_required = %v, want %v", m["dpop_bound_access_tokens_required"], required)
		}
		if algs, _ := m["dpop_signing_alg_values_supported"].([]any); len(algs) == 0 || algs[0] != "ES256" {
			t.Errorf("dpop_signing_alg_values_supported = %v", m["dpop_signing_alg_values_supported"])
		}
	}

	// An invalid bearer token: the error in the Bearer challenge, and
	// DPoP offered after it (RFC 9449 §7.2, figure 18).
	rs := resourceFor(t, f, nil)
	_, fail := rs.Check(resourceRequest("POST", flowResource, "Bearer", "not-a-token"))
	wantRefused(t, fail, 401, "Bearer", "invalid_token")
	if len(fail.MoreChallenges) != 1 || !strings.HasPrefix(fail.MoreChallenges[0], `DPoP algs="`) {
		t.Errorf("more challenges %q, want a DPoP one", fail.MoreChallenges)
	}

	// Where DPoP is required, a valid bearer token is refused.
	req := resourceFor(t, f, func(c *bearer.ResourceConfig) { c.RequireDPoP = true })
	plainToken := f.tokens(f.register("none", nil), nil).AccessToken
	_, fail = req.Check(resourceRequest("POST", flowResource, "Bearer", plainToken))
	wantRefused(t, fail, 401, "DPoP", "invalid_token")
	if len(fail.MoreChallenges) != 0 {
		t.Errorf("a DPoP-only resource offers %q", fail.MoreChallenges)
	}
	// And a DPoP-bound token with its proof is taken.
	key := newDPoPKey(t, "ES256")
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, nil)
	at := wantDPoPToken(t, f, f.tokenCall(c, codeForm(c, code, verifier), f.tokenProof(key)), key.jkt).AccessToken
	if _, fail := req.Check(resourceRequest("POST", flowResource, "DPoP", at,
		key.proof(t, "POST", flowResource, f.clock.Now(), withATH(at)))); fail != nil {
		t.Fatalf("DPoP-only resource refused a DPoP request: %+v", fail)
	}
}

// TestDPoPResourcePublicURL checks that htu is compared with the URL the
// client addressed: the public origin of a resource behind a proxy that
// terminates TLS, and an absolute resource.
func TestDPoPResourcePublicURL(t *testing.T) {
	f := newFlow(t)
	key := newDPoPKey(t, "ES256")
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, nil)
	at := wantDPoPToken(t, f, f.tokenCall(c, codeForm(c, code, verifier), f.tokenProof(key)), key.jkt).AccessToken
	for _, mod := range []func(*bearer.ResourceConfig){
		func(c *bearer.ResourceConfig) { c.BaseOrigin = flowIssuer },
		func(c *bearer.ResourceConfig) { c.Resource = flowResource },
	} {
		rs := resourceFor(t, f, mod)
		// Caddy sees http://internal:8080/mcp; the client addressed
		// https://mcp.example.com/mcp.
		inner := "http://internal:8080/mcp"
		if _, fail := rs.Check(resourceRequest("POST", inner, "DPoP", at, key.proof(t, "POST", flowResource, f.clock.Now(), withATH(at)))); fail != nil {
			t.Fatalf("proof for the public URL refused: %+v", fail)
		}
		_, fail := rs.Check(resourceRequest("POST", inner, "DPoP", at, key.proof(t, "POST", inner, f.clock.Now(), withATH(at))))
		wantRefused(t, fail, 401, "DPoP", "invalid_dpop_proof")
	}
}

// TestDPoPRemoteIssuer checks DPoP-bound tokens of an external issuer:
// bound by cnf.jkt like local ones, and a cnf this resource cannot
// verify (a raw public key, RFC 7800 §3.2) refuses the token.
func TestDPoPRemoteIssuer(t *testing.T) {
	e := testkeys.NewRemoteEnv(t, "/realms/mcp", nil)
	e.IdP.AddKey(t, "k1", testkeys.ECKey(t, elliptic.P256()), "ES256")
	key := newDPoPKey(t, "ES256")
	bound := e.IdP.Sign(t, "k1", "ES256", "at+jwt", e.Claims(func(c jwt.MapClaims) { c["cnf"] = map[string]any{"jkt": key.jkt} }))
	certBound := e.IdP.Sign(t, "k1", "ES256", "at+jwt", e.Claims(func(c jwt.MapClaims) {
		c["jti"] = "remote-2"
		c["cnf"] = map[string]any{"jwk": key.jwk}
	}))

	p, fail := e.RS.Check(resourceRequest("POST", testkeys.RemoteResource, "DPoP", bound, key.proof(t, "POST", testkeys.RemoteResource, e.Now, withATH(bound))))
	if fail != nil || p.DPoPKey != key.jkt || p.Issuer != e.IdP.Issuer {
		t.Fatalf("external DPoP-bound token: %+v, %+v", p, fail)
	}
	_, fail = e.RS.Check(resourceRequest("POST", testkeys.RemoteResource, "Bearer", bound))
	wantRefused(t, fail, 401, "Bearer", "invalid_token")
	_, fail = e.RS.Check(resourceRequest("POST", testkeys.RemoteResource, "DPoP", bound,
		newDPoPKey(t, "ES256").proof(t, "POST", testkeys.RemoteResource, e.Now, withATH(bound))))
	wantRefused(t, fail, 401, "DPoP", "invalid_token")
	_, fail = e.RS.Check(resourceRequest("POST", testkeys.RemoteResource, "Bearer", certBound))
	wantRefused(t, fail, 401, "Bearer", "invalid_token")
	if !strings.Contains(fail.Description, "cannot verify") {
		t.Errorf("certificate-bound token refused for %q", fail.Description)
	}
}

// TestDPoPIntrospection checks that introspection reports a DPoP-bound
// token as such (RFC 9449 §6.2).
func TestDPoPIntrospection(t *testing.T) {
	f := newFlow(t, func(c *oauth.Config) {
		c.StaticClients = []oauth.StaticClient{{ID: "rs", Secret: "rs-secret", RedirectURIs: []string{flowRedirect}}}
	})
	key := newDPoPKey(t, "ES256")
	c := f.register("none", nil)
	code, verifier := f.authorizeCode(c, nil)
	at := wantDPoPToken(t, f, f.tokenCall(c, codeForm(c, code, verifier), f.tokenProof(key)), key.jkt).AccessToken
	w := f.postForm(oauth.IntrospectPath, url.Values{"token": {at}}, &testClient{ID: "rs", Secret: "rs-secret", Method: "client_secret_basic"})
	m := testkeys.DecodeJSON(t, w)
	cnf, _ := m["cnf"].(map[string]any)
	if m["active"] != true || m["token_type"] != "DPoP" || cnf["jkt"] != key.jkt {
		t.Fatalf("introspection %v", m)
	}
}
