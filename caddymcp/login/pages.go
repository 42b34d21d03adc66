package login

import (
	"bytes"
	"html/template"
	"net/http"
)

// providerLink is one button of the provider picker.
type providerLink struct {
	Label, URL string
}

// pageData is what the page template renders.
type pageData struct {
	Title, Message string
	Providers      []providerLink
	Nonce          string
}

// pageTemplate is the one page of the login server: a message, and the
// provider buttons when there are some.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style nonce="{{.Nonce}}">
:root { --page: #f3f4f6; --card: #ffffff; --text: #1b1f24; --line: #6b7280; --primary: #0b57d0; --on-primary: #ffffff; }
@media (prefers-color-scheme: dark) {
  :root { --page: #0f1115; --card: #1a1d23; --text: #e8eaed; --line: #8b949e; --primary: #8ab4f8; --on-primary: #0f1115; }
}
body { margin: 0; background: var(--page); color: var(--text); font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 28rem; margin: 2rem auto; padding: 1.5rem; background: var(--card); border: 1px solid var(--line); border-radius: 12px; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
p { margin: 0 0 1rem; overflow-wrap: anywhere; }
ul { list-style: none; margin: 0; padding: 0; }
li { margin: 0 0 .75rem; }
a.button { display: block; padding: .75rem 1rem; border-radius: 8px; text-align: center; text-decoration: none; font-weight: 600; background: var(--primary); color: var(--on-primary); }
a.button:focus-visible { outline: 3px solid var(--text); outline-offset: 2px; }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Providers}}
<ul>
{{- range .Providers}}
<li><a class="button" href="{{.URL}}">Sign in with {{.Label}}</a></li>
{{- end}}
</ul>
{{- end}}
</main>
</body>
</html>
`))

// page renders a message page with the given status.
func (s *Server) page(w http.ResponseWriter, status int, title, message string) {
	s.render(w, status, pageData{Title: title, Message: message})
}

// render executes the page template and writes it with the security
// headers: nothing may frame it, load from elsewhere or post elsewhere.
func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	nonce, err := s.randomToken(16)
	if err != nil {
		nonce = "unavailable" // the page is still readable, unstyled
	}
	d.Nonce = nonce
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		s.log.Error("rendering a page failed", "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+
		"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
