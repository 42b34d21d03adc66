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
	// EventGrantRevoked: a user revoked an application's access on the
	// account page.
	EventGrantRevoked audit.Kind = "grant_revoked"
	// EventSessionEnded: a user ended one of their other sessions on the
	// account page.
	EventSessionEnded audit.Kind = "session_ended"
	// EventAccountFormRefused: a form posted to the account page did not
	// carry the token of the session it came with (forged or replayed).
	EventAccountFormRefused audit.Kind = "account_form_refused"
)
