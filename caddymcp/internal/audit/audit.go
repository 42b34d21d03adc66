// Package audit is how caddymcp's cores report security-relevant events
// (a token issued, a refresh token reused, a login denied…): each core
// names its events as Kind constants and hands them to the Hook of its
// Config; the Caddy adapter turns them into log lines and metrics. No
// metric depends on the wording of a log message.
//
// It imports no other caddymcp package.
package audit

import (
	"log/slog"
	"sync"
)

// Kind names an event, in the form of a snake_case identifier that is
// also the message of its log line and the label of its metric.
type Kind string

// Event is one security-relevant event. Attrs never hold secrets.
type Event struct {
	// Kind is what happened.
	Kind Kind
	// Attrs are the event's details as slog key-value pairs (client_id,
	// user_id, grant_id, scope…).
	Attrs []any
}

// Hook receives a core's events, synchronously, on the goroutine that
// serves the request; it must not block.
type Hook func(Event)

// Log returns a hook that writes each event to l as an Info record whose
// message is its kind, with audit=true, the form of caddymcp's audit log.
func Log(l *slog.Logger) Hook {
	if l == nil {
		return func(Event) {}
	}
	return func(e Event) { l.Info(string(e.Kind), append([]any{"audit", true}, e.Attrs...)...) }
}

// Both returns a hook that passes each event to every non-nil hook.
func Both(hooks ...Hook) Hook {
	return func(e Event) {
		for _, h := range hooks {
			if h != nil {
				h(e)
			}
		}
	}
}

// Recorder keeps the events it receives, for tests.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Hook is the recorder's hook.
func (r *Recorder) Hook(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Kinds returns the kinds received so far, in order.
func (r *Recorder) Kinds() []Kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Kind, len(r.events))
	for i, e := range r.events {
		out[i] = e.Kind
	}
	return out
}
