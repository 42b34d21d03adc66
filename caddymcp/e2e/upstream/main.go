//go:build e2e

// Command upstream is the MCP server that the end-to-end tests put behind
// Caddy's reverse_proxy and mcp_bearer. It speaks MCP Streamable HTTP
// (mcp-go, stateless) on every path except /_upstream/, and has two tools:
//
//   - whoami returns the identity headers the request arrived with
//     (X-User-Id, X-Client-Id, X-Scope, every value of each) and whether
//     it carried an Authorization header;
//   - wait_for_release sends a progress notification (which turns the
//     response into an SSE stream), then waits until the test releases
//     it, and answers. A proxy that buffered the stream would hold the
//     notification back, the release would never come, and the call
//     would end in a tool error.
//
// Besides MCP it answers, on paths that a proxy in front of it does not
// forward:
//
//	GET  /_upstream/stats                  {"requests": n, "with_authorization": m}
//	POST /_upstream/release?token=<token>  releases a waiting call (204, or 404)
//
// It prints "listening on <host:port>" on its first line of output and
// stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// releaseTimeout is how long wait_for_release waits for its release.
const releaseTimeout = 5 * time.Second

// identityHeaders are the request headers whoami reports.
var identityHeaders = []string{"X-User-Id", "X-Client-Id", "X-Scope"}

// upstream is the server's state: request counters and the calls waiting
// for a release, by progress token.
type upstream struct {
	requests, withAuthorization atomic.Int64

	mu      sync.Mutex
	waiting map[string]chan struct{}
}

// Identity is whoami's structured result.
type Identity struct {
	// Headers maps each identity header to every value it arrived with
	// (absent: not sent).
	Headers map[string][]string `json:"headers"`
	// Authorization reports whether an Authorization header arrived.
	Authorization bool `json:"authorization"`
}

// Stats is the body of GET /_upstream/stats.
type Stats struct {
	// Requests counts the requests that reached the MCP endpoint.
	Requests int64 `json:"requests"`
	// WithAuthorization counts those that carried an Authorization header.
	WithAuthorization int64 `json:"with_authorization"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*listen); err != nil {
		log.Fatal(err)
	}
}

func run(listen string) error {
	u := &upstream{waiting: map[string]chan struct{}{}}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: u.handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on %s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler routes the control endpoints and counts every other request on
// its way to the MCP server.
func (u *upstream) handler() http.Handler {
	m := server.NewMCPServer("caddymcp-e2e-upstream", "1", server.WithToolCapabilities(false), server.WithRecovery())
	m.AddTool(mcp.NewTool("whoami",
		mcp.WithDescription("Returns the identity headers of the request and whether it carried an Authorization header."),
		mcp.WithReadOnlyHintAnnotation(true),
	), u.whoami)
	m.AddTool(mcp.NewTool("wait_for_release",
		mcp.WithDescription("Sends a progress notification, waits for the test to release it, and answers. Needs a progress token."),
		mcp.WithReadOnlyHintAnnotation(true),
	), u.waitForRelease)
	mcpHTTP := server.NewStreamableHTTPServer(m, server.WithStateLess(true))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /_upstream/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Stats{Requests: u.requests.Load(), WithAuthorization: u.withAuthorization.Load()})
	})
	mux.HandleFunc("POST /_upstream/release", func(w http.ResponseWriter, r *http.Request) {
		if !u.release(r.URL.Query().Get("token")) {
			http.Error(w, "no call waits for this token", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/_upstream/", http.NotFound)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		if len(r.Header.Values("Authorization")) > 0 {
			u.withAuthorization.Add(1)
		}
		mcpHTTP.ServeHTTP(w, r)
	})
	return mux
}

// whoami reports the identity headers the call arrived with.
func (u *upstream) whoami(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	id := Identity{Headers: map[string][]string{}, Authorization: len(req.Header.Values("Authorization")) > 0}
	for _, h := range identityHeaders {
		if v := req.Header.Values(h); len(v) > 0 {
			id.Headers[h] = v
		}
	}
	return mcp.NewToolResultStructuredOnly(id), nil
}

// waitForRelease streams a progress notification and answers once the
// call is released.
func (u *upstream) waitForRelease(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return mcp.NewToolResultError("wait_for_release needs a progress token in _meta.progressToken"), nil
	}
	token := req.Params.Meta.ProgressToken
	key := fmt.Sprint(token)
	released := make(chan struct{})
	u.mu.Lock()
	u.waiting[key] = released
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		if u.waiting[key] == released {
			delete(u.waiting, key)
		}
		u.mu.Unlock()
	}()

	srv := server.ServerFromContext(ctx)
	if err := srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
		"progressToken": token, "progress": 1, "total": 2, "message": "waiting for release",
	}); err != nil {
		return mcp.NewToolResultErrorf("sending progress: %v", err), nil
	}
	select {
	case <-released:
	case <-time.After(releaseTimeout):
		return mcp.NewToolResultErrorf("not released within %v: the progress notification did not reach the client in time", releaseTimeout), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return mcp.NewToolResultText("released"), nil
}

// release wakes the call waiting for token, if there is one.
func (u *upstream) release(token string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	ch, ok := u.waiting[token]
	if ok {
		close(ch)
		delete(u.waiting, token)
	}
	return ok
}
