package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Tests of the steps of the authorization endpoint, each on its own: a
// server whose store and sign-in are fakes, and no HTTP round trip.

const (
	stepIssuer   = "https://as.example.com"
	stepResource = "https://mcp.example.com/mcp"
	stepRedirect = "https://app.example.com/cb"
	// stepChallenge is a well-formed S256 code challenge.
	stepChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// stepStore keeps clients and consents in maps; err fails every call.
// The other methods of Store are not used by these steps.
type stepStore struct {
	Store
	clients  map[string]*store.Client
	consents map[string]*store.Consent // by user ID and client ID
	err      error
}

func (st *stepStore) GetClient(_ context.Context, id string) (*store.Client, error) {
	if st.err != nil {
		return nil, st.err
	}
	if c, ok := st.clients[id]; ok {
		return c, nil
	}
	return nil, store.ErrNotFound
}

func (st *stepStore) GetConsent(_ context.Context, userID, clientID string) (*store.Consent, error) {
	if st.err != nil {
		return nil, st.err
	}
	if c, ok := st.consents[userID+" "+clientID]; ok {
		return c, nil
	}
	return nil, store.ErrNotFound
}

// stepUsers is the sign-in: user is signed in, err fails CurrentUser.
type stepUsers struct {
	user   *User
	err    error
	logins int
}

func (u *stepUsers) CurrentUser(*http.Request) (*User, error) { return u.user, u.err }

func (u *stepUsers) Login(w http.ResponseWriter, _ *http.Request) {
	u.logins++
	w.WriteHeader(http.StatusUnauthorized)
}

func (u *stepUsers) UserScopes(context.Context, string) ([]string, bool, error) {
	return nil, true, nil
}

// noKeys is a key source for servers that sign nothing.
type noKeys struct{}

func (noKeys) KeySet(context.Context) (*signing.KeySet, error) { return nil, errors.New("no keys") }

// stepResolver finds no host: a metadata document is never fetched.
type stepResolver struct{}

func (stepResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, nil
}

// newStepServer makes a server with a static client "static" (two
// redirect URIs, scopes limited to booking:*) and a registered client
// "dyn" with one redirect URI.
func newStepServer(t *testing.T, st *stepStore, users Authenticator) *Server {
	t.Helper()
	st.clients = map[string]*store.Client{"dyn": {ID: "dyn", RedirectURIs: []string{stepRedirect},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: "none"}}
	if st.consents == nil {
		st.consents = map[string]*store.Consent{}
	}
	s, err := New(Config{
		Issuer: stepIssuer, Keys: noKeys{}, Store: st, Users: users,
		Resources: func() []string { return []string{stepResource} },
		StaticClients: []StaticClient{{ID: "static", RedirectURIs: []string{stepRedirect, "https://app.example.com/other"},
			Scopes: []string{"booking:read", "booking:write"}}},
		ClientMetadataDocuments: ClientMetadataDocuments{Resolver: stepResolver{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stepParams is a valid request of client, changed by the pairs of
// kv: a name and a value, or a name and "-" to remove it.
func stepParams(client string, kv ...string) url.Values {
	v := url.Values{"client_id": {client}, "redirect_uri": {stepRedirect}, "response_type": {"code"},
		"code_challenge": {stepChallenge}, "code_challenge_method": {"S256"}, "state": {"xyz"}, "scope": {"booking:read"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "-" {
			v.Del(kv[i])
		} else {
			v.Add(kv[i], kv[i+1])
		}
	}
	return v
}

func TestParseAuthorize(t *testing.T) {
	s := newStepServer(t, &stepStore{}, &stepUsers{})
	// set replaces a parameter's values; Add repeats them.
	set := func(v url.Values, name string, vs ...string) url.Values { v[name] = vs; return v }
	for _, tt := range []struct {
		name   string
		params url.Values
		// code is the OAuth error of a redirectable refusal; title the
		// page of one that is not; both "" for a valid request.
		code, title string
	}{
		// Before the client and its redirect URI are known good: a page.
		{"no client_id", stepParams("static", "client_id", "-"), "", "Invalid request"},
		{"repeated client_id", stepParams("static", "client_id", "dyn"), "", "Invalid request"},
		{"unknown client", stepParams("nobody"), "", "Unknown application"},
		{"unusable metadata document", stepParams("https://app.example.com/client.json"), "", "Application not verified"},
		{"unregistered redirect URI", set(stepParams("static"), "redirect_uri", "https://evil.example/cb"), "", "Invalid redirect"},
		{"repeated redirect URI", stepParams("static", "redirect_uri", stepRedirect), "", "Invalid redirect"},
		{"no redirect URI, two registered", stepParams("static", "redirect_uri", "-"), "", "Invalid redirect"},
		// After: an OAuth error for the client.
		{"repeated state", stepParams("static", "state", "abc"), "invalid_request", ""},
		{"state too long", set(stepParams("static"), "state", strings.Repeat("s", maxStateLen+1)), "invalid_request", ""},
		{"no response_type", stepParams("static", "response_type", "-"), "invalid_request", ""},
		{"response_type token", set(stepParams("static"), "response_type", "token"), "unsupported_response_type", ""},
		{"no PKCE", stepParams("static", "code_challenge", "-"), "invalid_request", ""},
		{"PKCE plain", set(stepParams("static"), "code_challenge_method", "plain"), "invalid_request", ""},
		{"PKCE without method", stepParams("static", "code_challenge_method", "-"), "invalid_request", ""},
		{"malformed challenge", set(stepParams("static"), "code_challenge", "short"), "invalid_request", ""},
		{"repeated challenge", stepParams("static", "code_challenge", stepChallenge), "invalid_request", ""},
		{"malformed dpop_jkt", stepParams("static", "dpop_jkt", "short"), "invalid_request", ""},
		{"repeated dpop_jkt", stepParams("static", "dpop_jkt", stepChallenge, "dpop_jkt", stepChallenge), "invalid_request", ""},
		{"unknown resource", stepParams("static", "resource", "https://other.example.com/mcp"), "invalid_target", ""},
		{"two resources", stepParams("static", "resource", stepResource, "resource", stepResource), "invalid_target", ""},
		{"repeated scope", stepParams("static", "scope", "booking:write"), "invalid_scope", ""},
		{"scope the client may not get", set(stepParams("static"), "scope", "order:read"), "invalid_scope", ""},
		// Valid requests.
		{"valid", stepParams("static"), "", ""},
		{"the only redirect URI by default", stepParams("dyn", "redirect_uri", "-"), "", ""},
		{"empty state", set(stepParams("static"), "state", ""), "", ""},
		{"empty dpop_jkt", stepParams("static", "dpop_jkt", ""), "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, e := s.parseAuthorize(context.Background(), tt.params, stepIssuer)
			switch {
			case tt.code == "" && tt.title == "":
				if e != nil {
					t.Fatalf("refused: %+v", e)
				}
			case e == nil:
				t.Fatalf("accepted, want %s%s", tt.code, tt.title)
			case e.redirectable() != (tt.code != ""):
				t.Fatalf("redirectable = %v: %+v", e.redirectable(), e)
			case e.code != tt.code || e.page.Title != tt.title:
				t.Fatalf("refused with %q / %q, want %q / %q", e.code, e.page.Title, tt.code, tt.title)
			case e.redirectable() && (p == nil || p.client == nil || p.req.RedirectURI != stepRedirect):
				t.Fatalf("a redirectable error without its client and redirect URI: %+v", p)
			}
		})
	}

	t.Run("the parsed request", func(t *testing.T) {
		params := stepParams("static", "dpop_jkt", stepChallenge, "prompt", "consent", "scope", "-")
		p, e := s.parseAuthorize(context.Background(), params, stepIssuer)
		if e != nil {
			t.Fatalf("refused: %+v", e)
		}
		want := authRequest{ClientID: "static", RedirectURI: stepRedirect, State: "xyz", Scope: "booking:read booking:write",
			Resource: stepResource, CodeChallenge: stepChallenge, DPoPJKT: stepChallenge}
		if p.req != want || p.prompt != "consent" || p.client.ID != "static" {
			t.Fatalf("parsed %+v, prompt %q; want %+v", p.req, p.prompt, want)
		}
	})
	t.Run("the state of a refused request goes back", func(t *testing.T) {
		p, e := s.parseAuthorize(context.Background(), set(stepParams("static"), "response_type", "token"), stepIssuer)
		if e == nil || p.req.State != "xyz" {
			t.Fatalf("state %q, error %+v", p.req.State, e)
		}
	})
	t.Run("a store failure is an internal failure", func(t *testing.T) {
		s := newStepServer(t, &stepStore{err: store.ErrUnavailable}, &stepUsers{})
		_, e := s.parseAuthorize(context.Background(), stepParams("dyn"), stepIssuer)
		if e == nil || !errors.Is(e.cause, store.ErrUnavailable) || e.redirectable() {
			t.Fatalf("%+v, want an internal failure", e)
		}
	})
}

func TestDecideAuthorize(t *testing.T) {
	alice := &User{ID: "alice"}
	remembered := func(scope string) *store.Consent {
		return &store.Consent{UserID: "alice", ClientID: "static", Scope: scope, RedirectURI: stepRedirect, Resource: stepResource}
	}
	for _, tt := range []struct {
		name     string
		users    Authenticator // nil: no sign-in configured
		consent  *store.Consent
		storeErr error
		prompt   string
		scope    string // requested; default booking:read
		next     authorizeNext
		code     string // a redirectable refusal
		status   int    // a page
	}{
		{name: "no sign-in configured", status: http.StatusServiceUnavailable},
		{name: "the session cannot be read", users: &stepUsers{err: errors.New("boom")}, status: http.StatusInternalServerError},
		{name: "signed out", users: &stepUsers{}, next: authorizeLogin},
		{name: "signed out, prompt=none", users: &stepUsers{}, prompt: "none", code: "login_required"},
		{name: "no consent yet", users: &stepUsers{user: alice}, next: authorizeAsk},
		{name: "no consent yet, prompt=none", users: &stepUsers{user: alice}, prompt: "none", code: "consent_required"},
		{name: "remembered", users: &stepUsers{user: alice}, consent: remembered("booking:read booking:write"), next: authorizeIssue},
		{name: "remembered, prompt=consent", users: &stepUsers{user: alice}, consent: remembered("booking:read"), prompt: "consent", next: authorizeAsk},
		{name: "remembered for fewer scopes", users: &stepUsers{user: alice}, consent: remembered("booking:read"), scope: "booking:read booking:write", next: authorizeAsk},
		{name: "remembered for fewer scopes, prompt=none", users: &stepUsers{user: alice}, consent: remembered("booking:read"), scope: "booking:write", prompt: "none", code: "consent_required"},
		{name: "remembered for another redirect URI", users: &stepUsers{user: alice},
			consent: &store.Consent{Scope: "booking:read", RedirectURI: "https://app.example.com/other", Resource: stepResource}, next: authorizeAsk},
		{name: "remembered for another resource", users: &stepUsers{user: alice},
			consent: &store.Consent{Scope: "booking:read", RedirectURI: stepRedirect, Resource: "https://other.example.com/mcp"}, next: authorizeAsk},
		{name: "the user may grant none of the scopes", users: &stepUsers{user: &User{ID: "alice", Scopes: []string{"order:read"}}}, code: "access_denied"},
		{name: "consent cannot be read", users: &stepUsers{user: alice}, storeErr: store.ErrUnavailable, status: http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &stepStore{consents: map[string]*store.Consent{}}
			if tt.consent != nil {
				st.consents["alice static"] = tt.consent
			}
			s := newStepServer(t, st, tt.users)
			scope := tt.scope
			if scope == "" {
				scope = "booking:read"
			}
			p, e := s.parseAuthorize(context.Background(), stepParams("static", "scope", "-", "scope", scope, "prompt", tt.prompt), stepIssuer)
			if e != nil {
				t.Fatalf("refused: %+v", e)
			}
			st.err = tt.storeErr
			d := s.decideAuthorize(httptest.NewRequest(http.MethodGet, stepIssuer+AuthorizePath, nil), p)
			switch {
			case tt.next != 0:
				if d.err != nil || d.next != tt.next {
					t.Fatalf("next %v, error %+v; want %v", d.next, d.err, tt.next)
				}
			case tt.code != "":
				if d.err == nil || d.err.code != tt.code {
					t.Fatalf("decided %+v, want %s", d, tt.code)
				}
			default:
				if d.err == nil || d.err.redirectable() {
					t.Fatalf("decided %+v, want a page", d)
				}
				w := httptest.NewRecorder()
				s.refuseAuthorize(w, httptest.NewRequest(http.MethodGet, "/", nil), stepIssuer, p, d.err)
				if w.Code != tt.status {
					t.Fatalf("status %d, want %d", w.Code, tt.status)
				}
			}
		})
	}
	t.Run("the scope is narrowed to the user's", func(t *testing.T) {
		s := newStepServer(t, &stepStore{}, &stepUsers{user: &User{ID: "alice", Scopes: []string{"booking:write"}}})
		p, e := s.parseAuthorize(context.Background(), stepParams("static", "scope", "-"), stepIssuer)
		if e != nil {
			t.Fatalf("refused: %+v", e)
		}
		d := s.decideAuthorize(httptest.NewRequest(http.MethodGet, "/", nil), p)
		if d.next != authorizeAsk || d.req.Scope != "booking:write" || p.req.Scope != "booking:read booking:write" {
			t.Fatalf("decided %+v for %+v", d, p.req)
		}
	})
}

func TestRefuseAuthorize(t *testing.T) {
	alice := &User{ID: "alice"}
	for _, tt := range []struct {
		name     string
		client   string
		users    *stepUsers
		consent  bool
		err      *authorizeError
		status   int
		location string // the start of the Location header
	}{
		{"a configured client's error is redirected", "static", &stepUsers{}, false,
			clientError("invalid_scope", "no"), http.StatusFound, stepRedirect + "?"},
		{"a registered client's error is shown", "dyn", &stepUsers{user: alice}, false,
			clientError("invalid_scope", "no"), http.StatusBadRequest, ""},
		{"an approved client's error is redirected", "dyn", &stepUsers{user: alice}, true,
			clientError("invalid_scope", "no"), http.StatusFound, stepRedirect + "?"},
		{"a page", "static", &stepUsers{}, false,
			userError(http.StatusBadRequest, "Invalid redirect", "no"), http.StatusBadRequest, ""},
		{"an internal failure", "static", &stepUsers{}, false,
			internalFailure("testing", errors.New("boom")), http.StatusInternalServerError, ""},
		{"the store unavailable", "static", &stepUsers{}, false,
			internalFailure("testing", store.ErrUnavailable), http.StatusServiceUnavailable, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &stepStore{consents: map[string]*store.Consent{}}
			if tt.consent {
				st.consents["alice "+tt.client] = &store.Consent{}
			}
			s := newStepServer(t, st, tt.users)
			p, e := s.parseAuthorize(context.Background(), stepParams(tt.client), stepIssuer)
			if e != nil {
				t.Fatalf("refused: %+v", e)
			}
			w := httptest.NewRecorder()
			s.refuseAuthorize(w, httptest.NewRequest(http.MethodGet, "/", nil), stepIssuer, p, tt.err)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			loc := w.Header().Get("Location")
			if tt.location == "" && loc != "" || !strings.HasPrefix(loc, tt.location) {
				t.Fatalf("Location %q, want %q…", loc, tt.location)
			}
			if tt.location != "" {
				q, _ := url.ParseQuery(strings.TrimPrefix(loc, tt.location))
				if q.Get("error") != tt.err.code || q.Get("state") != "xyz" || q.Get("iss") != stepIssuer {
					t.Errorf("Location %q", loc)
				}
			}
		})
	}
	t.Run("405", func(t *testing.T) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPut, "/", nil)
		_, e := authorizeValues(w, r)
		if e == nil {
			t.Fatal("PUT accepted")
		}
		newStepServer(t, &stepStore{}, &stepUsers{}).refuseAuthorize(w, r, stepIssuer, nil, e)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, POST" {
			t.Fatalf("status %d, Allow %q", w.Code, w.Header().Get("Allow"))
		}
	})
}

func TestRespondAuthorizeLogin(t *testing.T) {
	users := &stepUsers{}
	s := newStepServer(t, &stepStore{}, users)
	params := stepParams("static")
	p, e := s.parseAuthorize(context.Background(), params, stepIssuer)
	if e != nil {
		t.Fatalf("refused: %+v", e)
	}
	d := authorizeDecision{next: authorizeLogin}

	// A GET goes to sign in, and comes back to its own URL.
	w := httptest.NewRecorder()
	s.respondAuthorize(w, httptest.NewRequest(http.MethodGet, "/", nil), stepIssuer, p, d)
	if users.logins != 1 {
		t.Fatalf("%d logins after a GET", users.logins)
	}
	// A POST is turned into a GET first: the round trip needs a URL.
	w = httptest.NewRecorder()
	s.respondAuthorize(w, httptest.NewRequest(http.MethodPost, "/", nil), stepIssuer, p, d)
	if w.Code != http.StatusSeeOther || users.logins != 1 {
		t.Fatalf("status %d, %d logins after a POST", w.Code, users.logins)
	}
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil || u.Scheme+"://"+u.Host+u.Path != stepIssuer+AuthorizePath || u.Query().Encode() != params.Encode() {
		t.Fatalf("Location %q", w.Header().Get("Location"))
	}
}
