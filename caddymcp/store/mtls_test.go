package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// The certificate thumbprints of the tests (RFC 8705 §3.1, 43 base64url
// characters).
const (
	certA = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	certB = "A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0"
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

// TestCertificateBoundRefreshTokens checks the certificate binding of
// refresh tokens (RFC 8705 §4): stored, seen by the rotation callback,
// kept on the rotated record for replays, and a refusal inside the
// rotation (another certificate) leaves the token usable.
func TestCertificateBoundRefreshTokens(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		u := newUser(t, s)
		g := newGrant(t, s, u, "c1")
		first := "rt-" + randID(t)
		must(t, s.CreateRefreshToken(ctx(), first, &store.RefreshToken{GrantID: g.ID, ClientID: "c1", UserID: u.ID,
			Scope: g.Scope, Resource: g.Resource, CertThumbprint: certA, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		got, err := s.GetRefreshToken(ctx(), first, t0)
		must(t, err)
		if got.CertThumbprint != certA || got.DPoPJKT != "" {
			t.Fatalf("GetRefreshToken = %+v, want bound to %s", got, certA)
		}

		rotate := func(next, thumb string) func(*store.RefreshToken, *store.Grant) (*store.Issue, error) {
			return func(old *store.RefreshToken, _ *store.Grant) (*store.Issue, error) {
				return &store.Issue{Refresh: next, Sealed: []byte("sealed"),
					Refreshed: &store.RefreshToken{Scope: old.Scope, Resource: old.Resource, CertThumbprint: thumb,
						CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
					Access: &store.AccessToken{JTI: "j-" + randID(t), ClientID: "c1", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}}, nil
			}
		}
		otherCert := errors.New("another certificate")
		_, err = s.RefreshGrant(ctx(), first, t0.Add(time.Second), func(old *store.RefreshToken, _ *store.Grant) (*store.Issue, error) {
			if old.CertThumbprint != certA {
				t.Errorf("callback CertThumbprint = %q", old.CertThumbprint)
			}
			return nil, otherCert
		})
		if !errors.Is(err, otherCert) {
			t.Fatalf("RefreshGrant = %v, want the callback's error", err)
		}
		second := "rt-" + randID(t)
		prev, err := s.RefreshGrant(ctx(), first, t0.Add(2*time.Second), rotate(second, certA))
		must(t, err)
		if prev.CertThumbprint != certA {
			t.Fatalf("rotated token CertThumbprint = %q", prev.CertThumbprint)
		}
		next, err := s.GetRefreshToken(ctx(), second, t0.Add(2*time.Second))
		must(t, err)
		if next.CertThumbprint != certA {
			t.Fatalf("successor CertThumbprint = %q, want the binding carried over", next.CertThumbprint)
		}
		replayed, err := s.RefreshGrant(ctx(), first, t0.Add(3*time.Second), rotate("rt-"+randID(t), certB))
		wantErr(t, err, store.ErrAlreadyUsed)
		if replayed.CertThumbprint != certA {
			t.Fatalf("replayed CertThumbprint = %q", replayed.CertThumbprint)
		}

		// An unbound token reads back unbound, and may be bound at its
		// rotation.
		g2 := newGrant(t, s, u, "c1")
		plain := "rt-" + randID(t)
		must(t, s.CreateRefreshToken(ctx(), plain, &store.RefreshToken{GrantID: g2.ID, ClientID: "c1", UserID: u.ID,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		if p, err := s.GetRefreshToken(ctx(), plain, t0); err != nil || p.CertThumbprint != "" {
			t.Fatalf("unbound token = %+v, %v", p, err)
		}
		bound := "rt-" + randID(t)
		_, err = s.RefreshGrant(ctx(), plain, t0.Add(time.Second), rotate(bound, certB))
		must(t, err)
		if b, err := s.GetRefreshToken(ctx(), bound, t0.Add(time.Second)); err != nil || b.CertThumbprint != certB {
			t.Fatalf("bound successor = %+v, %v", b, err)
		}
	})
}
