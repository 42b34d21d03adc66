package login

import (
	"net/http"

	"github.com/caddymcp/caddymcp/caddymcp/internal/page"
)

// page renders a message page with the given status.
func (s *Server) page(w http.ResponseWriter, status int, title, message string) {
	s.render(w, status, title, page.Message{Text: message})
}

// render writes a message page — a sentence, and the provider buttons
// when there are some — with the security headers of every page.
// Nothing may frame it or load from elsewhere, and forms may post only
// to this site.
func (s *Server) render(w http.ResponseWriter, status int, title string, m page.Message) {
	nonce, err := page.NewNonce(s.cfg.Random)
	if err != nil {
		nonce = "unavailable" // the page is still readable, unstyled
	}
	err = page.Write(w, status, page.Page{
		Name:   page.MessageName,
		Title:  title,
		Nonce:  nonce,
		PostTo: []string{page.Self},
		Data:   m,
	})
	if err != nil {
		s.log.Error("rendering a page failed", "error", err.Error())
	}
}
