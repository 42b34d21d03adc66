package oauth

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// scopeDescription explains a scope to the person approving it.
type scopeDescription struct {
	Title       string
	Description string
	Tools       []string
}

// scopeInfo describes the default scopes.
var scopeInfo = map[string]scopeDescription{
	"booking:read": {
		Title:       "View your bookings",
		Description: "See your bookings and their details.",
		Tools:       []string{"bookings_list", "bookings_get"},
	},
	"booking:write": {
		Title:       "Manage your bookings",
		Description: "Create new bookings, change them and cancel them.",
		Tools:       []string{"bookings_create", "bookings_update", "bookings_cancel"},
	},
	"product:read": {
		Title:       "View your products",
		Description: "See your products and their details.",
		Tools:       []string{"products_list", "products_get"},
	},
	"product:write": {
		Title:       "Manage your products",
		Description: "Create, change and delete products, and adjust their stock.",
		Tools:       []string{"products_create", "products_update", "products_delete", "products_adjust_stock"},
	},
	"order:read": {
		Title:       "View your orders",
		Description: "See your orders and their details.",
		Tools:       []string{"orders_list", "orders_get"},
	},
	"order:write": {
		Title:       "Manage your orders",
		Description: "Create orders and change their status.",
		Tools:       []string{"orders_create", "orders_update_status"},
	},
	"form:read": {
		Title:       "View your forms",
		Description: "Read your forms and the answers people have submitted.",
		Tools:       []string{"forms_list", "forms_get", "forms_list_submissions"},
	},
	"form:write": {
		Title:       "Manage your forms",
		Description: "Create forms and submit answers to them.",
		Tools:       []string{"forms_create", "forms_submit"},
	},
}

// describeScope returns the description of a scope, or a generic one
// naming an unknown scope.
func describeScope(name string) scopeDescription {
	if d, ok := scopeInfo[name]; ok {
		return d
	}
	return scopeDescription{Title: name, Description: "Access named “" + name + "”."}
}

// consentPage is the data of the consent page.
type consentPage struct {
	ClientName   string   // the client's name; empty shows "An application"
	ClientID     string   // the client's ID
	RedirectURI  string   // where the user is sent afterwards
	RedirectHost string   // shown prominently; empty: derived from RedirectURI
	UserName     string   // the signed-in user's name
	UserEmail    string   // the signed-in user's email
	ResourceName string   // optional name of the resource
	Resource     string   // the resource URL
	Scopes       []string // requested scopes
	FormAction   string   // where the decision is posted
	RequestID    string   // hidden field request_id
	CSRFToken    string   // hidden field csrf_token
	// FormActionSources are extra CSP form-action sources, such as the
	// redirect URI's origin or custom scheme ("cursor:").
	FormActionSources []string
	// ClientHost is the host of a client_id URL, shown prominently for a
	// client known by its metadata document (CIMD §6.4); empty otherwise.
	ClientHost string
	// LocalRedirect warns that such a client is sent back to the user's
	// own device, where another program could be posing as it.
	LocalRedirect bool
}

// errorPage is the data of an error page.
type errorPage struct {
	Title, Message string
}

// pageFS holds the page templates.
//
//go:embed templates/pages.html
var pageFS embed.FS

// pageTemplates are the parsed page templates.
var pageTemplates = template.Must(template.ParseFS(pageFS, "templates/pages.html"))

// consentView is what the consent template renders.
type consentView struct {
	Title, Nonce                 string
	Client, ClientID, SignedInAs string
	ClientHost                   string
	LocalRedirect                bool
	RedirectHost, RedirectURI    string
	ResourceName, Resource       string
	Scopes                       []scopeView
	FormAction                   string
	RequestID, CSRFToken         string
}

// scopeView is one requested scope as rendered.
type scopeView struct {
	Title, Description, Tools string
}

// errorView is what the error template renders.
type errorView struct {
	Title, Nonce, Message string
}

// writeConsentPage renders the consent page.
func writeConsentPage(w http.ResponseWriter, p consentPage) {
	client := p.ClientName
	if client == "" {
		client = "An application"
	}
	host := p.RedirectHost
	if host == "" {
		host = redirectHost(p.RedirectURI)
	}
	v := consentView{
		Title:         "Authorize " + client,
		Nonce:         newNonce(),
		Client:        client,
		ClientID:      p.ClientID,
		ClientHost:    p.ClientHost,
		LocalRedirect: p.LocalRedirect,
		SignedInAs:    signedInAs(p.UserName, p.UserEmail),
		RedirectHost:  host,
		RedirectURI:   p.RedirectURI,
		ResourceName:  p.ResourceName,
		Resource:      p.Resource,
		FormAction:    p.FormAction,
		RequestID:     p.RequestID,
		CSRFToken:     p.CSRFToken,
	}
	for _, s := range p.Scopes {
		d := describeScope(s)
		v.Scopes = append(v.Scopes, scopeView{d.Title, d.Description, strings.Join(d.Tools, ", ")})
	}
	renderPage(w, http.StatusOK, "consent", v, v.Nonce, p.FormActionSources)
}

// writeErrorPage renders an error page with the given status.
func writeErrorPage(w http.ResponseWriter, status int, p errorPage) {
	v := errorView{Title: p.Title, Nonce: newNonce(), Message: p.Message}
	renderPage(w, status, "error", v, v.Nonce, nil)
}

// renderPage executes a template into a buffer and writes it with the
// security headers. formSources nil means no form may be submitted.
func renderPage(w http.ResponseWriter, status int, name string, data any, nonce string, formSources []string) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	formAction := "'none'"
	if name == "consent" {
		formAction = "'self'"
		for _, s := range formSources {
			if validCSPSource(s) {
				formAction += " " + s
			}
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+
		"'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// newNonce returns 16 random bytes in unpadded base64url, which CSP
// accepts and html/template leaves unescaped (unlike '+' and '=').
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validCSPSource reports whether s is safe to put in a CSP header:
// only letters, digits and : / . - [ ] *.
func validCSPSource(s string) bool {
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

// redirectHost is what the user is shown as the redirect destination:
// the host of an http(s) URI, else the scheme and host.
func redirectHost(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return uri
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host != "" {
			return u.Host
		}
	}
	if u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + ":"
}

// signedInAs names the user: "Name (email)", or whichever is known.
func signedInAs(name, email string) string {
	switch {
	case name != "" && email != "" && name != email:
		return name + " (" + email + ")"
	case name != "":
		return name
	default:
		return email
	}
}
