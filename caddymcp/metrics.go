package caddymcp

import (
	"log/slog"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/audit"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are caddymcp's collectors in Caddy's Prometheus registry (the
// one Caddy's `metrics` handler and admin endpoint serve). A nil *metrics
// records nothing.
type metrics struct {
	oauthEvents  *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	toolCalls    *prometheus.CounterVec
	toolDuration *prometheus.HistogramVec
	duration     *prometheus.HistogramVec
}

// Metric names, documented in the README.
const metricsNamespace = "caddymcp"

// newMetrics creates the collectors and registers them in reg. A config
// load has a registry of its own, so each load registers afresh.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	m := &metrics{
		oauthEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "oauth_events_total",
			Help: "Authorization server events: tokens issued, refreshed and revoked, codes issued, consent granted or denied, clients registered, refresh-token reuse.",
		}, []string{"event"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "auth_failures_total",
			Help: "Requests mcp_bearer refused, by reason.",
		}, []string{"reason"}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "tool_calls_total",
			Help: "MCP tool calls, by tool and outcome (ok, tool_error, forbidden, invalid, unavailable, failed).",
		}, []string{"tool", "outcome"}),
		toolDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "tool_call_duration_seconds",
			Help: "Time to run an MCP tool call, by tool.", Buckets: buckets,
		}, []string{"tool"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "request_duration_seconds",
			Help:    "Time caddymcp's handlers spent on a request, by handler and endpoint (for mcp_bearer: the token check only).",
			Buckets: buckets,
		}, []string{"handler", "endpoint"}),
	}
	for _, c := range []prometheus.Collector{m.oauthEvents, m.authFailures, m.toolCalls, m.toolDuration, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records the duration of a request to a handler's endpoint.
func (m *metrics) observe(handler, endpoint string, start time.Time) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(handler, endpoint).Observe(time.Since(start).Seconds())
}

// authFailure counts a refusal of mcp_bearer.
func (m *metrics) authFailure(reason string) {
	if m == nil {
		return
	}
	m.authFailures.WithLabelValues(reason).Inc()
}

// toolCall counts a tool call and its duration.
func (m *metrics) toolCall(tool, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.toolCalls.WithLabelValues(tool, outcome).Inc()
	m.toolDuration.WithLabelValues(tool).Observe(d.Seconds())
}

// countEvent counts an authorization server event by its kind; a nil m
// counts nothing.
func (m *metrics) countEvent(e audit.Event) {
	if m == nil {
		return
	}
	m.oauthEvents.WithLabelValues(string(e.Kind)).Inc()
}

// oauthEvents is the authorization server's event hook: each event is an
// audit log line on l and a count in caddymcp_oauth_events_total (counted
// even when the log's level hides it).
func (a *App) oauthEvents(l *slog.Logger) audit.Hook {
	return audit.Both(audit.Log(l), a.meters().countEvent)
}

// meters returns the app's metrics; nil (recording nothing) for handlers
// built without an app.
func (a *App) meters() *metrics {
	if a == nil {
		return nil
	}
	return a.metrics
}
