package tools

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/mark3labs/mcp-go/server"
)

// DefaultSessionIdleTimeout is how long a session may go without a
// request before it ends, when Config.SessionIdleTimeout is zero.
const DefaultSessionIdleTimeout = 30 * time.Minute

// MaxSessionsPerUser is how many sessions one user may hold at once. An
// initialize beyond it is refused with 429 until one of the user's
// sessions ends (DELETE, idle timeout).
const MaxSessionsPerUser = 100

// errNoSession is what mcp-go hears when a session id is unknown, ended,
// idle for too long or another user's: it answers 404, as the MCP
// transport does for a session it does not know.
var errNoSession = errors.New("no such session")

// owner is the user a session belongs to: the token's issuer and subject.
type owner struct{ issuer, subject string }

func ownerOf(p *bearer.Principal) owner { return owner{issuer: p.Issuer, subject: p.Subject} }

type session struct {
	owner    owner
	lastUsed time.Time
}

// sessionTable holds the live MCP sessions of one server, in memory, each
// bound to the user who started it. It is mcp-go's session id manager
// (through ResolveSessionIdManager), so mcp-go asks it to create, check
// and end every session.
type sessionTable struct {
	now    func() time.Time
	random io.Reader
	idle   time.Duration

	mu      sync.Mutex
	byID    map[string]*session
	perUser map[owner]int
}

func newSessionTable(now func() time.Time, random io.Reader, idle time.Duration) *sessionTable {
	return &sessionTable{now: now, random: random, idle: idle, byID: map[string]*session{}, perUser: map[owner]int{}}
}

// start creates a session for o and returns its id, or "" if o holds
// MaxSessionsPerUser sessions (initialize requests racing past the check
// in sessionGate) or no random id could be made: the client then gets no
// session and its next request is refused.
func (t *sessionTable) start(o owner) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perUser[o] >= MaxSessionsPerUser {
		return ""
	}
	b := make([]byte, 24)
	if _, err := io.ReadFull(t.random, b); err != nil {
		return ""
	}
	id := "mcp_" + base64.RawURLEncoding.EncodeToString(b)
	t.byID[id] = &session{owner: o, lastUsed: t.now()}
	t.perUser[o]++
	return id
}

// use reports whether id is a live session of o, and marks it used. A
// session idle for longer than the timeout ends here.
func (t *sessionTable) use(id string, o owner) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok || s.owner != o {
		return false
	}
	now := t.now()
	if now.Sub(s.lastUsed) >= t.idle {
		t.remove(id, s)
		return false
	}
	s.lastUsed = now
	return true
}

// end removes a session. With o set, only o's own session is removed and
// end reports false for another user's; an unknown id is already ended.
func (t *sessionTable) end(id string, o *owner) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok {
		return true
	}
	if o != nil && s.owner != *o {
		return false
	}
	t.remove(id, s)
	return true
}

func (t *sessionTable) remove(id string, s *session) {
	delete(t.byID, id)
	if t.perUser[s.owner]--; t.perUser[s.owner] <= 0 {
		delete(t.perUser, s.owner)
	}
}

// full reports whether o holds MaxSessionsPerUser live sessions. At the
// limit, o's idle sessions end first.
func (t *sessionTable) full(o owner) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perUser[o] < MaxSessionsPerUser {
		return false
	}
	now := t.now()
	for id, s := range t.byID {
		if s.owner == o && now.Sub(s.lastUsed) >= t.idle {
			t.remove(id, s)
		}
	}
	return t.perUser[o] >= MaxSessionsPerUser
}

// len returns the number of live sessions.
func (t *sessionTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// ResolveSessionIdManager gives mcp-go the session id manager for a
// request: one acting for the request's user. A nil request comes from
// mcp-go itself (the idle sweeper, shutdown), which may end any session.
func (t *sessionTable) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r == nil {
		return serverSessions{t}
	}
	p, ok := bearer.PrincipalFrom(r.Context())
	if !ok {
		return noSessions{}
	}
	return userSessions{t: t, owner: ownerOf(p)}
}

// userSessions manages sessions on behalf of one user: it sees only that
// user's sessions.
type userSessions struct {
	t     *sessionTable
	owner owner
}

func (u userSessions) Generate() string { return u.t.start(u.owner) }

func (u userSessions) Validate(id string) (bool, error) {
	if u.t.use(id, u.owner) {
		return false, nil
	}
	return false, errNoSession
}

// Terminate ends the user's own session; another user's is "not allowed"
// and left alone.
func (u userSessions) Terminate(id string) (bool, error) {
	return !u.t.end(id, &u.owner), nil
}

// serverSessions is the manager mcp-go uses outside requests: it ends
// sessions that idled out and, on shutdown, all of them.
type serverSessions struct{ t *sessionTable }

func (serverSessions) Generate() string                    { return "" }
func (serverSessions) Validate(string) (bool, error)       { return false, errNoSession }
func (s serverSessions) Terminate(id string) (bool, error) { s.t.end(id, nil); return false, nil }

// noSessions refuses everything: a request without a verified principal
// never reaches mcp-go, so this is only a safe default.
type noSessions struct{}

func (noSessions) Generate() string               { return "" }
func (noSessions) Validate(string) (bool, error)  { return false, errNoSession }
func (noSessions) Terminate(string) (bool, error) { return true, nil }

// Interface guards
var (
	_ server.SessionIdManagerResolver = (*sessionTable)(nil)
	_ server.SessionIdManager         = userSessions{}
	_ server.SessionIdManager         = serverSessions{}
	_ server.SessionIdManager         = noSessions{}
)
