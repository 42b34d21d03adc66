package caddymcp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
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
		site := startToolsSite(b, "")
		site.seedProducts(b, 20)
		runCalls(b, site.base+"/mcp", site.token(b, "bench", "product:read"))
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
