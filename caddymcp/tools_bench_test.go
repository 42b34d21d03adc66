package caddymcp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testpg"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// benchClients is how many requests are in flight at once.
const benchClients = 32

// BenchmarkToolsCall measures tools/call of products_list (a page of 20)
// over real HTTP through an in-process Caddy with mcp_bearer and
// mcp_tools, on PostgreSQL when CADDYMCP_TEST_DATABASE_URL is set (else
// the embedded store), next to a bare mcp-go stateless server answering a
// constant, with the same client load. It reports calls/s of each.
func BenchmarkToolsCall(b *testing.B) {
	b.Run("caddy", func(b *testing.B) {
		url, token := startToolsSite(b)
		runCalls(b, url, token)
	})
	b.Run("bare-mcp-go", func(b *testing.B) {
		m := server.NewMCPServer("bare", "1", server.WithToolCapabilities(false))
		m.AddTool(mcp.NewTool("products_list"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(`{"products":[]}`), nil
		})
		srv := httptest.NewServer(server.NewStreamableHTTPServer(m, server.WithStateLess(true)))
		b.Cleanup(srv.Close)
		runCalls(b, srv.URL+"/mcp", "")
	})
}

// startToolsSite loads a Caddy site with the tools on a free port, seeds
// 20 products and mints a product:read token.
func startToolsSite(b *testing.B) (string, string) {
	b.Helper()
	port := freePort(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	storeLine := "embedded_path " + filepath.Join(b.TempDir(), "bench.db")
	if os.Getenv(testpg.EnvVar) != "" {
		b.Setenv("CADDYMCP_BENCH_DSN", testpg.Schema(b))
		storeLine = "database {env.CADDYMCP_BENCH_DSN}"
	}
	src := fmt.Sprintf("{\n\tadmin off\n\tlog {\n\t\tlevel ERROR\n\t}\n\tcaddymcp {\n\t\tissuer %s\n\t\t%s\n\t}\n}\n%s {\n\tmcp_bearer /mcp*\n\tmcp_tools\n}\n",
		base, storeLine, base)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := load(b, cfg); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stopCaddy(b) })
	var ps *pooledStore
	stores.Range(func(_, v any) bool { ps, _ = v.(*pooledStore); return false })
	ctx := context.Background()
	for i := range 20 {
		now := time.Now()
		if err := ps.CreateProduct(ctx, &store.Product{ID: fmt.Sprintf("p%02d", i), SKU: fmt.Sprintf("SKU-%02d", i),
			Name: fmt.Sprintf("Product %02d", i), PriceMinor: 100, Currency: "EUR", Stock: 10,
			Audit: store.Audit{CreatedAt: now, UpdatedAt: now, CreatedBy: "bench", UpdatedBy: "bench"}}); err != nil {
			b.Fatal(err)
		}
	}
	ks, err := ps.prepare(ctx, keyPolicy{rotateAfter: 30 * 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	token, err := ks.Sign(&oauth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: base, Subject: "bench",
		Audience: jwt.ClaimStrings{base + "/mcp"}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		ID: "bench-jti"}, ClientID: "bench", Scope: "product:read"})
	if err != nil {
		b.Fatal(err)
	}
	return base + "/mcp", token
}

// runCalls sends b.N tools/call requests from benchClients goroutines and
// reports calls/s and latency percentiles.
func runCalls(b *testing.B, url, token string) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients * 2}, Timeout: 10 * time.Second}
	const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"products_list","arguments":{"limit":20}}}`
	call := func() (time.Duration, error) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(out), `"result"`) {
			return 0, fmt.Errorf("status %d: %.200s", res.StatusCode, out)
		}
		return time.Since(start), nil
	}
	for range benchClients { // warm up connections and caches
		if _, err := call(); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range benchClients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				d, err := call()
				if err != nil {
					failed.Store(err)
					return
				}
				lat[i] = d
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
