package login

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddymcp/caddymcp/caddymcp/internal/page"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Development sign-in: a provider with Dev set has no upstream. Its
// start page (/auth/login/{name}) is a form asking for an email address
// and a display name, and posting the form signs the browser in as that
// address, marked verified. The rest is what a provider's callback does:
// the user is recorded, the access policy applies, a session opens and
// the browser goes back to where the login started.
//
// The form is protected as a callback is: each rendering keeps a pending
// login server-side under a one-time token (the form's csrf_token), tied
// to the browser by the login-binding cookie, so that a form can be
// posted once, only from the browser it was shown to (login CSRF, RFC
// 6749 §10.12).

// DevName is the name of the development provider Dev returns.
const DevName = "dev"

// Bounds of the development form's fields.
const (
	// maxDevEmail is the longest address that fits in an SMTP path (RFC
	// 5321 §4.5.3.1.3: 256 octets with the angle brackets).
	maxDevEmail = 254
	// maxDevName bounds the display name, in characters.
	maxDevName = 100
)

// Dev returns the development sign-in provider: a form that signs in
// anyone, as any address. For development on a loopback host only.
func Dev() Provider {
	return Provider{Name: DevName, Label: "Development sign-in", Dev: true}
}

// devForm is what the development form holds: the values and their
// errors.
type devForm struct {
	email, name           string
	emailError, nameError string
}

// serveDev answers /auth/login/{name} of a development provider: GET
// shows the form, POST signs in.
func (s *Server) serveDev(w http.ResponseWriter, r *http.Request, p *provider) {
	if r.Method == http.MethodPost {
		s.serveDevSubmit(w, r, p)
		return
	}
	returnTo, ok := s.startReturn(w, r)
	if !ok {
		return
	}
	s.showDevForm(w, r, p, returnTo, http.StatusOK, devForm{})
}

// showDevForm keeps a pending login that comes back to returnTo and
// shows the form for it, with status.
func (s *Server) showDevForm(w http.ResponseWriter, r *http.Request, p *provider, returnTo string, status int, f devForm) {
	token, err := s.randomToken(tokenBytes)
	if err != nil {
		s.internalError(w, "starting a login", err)
		return
	}
	binding, err := s.binding(r)
	if err != nil {
		s.internalError(w, "starting a login", err)
		return
	}
	params, _ := json.Marshal(pendingLogin{Provider: p.Name, ReturnTo: returnTo}) // cannot fail
	now := s.cfg.Now()
	err = s.cfg.Store.CreateAuthRequest(r.Context(), token, &store.AuthRequest{
		ClientID:  clientIDPrefix + p.Name,
		CSRFHash:  store.Hash(binding),
		Params:    params,
		CreatedAt: now,
		ExpiresAt: now.Add(pendingLifetime),
	})
	if err != nil {
		s.internalError(w, "saving a pending login", err)
		return
	}
	s.setCookie(w, r, s.bindingCookieName(r), binding, int(pendingLifetime.Seconds()))
	nonce, err := page.NewNonce(s.cfg.Random)
	if err != nil {
		nonce = "unavailable" // the page is still usable, unstyled
	}
	err = page.Write(w, status, page.Page{
		Name:   page.DevSignInName,
		Title:  p.Label,
		Nonce:  nonce,
		PostTo: []string{page.Self},
		Data: page.DevSignIn{
			FormAction: ProviderLoginPrefix + p.Name,
			CSRFToken:  token,
			Email:      f.email,
			Name:       f.name,
			EmailError: f.emailError,
			NameError:  f.nameError,
		},
	})
	if err != nil {
		s.log.Error("rendering a page failed", "error", err.Error())
	}
}

// serveDevSubmit answers the form's POST: it checks the one-time token
// and the browser, then the fields (the form again, 400, when one is
// wrong), then signs in as a successful callback does.
func (s *Server) serveDevSubmit(w http.ResponseWriter, r *http.Request, p *provider) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
	if err := r.ParseForm(); err != nil {
		s.page(w, http.StatusBadRequest, "Invalid request", "The form could not be read. Open the sign-in page again.")
		return
	}
	pl, err := s.devPending(r, p)
	if err != nil {
		s.refuseCallback(w, p, err)
		return
	}
	f := checkDevForm(r.PostForm.Get("email"), r.PostForm.Get("name"))
	if f.emailError != "" || f.nameError != "" {
		s.showDevForm(w, r, p, pl.ReturnTo, http.StatusBadRequest, f)
		return
	}
	email := strings.ToLower(f.email)
	user, err := s.admit(r.Context(), p, profile{Subject: email, Email: email, EmailVerified: true, Name: f.name})
	if err != nil {
		s.refuseCallback(w, p, err)
		return
	}
	s.completeLogin(w, r, p, user, pl.ReturnTo)
}

// devPending consumes the pending login the form's csrf_token names and
// checks that it belongs to p and to this browser. Every error is a
// *callbackError: the form is then refused, and nothing changes.
func (s *Server) devPending(r *http.Request, p *provider) (*pendingLogin, error) {
	token := r.PostForm.Get("csrf_token")
	if !validToken(token) {
		return nil, refusedForm(http.StatusBadRequest, "missing_csrf_token", "Sign-in form expired",
			"This sign-in form is incomplete or has expired. Open the sign-in page again.")
	}
	a, err := s.cfg.Store.ConsumeAuthRequest(r.Context(), token, s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		return nil, refusedForm(http.StatusBadRequest, "replayed_csrf_token", "Sign-in form expired",
			"This sign-in form was already sent. Open the sign-in page again.")
	case errors.Is(err, store.ErrNotFound):
		return nil, refusedForm(http.StatusBadRequest, "unknown_csrf_token", "Sign-in form expired",
			"This sign-in form has expired or was not issued by this server. Open the sign-in page again.")
	case err != nil:
		return nil, internalFailure("reading a pending login", err)
	}
	var pl pendingLogin
	if a.ClientID != clientIDPrefix+p.Name || json.Unmarshal(a.Params, &pl) != nil || pl.Provider != p.Name {
		return nil, refusedForm(http.StatusBadRequest, "provider_mismatch", "Sign-in failed",
			"This form does not belong to this sign-in page. Open the sign-in page again.")
	}
	if c, err := r.Cookie(s.bindingCookieName(r)); err != nil || !store.SecretMatches(a.CSRFHash, c.Value) {
		return nil, refusedForm(http.StatusForbidden, "browser_mismatch", "Sign-in refused",
			"This form was not issued to this browser, or its cookie was blocked. Open the sign-in page again in this browser.")
	}
	return &pl, nil
}

// refusedForm is a refused development form: a callbackError whose page
// leads back to the form.
func refusedForm(status int, reason, title, message string) *callbackError {
	e := refusal(status, reason, title, message)
	e.link = &page.Link{Label: "Open the sign-in page", URL: ProviderLoginPrefix + DevName}
	return e
}

// checkDevForm trims the fields and says what is wrong with each: the
// email must be an addr-spec with a domain (local@example.com), at most
// maxDevEmail bytes; the name at most maxDevName characters; neither
// may be empty or hold control characters. The values are kept as typed
// (trimmed, valid UTF-8) for the form to show again.
func checkDevForm(email, name string) devForm {
	f := devForm{
		email: strings.TrimSpace(strings.ToValidUTF8(email, "\uFFFD")),
		name:  strings.TrimSpace(strings.ToValidUTF8(name, "\uFFFD")),
	}
	switch {
	case f.email == "":
		f.emailError = "Enter an email address."
	case len(f.email) > maxDevEmail:
		f.emailError = "This email address is too long (at most 254 characters)."
	case hasControl(f.email) || !utf8.ValidString(email):
		f.emailError = "This email address holds characters that are not allowed."
	case !validAddrSpec(f.email):
		f.emailError = "Enter an email address such as ada@example.com."
	}
	switch {
	case f.name == "":
		f.nameError = "Enter a display name."
	case utf8.RuneCountInString(f.name) > maxDevName:
		f.nameError = "This name is too long (at most 100 characters)."
	case hasControl(f.name) || !utf8.ValidString(name):
		f.nameError = "This name holds characters that are not allowed."
	}
	return f
}

// hasControl reports whether v holds a control character (C0, DEL, C1)
// or a Unicode format character such as a bidirectional override.
func hasControl(v string) bool {
	return strings.IndexFunc(v, func(c rune) bool { return unicode.IsControl(c) || unicode.Is(unicode.Cf, c) }) >= 0
}

// validAddrSpec reports whether v is exactly an RFC 5322 addr-spec,
// local@domain, with no display name, comment or angle brackets, whose
// domain is a DNS name (letters, digits, hyphens and dots; no address
// literal).
func validAddrSpec(v string) bool {
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v {
		return false
	}
	at := strings.LastIndexByte(v, '@')
	if at <= 0 {
		return false
	}
	for _, l := range strings.Split(strings.ToLower(v[at+1:]), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
