package oauth_test

// Benchmarks of access-token signing and verification, and of the token
// endpoint under concurrent load on both stores. They run only with
// -bench; bench/token-load.sh runs them against a throwaway PostgreSQL.
//
// The token-endpoint benchmarks drive the real oauth.Server handler with
// in-memory requests (no network, no net/http server), from about
// benchClients goroutines at once. Every request redeems a fresh
// authorization code or rotates a fresh refresh token; these are created
// in the store before the timer starts. Besides ns/op they report:
//
//	exchanges/s, refreshes/s  requests completed per second of wall time
//	p50-ms, p99-ms            latency of one request through the handler
//	unavailable               503 answers (only when there were some)
//
// Each request gives up after benchRequestTimeout. The access policy is
// asked at every refresh, and answered as the login server does: by
// reading the user from the store.
//
// Environment:
//
//	CADDYMCP_BENCH_PG_MAXCONNS   PostgreSQL pool size (default: the
//	                             product's default, pgx's max(4, CPUs))
//	CADDYMCP_BENCH_USER_POLICY   "store" (default) or "none": no
//	                             Authenticator, so refreshes skip the
//	                             policy lookup

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testkeys"
	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

const (
	// benchClients is how many requests are in flight at once in the
	// token-endpoint benchmarks, and how many clients and users exist.
	benchClients = 32
	// benchWarmup is how many requests run before the timer starts, so
	// that pool connections and prepared statements exist.
	benchWarmup = 2 * benchClients
	// benchScope is the scope of every benchmark grant.
	benchScope = "booking:read booking:write"
	// benchRequestTimeout bounds each request, as a client's patience
	// (and a server's write timeout) would.
	benchRequestTimeout = 10 * time.Second
	// benchMaxConnsEnv overrides the PostgreSQL pool size.
	benchMaxConnsEnv = "CADDYMCP_BENCH_PG_MAXCONNS"
	// benchPolicyEnv chooses how refreshes check the access policy.
	benchPolicyEnv = "CADDYMCP_BENCH_USER_POLICY"
)

// benchToken returns n random bytes, base64url-encoded, as the server
// makes its codes, tokens and ids.
func benchToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// benchClaims is a claim set like the token endpoint issues: random
// user, client and token ids, one resource, two scopes, one hour.
func benchClaims(now time.Time) *jose.AccessClaims {
	return &jose.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: flowIssuer, Subject: benchToken(16), Audience: jwt.ClaimStrings{flowResource},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(oauth.DefaultAccessTokenLifetime)),
			ID: benchToken(16),
		},
		ClientID: benchToken(16),
		Scope:    benchScope,
	}
}

// BenchmarkSignAccessToken measures signing one access token (ES256).
func BenchmarkSignAccessToken(b *testing.B) {
	now := time.Now()
	ks := testkeys.NewKeySetAt(b, now)
	claims := benchClaims(now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.Sign(claims); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAccessToken measures what a resource does with a bearer
// token: parse, check the ES256 signature, typ, iss, aud, exp and iat.
func BenchmarkVerifyAccessToken(b *testing.B) {
	now := time.Now()
	ks := testkeys.NewKeySetAt(b, now)
	raw, err := ks.Sign(benchClaims(now))
	if err != nil {
		b.Fatal(err)
	}
	opts := signing.VerifyOptions{Issuer: flowIssuer, Audience: flowResource, Now: func() time.Time { return now }}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.Verify(raw, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenEndpoint measures code exchanges and refreshes on
// PostgreSQL and on the embedded store.
func BenchmarkTokenEndpoint(b *testing.B) {
	grants := []struct {
		name, unit string
		prepare    func(*benchEnv, *testing.B, int) []string
	}{
		{"code", "exchanges/s", (*benchEnv).prepareCodes},
		{"refresh", "refreshes/s", (*benchEnv).prepareRefreshTokens},
	}
	for _, g := range grants {
		b.Run(g.name, func(b *testing.B) {
			for _, backend := range []string{"postgres", "embedded"} {
				b.Run(backend, func(b *testing.B) {
					env := newBenchEnv(b, backend)
					benchTokenRequests(b, env, g.prepare(env, b, benchWarmup+b.N), g.unit)
				})
			}
		})
	}
}

// benchUsers is an Authenticator that answers the access-policy question
// of every refresh as the login server does: by reading the user from the
// store.
type benchUsers struct{ st store.Users }

func (benchUsers) CurrentUser(*http.Request) (*oauth.User, error) { return nil, nil }

func (benchUsers) Login(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "no login in benchmarks", http.StatusForbidden)
}

func (u benchUsers) UserScopes(ctx context.Context, userID string) ([]string, bool, error) {
	_, err := u.st.GetUser(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return nil, true, nil
}

// benchEnv is an authorization server on a fresh store, with
// benchClients registered public clients and as many users.
type benchEnv struct {
	srv     *oauth.Server
	st      store.Store
	clients []string
	users   []string
	now     time.Time
}

// newBenchEnv opens a store ("postgres": a private schema of the test
// server; "embedded": a file in a temporary folder) and builds a server
// on it as the product does, with audit events formatted as JSON and
// discarded.
func newBenchEnv(b *testing.B, backend string) *benchEnv {
	b.Helper()
	var st store.Store
	switch backend {
	case "postgres":
		dsn := testpg.Schema(b)
		var opts store.PostgresOptions
		if v := os.Getenv(benchMaxConnsEnv); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				b.Fatalf("%s=%q: want a positive number", benchMaxConnsEnv, v)
			}
			opts.MaxConns = int32(n)
		}
		pg, err := store.OpenPostgres(dsn, opts)
		if err != nil {
			b.Fatal(err)
		}
		st = pg
	case "embedded":
		e, err := store.OpenEmbedded(filepath.Join(b.TempDir(), "caddymcp.db"))
		if err != nil {
			b.Fatal(err)
		}
		st = e
	default:
		b.Fatalf("unknown store %q", backend)
	}
	b.Cleanup(st.Close)
	ctx := context.Background()
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{st: st, now: time.Now()}
	for range benchClients {
		id := benchToken(16)
		if _, err := st.UpsertUser(ctx, &store.User{ID: id, Provider: "bench", Subject: id,
			Email: id + "@example.com", Name: "Bench User", CreatedAt: env.now, UpdatedAt: env.now}); err != nil {
			b.Fatal(err)
		}
		env.users = append(env.users, id)
	}
	cfg := oauth.Config{
		Issuer:    flowIssuer,
		Keys:      testkeys.Static{KS: testkeys.NewKeySetAt(b, env.now)},
		Store:     st,
		Users:     benchUsers{st},
		Resources: func() []string { return []string{"/mcp"} },
		Logger:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
		// No rate limits: every request comes from one address, and the
		// benchmark measures the endpoint, not a limiter.
		RateLimits: oauth.RateLimits{},
	}
	switch v := os.Getenv(benchPolicyEnv); v {
	case "", "store":
	case "none":
		cfg.Users = nil
	default:
		b.Fatalf("%s=%q: want store or none", benchPolicyEnv, v)
	}
	srv, err := oauth.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	env.srv = srv
	md, err := json.Marshal(map[string]any{
		"redirect_uris":              []string{flowRedirect},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"client_name":                "Bench App",
	})
	if err != nil {
		b.Fatal(err)
	}
	for range benchClients {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, registerRequest(string(md)))
		if w.Code != http.StatusCreated {
			b.Fatalf("register: status %d: %s", w.Code, w.Body)
		}
		var resp struct {
			ClientID string `json:"client_id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			b.Fatal(err)
		}
		env.clients = append(env.clients, resp.ClientID)
	}
	return env
}

// benchParallel runs fn(i) for i in [0, n) on benchClients goroutines and
// returns the first error.
func benchParallel(n int, fn func(i int) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	for range min(n, benchClients) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// prepareCodes stores n authorization codes, spread over the clients
// and users, and returns the token request bodies that redeem them.
func (e *benchEnv) prepareCodes(b *testing.B, n int) []string {
	bodies := make([]string, n)
	ctx := context.Background()
	err := benchParallel(n, func(i int) error {
		code, verifier, grantID := benchToken(32), benchToken(32), benchToken(16)
		client := e.clients[i%len(e.clients)]
		err := e.st.CreateCode(ctx, code, &store.AuthCode{
			GrantID: grantID, ClientID: client, UserID: e.users[i%len(e.users)], RedirectURI: flowRedirect,
			Scope: benchScope, Resource: flowResource, CodeChallenge: s256(verifier), CodeChallengeMethod: "S256",
			CreatedAt: e.now, ExpiresAt: time.Now().Add(oauth.MaxCodeLifetime),
		})
		bodies[i] = url.Values{
			"grant_type":    {"authorization_code"},
			"code":          {code},
			"code_verifier": {verifier},
			"redirect_uri":  {flowRedirect},
			"resource":      {flowResource},
			"client_id":     {client},
		}.Encode()
		return err
	})
	if err != nil {
		b.Fatalf("storing authorization codes: %v", err)
	}
	return bodies
}

// prepareRefreshTokens stores n grants with one refresh token each,
// spread over the clients and users, and returns the token request
// bodies that rotate them.
func (e *benchEnv) prepareRefreshTokens(b *testing.B, n int) []string {
	bodies := make([]string, n)
	ctx := context.Background()
	err := benchParallel(n, func(i int) error {
		token, grantID := benchToken(32), benchToken(16)
		client, user := e.clients[i%len(e.clients)], e.users[i%len(e.users)]
		if err := e.st.CreateGrant(ctx, &store.Grant{ID: grantID, ClientID: client, UserID: user,
			Scope: benchScope, Resource: flowResource, CreatedAt: e.now, UpdatedAt: e.now,
			ExpiresAt: e.now.Add(oauth.DefaultRefreshLifetime)}); err != nil {
			return err
		}
		bodies[i] = url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {token},
			"resource":      {flowResource},
			"client_id":     {client},
		}.Encode()
		return e.st.CreateRefreshToken(ctx, token, &store.RefreshToken{GrantID: grantID, ClientID: client,
			UserID: user, Scope: benchScope, Resource: flowResource, CreatedAt: e.now,
			ExpiresAt: e.now.Add(oauth.DefaultRefreshIdle)})
	})
	if err != nil {
		b.Fatalf("storing refresh tokens: %v", err)
	}
	return bodies
}

// errUnavailableAnswer is a 503 answer: the store failed or did not
// answer in time.
var errUnavailableAnswer = fmt.Errorf("token endpoint: 503 temporarily_unavailable (store unavailable, or no answer within %v)", benchRequestTimeout)

// post sends one token request through the handler and returns its
// latency, or an error for any answer but 200 (errUnavailableAnswer for
// 503).
func (e *benchEnv) post(body string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), benchRequestTimeout)
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, flowIssuer+oauth.TokenPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	start := time.Now()
	e.srv.ServeHTTP(w, r)
	d := time.Since(start)
	switch w.Code {
	case http.StatusOK:
		return d, nil
	case http.StatusServiceUnavailable:
		return d, errUnavailableAnswer
	}
	return d, fmt.Errorf("token endpoint: status %d: %s", w.Code, w.Body)
}

// benchTokenRequests sends the first benchWarmup bodies untimed, then
// the remaining b.N from about benchClients goroutines, and reports
// throughput (unit: successful requests per second) and latency
// percentiles (of every request). 503 answers, which the server gives
// when the store does not answer in time, are reported as "unavailable";
// once benchClients of them have come, the store is taken to have stalled
// and the benchmark fails without sending the rest. Any other failure
// fails the benchmark.
func benchTokenRequests(b *testing.B, env *benchEnv, bodies []string, unit string) {
	b.Helper()
	if err := benchParallel(benchWarmup, func(i int) error {
		_, err := env.post(bodies[i])
		return err
	}); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	bodies = bodies[benchWarmup:]
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchClients + procs - 1) / procs)
	var (
		next        atomic.Int64
		mu          sync.Mutex
		latencies   = make([]time.Duration, 0, b.N)
		failures    atomic.Int64
		unavailable atomic.Int64
		skipped     atomic.Int64
		firstErr    atomic.Value
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, b.N/benchClients+1)
		for pb.Next() {
			i := next.Add(1) - 1
			if unavailable.Load() >= benchClients {
				skipped.Add(1)
				continue
			}
			d, err := env.post(bodies[i])
			local = append(local, d)
			switch {
			case errors.Is(err, errUnavailableAnswer):
				unavailable.Add(1)
			case err != nil && failures.Add(1) == 1:
				firstErr.Store(err)
			}
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	elapsed := b.Elapsed()
	b.StopTimer()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed; first: %v", n, b.N, firstErr.Load())
	}
	if n := skipped.Load(); n > 0 {
		b.Fatalf("the store stalled: %d requests were answered 503 after waiting up to %v; %d of %d not sent",
			unavailable.Load(), benchRequestTimeout, n, b.N)
	}
	slices.Sort(latencies)
	ok := b.N - int(unavailable.Load())
	b.ReportMetric(float64(ok)/elapsed.Seconds(), unit)
	if ok < b.N {
		b.ReportMetric(float64(b.N-ok), "unavailable")
	}
	b.ReportMetric(benchPercentile(latencies, 0.50).Seconds()*1e3, "p50-ms")
	b.ReportMetric(benchPercentile(latencies, 0.99).Seconds()*1e3, "p99-ms")
}

// benchPercentile returns the nearest-rank q-quantile of sorted durations.
func benchPercentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}
