package caddymcp

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/internal/audit"
	"github.com/caddymcp/caddymcp/caddymcp/oauth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetrics runs caddymcp in Caddy with Caddy's metrics handler and
// checks that registrations, refusals and handler durations show up in
// its Prometheus registry.
func TestMetrics(t *testing.T) {
	site := startSite(t, "", `	metrics /metrics
	mcp_oauth
	mcp_bearer /mcp*
	respond /mcp* "ok"
`)
	do := func(method, path, body string, hdr map[string]string) int {
		return fetch(t, method, site+path, body, hdr).status
	}
	if code := do("POST", "/oauth/register", `{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`,
		map[string]string{"Content-Type": "application/json"}); code != 201 {
		t.Fatalf("registration: %d", code)
	}
	for range 2 {
		if code := do("POST", "/mcp", "", nil); code != 401 {
			t.Fatalf("no token: %d", code)
		}
	}
	if code := do("POST", "/mcp", "", map[string]string{"Authorization": "Bearer a.b.c"}); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	text := fetch(t, "GET", site+"/metrics", "", nil).body
	for _, want := range []string{
		`caddymcp_oauth_events_total{event="client_registered"} 1`,
		`caddymcp_auth_failures_total{reason="missing_token"} 2`,
		`caddymcp_auth_failures_total{reason="invalid_token"} 1`,
		`caddymcp_request_duration_seconds_count{endpoint="/oauth/register",handler="mcp_oauth"} 1`,
		`caddymcp_request_duration_seconds_count{endpoint="check",handler="mcp_bearer"} 3`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "caddymcp_") {
				t.Log(line)
			}
		}
	}
}

// TestEventMetricsByKind: the authorization server's events are counted
// by their kind, whatever the log says or whether it says anything.
func TestEventMetricsByKind(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	a := &App{metrics: m}
	var logged strings.Builder
	hook := a.oauthEvents(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelError})))
	hook(audit.Event{Kind: oauth.EventTokenIssued, Attrs: []any{"client_id", "c1"}})
	hook(audit.Event{Kind: oauth.EventTokenIssued})
	hook(audit.Event{Kind: oauth.EventRefreshReuseDetected})
	if got := testutil.ToFloat64(m.oauthEvents.WithLabelValues("token_issued")); got != 2 {
		t.Errorf("token_issued counted %v times, want 2", got)
	}
	if got := testutil.ToFloat64(m.oauthEvents.WithLabelValues("refresh_reuse_detected")); got != 1 {
		t.Errorf("refresh_reuse_detected counted %v times, want 1", got)
	}
	if logged.Len() != 0 {
		t.Errorf("the ERROR-level log shows audit lines: %q", logged.String())
	}
	(*metrics)(nil).countEvent(audit.Event{Kind: "x"}) // no metrics: nothing, no panic
}
