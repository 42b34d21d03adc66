package store_test

import (
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// TestMTLSClients stores the mutual-TLS metadata of clients (RFC 8705
// §2.1.2, §2.2.2, §3.4) and reads it back, and clients without it read
// back without it.
func TestMTLSClients(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		jwks := []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"x","y":"y","x5c":["MIIB"]}]}`)
		clients := []*store.Client{
			{ID: "pki-" + randID(t), TokenEndpointAuthMethod: "tls_client_auth",
				TLSSubject:             store.CertificateSubject{Kind: "subject_dn", Value: "CN=agent,O=Example\\, Inc.,C=DE"},
				CertificateBoundTokens: true},
			{ID: "san-" + randID(t), TokenEndpointAuthMethod: "tls_client_auth",
				TLSSubject: store.CertificateSubject{Kind: "san_ip", Value: "2001:db8::1"}},
			{ID: "self-" + randID(t), TokenEndpointAuthMethod: "self_signed_tls_client_auth", JWKS: jwks},
			{ID: "plain-" + randID(t), TokenEndpointAuthMethod: "none"},
		}
		for _, c := range clients {
			c.CreatedAt, c.UpdatedAt = t0, t0
			must(t, s.CreateClient(ctx(), c))
			got, err := s.GetClient(ctx(), c.ID)
			must(t, err)
			if got.TLSSubject != c.TLSSubject || string(got.JWKS) != string(c.JWKS) ||
				got.CertificateBoundTokens != c.CertificateBoundTokens || got.TokenEndpointAuthMethod != c.TokenEndpointAuthMethod {
				t.Errorf("client %s read back as %+v, want %+v", c.ID, got, c)
			}
			if c.JWKS == nil && got.JWKS != nil {
				t.Errorf("client %s without a JWK Set reads back with %q", c.ID, got.JWKS)
			}
		}
		list, err := s.ListClients(ctx(), "", 10)
		must(t, err)
		found := 0
		for _, c := range list {
			if c.ID == clients[0].ID {
				found++
				if c.TLSSubject != clients[0].TLSSubject || !c.CertificateBoundTokens {
					t.Errorf("listed client = %+v", c)
				}
			}
		}
		if found != 1 {
			t.Fatalf("ListClients lists the client %d times", found)
		}
	})
}
