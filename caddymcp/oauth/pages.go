package oauth

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddymcp/caddymcp/caddymcp/internal/page"
)

// ScopeTool is a tool that a scope unlocks, as the consent page names
// it (Config.ScopeTools).
type ScopeTool struct {
	// Name is the tool's MCP name, e.g. "bookings_list".
	Name string
	// Title is its human-readable title, e.g. "List bookings"; empty
	// shows the name alone.
	Title string
}

// scopeDescription explains a scope to the person approving it.
type scopeDescription struct {
	Title       string
	Description string
	// Tools are the tools the scope unlocked when this text was written:
	// shown only for a scope Config.ScopeTools has no tools for.
	Tools []string
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
	// ScopeTools are the tools each scope unlocks (Config.ScopeTools).
	ScopeTools map[string][]ScopeTool
	// AccountURL links to the user's applications (Config.AccountURL).
	AccountURL string
}

// DescribeScopes describes scopes as the consent page does: what each
// allows, and the tools it unlocks — those of tools (Config.ScopeTools)
// for the scope, else the built-in list. The account page describes the
// scopes of a grant with it, so that both pages say the same.
func DescribeScopes(scopes []string, tools map[string][]ScopeTool) []page.Scope {
	out := make([]page.Scope, 0, len(scopes))
	for _, s := range scopes {
		d := describeScope(s)
		out = append(out, page.Scope{Title: d.Title, Description: d.Description, Tools: unlocks(tools[s], d.Tools)})
	}
	return out
}

// RedirectHost is what a person is shown as the place an application is
// sent back to: the host of an http(s) redirect URI, else its scheme
// and host.
func RedirectHost(uri string) string { return redirectHost(uri) }

// unlocks is the list of tools a scope unlocks as the consent page shows
// it: "Title (name)" for each tool the registry gates behind the scope,
// else the built-in names.
func unlocks(registered []ScopeTool, builtIn []string) string {
	if len(registered) == 0 {
		return strings.Join(builtIn, ", ")
	}
	names := make([]string, len(registered))
	for i, t := range registered {
		names[i] = t.Name
		if t.Title != "" {
			names[i] = t.Title + " (" + t.Name + ")"
		}
	}
	return strings.Join(names, ", ")
}

// errorPage is the data of an error page.
type errorPage struct {
	Title, Message string
}

// writeConsentPage renders the consent page. Its form posts to this
// server, which answers with a redirect to the client: the redirect
// URI's origin is allowed too (FormActionSources), since browsers such
// as Chrome check form-action (CSP3 §6.4.1) against the redirects that
// follow a submission as well.
func writeConsentPage(w http.ResponseWriter, p consentPage) {
	client := p.ClientName
	if client == "" {
		client = "An application"
	}
	redirect := shownHost{ascii: p.RedirectHost}
	if p.RedirectHost == "" {
		redirect = redirectHostShown(p.RedirectURI)
	}
	var clientHost shownHost
	if p.ClientHost != "" {
		clientHost = showHost(p.ClientHost)
	}
	c := page.Consent{
		Client:              client,
		ClientID:            asciiHostURI(p.ClientID),
		ClientHost:          clientHost.ascii,
		ClientHostUnicode:   clientHost.unicode,
		RedirectHostUnicode: redirect.unicode,
		MixedScript:         clientHost.mixed || redirect.mixed,
		LocalRedirect:       p.LocalRedirect,
		SignedInAs:          page.SignedInAs(p.UserName, p.UserEmail),
		RedirectHost:        redirect.ascii,
		RedirectURI:         asciiHostURI(p.RedirectURI),
		ResourceName:        p.ResourceName,
		Resource:            p.Resource,
		FormAction:          p.FormAction,
		RequestID:           p.RequestID,
		CSRFToken:           p.CSRFToken,
		AccountURL:          p.AccountURL,
	}
	if len(p.Scopes) > 0 {
		c.Scopes = DescribeScopes(p.Scopes, p.ScopeTools)
	}
	_ = page.Write(w, http.StatusOK, page.Page{
		Name:   page.ConsentName,
		Title:  "Authorize " + client,
		Nonce:  newNonce(),
		PostTo: append([]string{page.Self}, p.FormActionSources...),
		Data:   c,
	})
}

// writeErrorPage renders an error page with the given status. It has no
// form, so nothing may be posted from it.
func writeErrorPage(w http.ResponseWriter, status int, p errorPage) {
	_ = page.Write(w, status, page.Page{
		Name:  page.MessageName,
		Title: p.Title,
		Nonce: newNonce(),
		Data:  page.Message{Text: p.Message},
	})
}

// newNonce returns a fresh style nonce. crypto/rand never fails; were
// it to, the empty nonce would only leave the page unstyled.
func newNonce() string {
	n, _ := page.NewNonce(rand.Reader)
	return n
}

// redirectHost is what the user is shown as the redirect destination:
// the host of an http(s) URI, else the scheme and host; hosts in ASCII
// form (see showHost).
func redirectHost(uri string) string { return redirectHostShown(uri).ascii }

// redirectHostShown is redirectHost with the Unicode form of the host
// and whether it mixes scripts.
func redirectHostShown(uri string) shownHost {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return shownHost{ascii: uri}
	}
	sh := showHost(u.Host)
	switch {
	case u.Host == "":
		return shownHost{ascii: u.Scheme + ":"}
	case strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https"):
		return sh
	}
	prefix := u.Scheme + "://"
	sh.ascii = prefix + sh.ascii
	if sh.unicode != "" {
		sh.unicode = prefix + sh.unicode
	}
	return sh
}
