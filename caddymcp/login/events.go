package login

import "github.com/caddymcp/caddymcp/caddymcp/internal/audit"

// The audit events of the login server (Config.Events).
const (
	// EventLoginSucceeded: a person signed in.
	EventLoginSucceeded audit.Kind = "login_succeeded"
	// EventLoginDenied: a sign-in failed or the access policy refused it.
	EventLoginDenied audit.Kind = "login_denied"
	// EventLogout: a person signed out.
	EventLogout audit.Kind = "logout"
	// EventSessionsRevoked: a user's sessions were ended.
	EventSessionsRevoked audit.Kind = "sessions_revoked"
)
