// Package page renders caddymcp's HTML pages — the sign-in pages
// (among them the development sign-in form), the consent page, the
// account page and the error pages — from one template set with one
// stylesheet, and writes them with one set of security headers.
//
// Every page is a template of the set: the layout ("head" and "foot")
// holds the document head and the stylesheet, and each page fills in
// the body. Write executes a page with a Page value, so templates see
// the title as .Title, the style nonce as .Nonce and the page's own data
// as .Data.
//
// The package imports only the standard library, so that every
// caddymcp package that shows a page may use it.
package page

import (
	"bytes"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
)

// Names of the pages of the template set.
const (
	// MessageName is a title, a sentence and optional link buttons: the
	// error pages, and the provider picker of the sign-in pages. Its
	// Data is a Message.
	MessageName = "message"
	// ConsentName asks the signed-in user to approve or deny an
	// application's authorization request. Its Data is a Consent.
	ConsentName = "consent"
	// DevSignInName is the development sign-in form: an email address
	// and a display name. Its Data is a DevSignIn.
	DevSignInName = "dev_sign_in"
	// AccountName shows the signed-in user the applications they
	// authorized and the browsers they are signed in on, each with a
	// form that revokes it, and a sign-out form. Its Data is an Account.
	AccountName = "account"
)

// Self is the CSP source expression of the page's own origin, for
// Page.PostTo.
const Self = "'self'"

// Page is one page to write.
type Page struct {
	// Name is the template of the page: MessageName, ConsentName,
	// DevSignInName or AccountName.
	Name string
	// Title is the document title; pages also show it as their heading.
	Title string
	// Nonce is the CSP nonce (CSP3 §2.3.1) of the page's style element,
	// fresh for every response (see NewNonce). Empty, or anything but
	// base64url characters, blocks the stylesheet: the page stays
	// readable, unstyled, and no header can be injected through it.
	Nonce string
	// PostTo lists where forms on the page may be submitted: the CSP
	// form-action sources (CSP3 §6.4.1). Each is Self, or a scheme,
	// host or origin made of letters, digits and ":/.-[]*"; anything
	// else is dropped. Empty means nowhere ('none').
	PostTo []string
	// Data is what the page's template renders: a Message for
	// MessageName, a Consent for ConsentName, a DevSignIn for
	// DevSignInName, an Account for AccountName.
	Data any
}

// Message is the data of the message page.
type Message struct {
	// Text is the sentence under the title.
	Text string
	// Links are shown as buttons under the text, in order. Optional.
	Links []Link
}

// Link is a button that leads to another page.
type Link struct {
	// Label is the button's text.
	Label string
	// URL is where it leads; html/template neutralises unsafe schemes.
	URL string
}

// Consent is the data of the consent page. Every string is shown as
// text, escaped.
type Consent struct {
	// Client is the application's name ("An application" when unknown).
	Client string
	// ClientID is the application's client_id.
	ClientID string
	// ClientHost is the host of a client_id URL, shown prominently for
	// a client known by its metadata document; empty otherwise. It is in
	// ASCII form (punycode), as browsers show look-alike hosts.
	ClientHost string
	// ClientHostUnicode is ClientHost's Unicode form, shown beside it,
	// when it differs and is single-script; empty otherwise.
	ClientHostUnicode string
	// MixedScript warns prominently that a host shown mixes scripts (a
	// possible look-alike of another host).
	MixedScript bool
	// SignedInAs names the signed-in user; empty hides the line.
	SignedInAs string
	// LocalRedirect warns that the client is sent back to the user's own
	// device, where another program could be posing as it.
	LocalRedirect bool
	// RedirectHost is the redirect destination as shown prominently, its
	// host in ASCII form (punycode).
	RedirectHost string
	// RedirectHostUnicode is RedirectHost's Unicode form, shown beside
	// it, when it differs and is single-script; empty otherwise.
	RedirectHostUnicode string
	// RedirectURI is the full redirect URI.
	RedirectURI string
	// ResourceName is an optional name of the resource.
	ResourceName string
	// Resource is the resource URL; empty hides the section.
	Resource string
	// Scopes are the requested scopes, described.
	Scopes []Scope
	// FormAction is where the decision is posted; it must also be
	// allowed by Page.PostTo.
	FormAction string
	// RequestID is the hidden request_id field.
	RequestID string
	// CSRFToken is the hidden csrf_token field.
	CSRFToken string
	// AccountURL is the page where the user manages the applications
	// they authorized; empty hides the link.
	AccountURL string
}

// Account is the data of the account page. Every string is shown as
// text, escaped. Every form posts to FormAction with the hidden fields
// csrf_token (CSRFToken) and action: "revoke_application" with grant
// (Application.Grant), "end_session" with session (Session.ID), or
// "sign_out".
type Account struct {
	// SignedInAs names the signed-in user; empty hides the line.
	SignedInAs string
	// Notice confirms what the last form did; empty hides it.
	Notice string
	// FormAction is where the forms post; it must also be allowed by
	// Page.PostTo.
	FormAction string
	// CSRFToken is the hidden csrf_token field of every form.
	CSRFToken string
	// Applications are the applications the user authorized.
	Applications []Application
	// Sessions are the browsers the user is signed in on.
	Sessions []Session
}

// Application is one authorization the user gave an application.
type Application struct {
	// Grant is the hidden grant field of its revoke form.
	Grant string
	// Name is the application's name.
	Name string
	// ClientID is its client_id.
	ClientID string
	// RedirectHost is where it is sent back to, as shown prominently;
	// empty when not known.
	RedirectHost string
	// RedirectURI is the full redirect URI.
	RedirectURI string
	// Resource is what it may access; empty hides the line.
	Resource string
	// Scopes are what it may do, described.
	Scopes []Scope
	// Authorized is when the user authorized it; LastUsed when it last
	// obtained tokens.
	Authorized, LastUsed Time
}

// Session is one browser session of the user.
type Session struct {
	// ID is the hidden session field of its end form.
	ID string
	// Browser describes the browser, e.g. "Firefox on Linux".
	Browser string
	// Address is the network address it signed in from; empty hides it.
	Address string
	// Started is when it signed in; LastSeen when it was last used.
	Started, LastSeen Time
	// Current marks the session the page is shown in.
	Current bool
}

// Time is a moment as a page shows it: Text for people, and ISO (RFC
// 3339) for the datetime attribute of its time element.
type Time struct {
	Text, ISO string
}

// Scope is one scope as the consent and account pages describe it.
type Scope struct {
	// Title names what the scope allows, e.g. "View your bookings".
	Title string
	// Description says it in a sentence.
	Description string
	// Tools lists what the scope unlocks; empty hides the line.
	Tools string
}

// DevSignIn is the data of the development sign-in form. Every string
// is shown as text, escaped.
type DevSignIn struct {
	// FormAction is where the form is posted; it must also be allowed
	// by Page.PostTo.
	FormAction string
	// CSRFToken is the hidden csrf_token field.
	CSRFToken string
	// Email and Name are the values the fields show: empty at first,
	// what was typed when the form comes back with an error.
	Email, Name string
	// EmailError and NameError say what is wrong with a field; empty
	// when nothing is.
	EmailError, NameError string
}

// templateFS holds the template set.
//
//go:embed templates/*.html
var templateFS embed.FS

// templates is the parsed template set; parsing it is checked by the
// tests, so a broken template never ships.
var templates = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Write renders p and writes it with the given status and the security
// headers every page shares. When the template fails, nothing of it is
// sent: the answer is a plain 500 "internal error", and the cause is
// returned for the caller to log.
func Write(w http.ResponseWriter, status int, p Page) error {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, p.Name, p); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return fmt.Errorf("rendering the %q page: %w", p.Name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show who is signed in and carry one-time form tokens: no
	// cache may keep them (RFC 9111 §5.2.2.5), HTTP/1.0 ones included
	// (RFC 9111 §5.4).
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	// No other site may frame a page to trick a click on Approve (RFC
	// 6749 §10.13): X-Frame-Options (RFC 7034) for old browsers,
	// frame-ancestors for the others.
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// Page URLs may hold codes and states: keep them out of Referer.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", CSP(p.Nonce, p.PostTo))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// CSP returns the Content-Security-Policy of a page: nothing loads but
// the style element carrying nonce, forms post only to postTo (see
// Page.PostTo), nothing may frame the page, and no base element may
// redirect its relative URLs.
func CSP(nonce string, postTo []string) string {
	style := "'none'"
	if validNonce(nonce) {
		style = "'nonce-" + nonce + "'"
	}
	return "default-src 'none'; style-src " + style + "; form-action " + formAction(postTo) +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// formAction is the form-action source list of postTo.
func formAction(postTo []string) string {
	var kept []string
	for _, s := range postTo {
		if s == Self || validSource(s) {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		return "'none'"
	}
	return strings.Join(kept, " ")
}

// NewNonce returns a style nonce: 16 bytes from random in unpadded
// base64url, which CSP accepts and html/template leaves unescaped
// (unlike '+' and '=').
func NewNonce(random io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("reading randomness for a nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// validNonce reports whether s is a non-empty run of base64url
// characters, safe inside 'nonce-…' in a header and in an attribute.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validSource reports whether s is safe to put in a CSP header as a
// source: only letters, digits and : / . - [ ] *.
func validSource(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(":/.-[]*", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// SignedInAs names a signed-in user as the pages show it: "Name (email)",
// or whichever of the two is known.
func SignedInAs(name, email string) string {
	switch {
	case name != "" && email != "" && name != email:
		return name + " (" + email + ")"
	case name != "":
		return name
	default:
		return email
	}
}
