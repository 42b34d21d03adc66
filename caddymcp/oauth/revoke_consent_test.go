package oauth_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/caddymcp/caddymcp/caddymcp/oauth"
)

// TestRevokedGrantAsksAgain checks what a user's revocation of an
// application (the account page, mcp-grants revoke) leaves behind: the
// grant keeps the redirect URI its code went to, its tokens stop
// working, and the client's next authorization shows the consent page
// again instead of being approved silently while the user is signed in.
func TestRevokedGrantAsksAgain(t *testing.T) {
	f := newFlow(t)
	c := f.register("none", nil)
	tok := f.tokens(c, nil)
	ctx := context.Background()

	grants, err := f.store.ListUserGrants(ctx, alice.ID, f.clock.Now())
	if err != nil || len(grants) != 1 {
		t.Fatalf("ListUserGrants = %+v, %v", grants, err)
	}
	g := grants[0]
	if g.RedirectURI != c.RedirectURI || g.ClientName != "Test App" || g.ClientID != c.ID {
		t.Errorf("grant = %+v, want redirect %s and client Test App", g, c.RedirectURI)
	}

	// Remembered: the next authorization is approved without a page.
	_, challenge := newPKCE(t)
	if w := f.get(oauth.AuthorizePath, authQuery(c, challenge, nil)); w.Code != http.StatusFound {
		t.Fatalf("before revoking: status %d, want a silent redirect", w.Code)
	}

	if _, err := f.store.RevokeUserGrant(ctx, alice.ID, g.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if f.active(tok.AccessToken) {
		t.Error("the revoked grant's access token is still active")
	}
	wantOAuthError(t, f.refresh(c, tok.RefreshToken, nil), http.StatusBadRequest, "invalid_grant")

	// Forgotten: the user is asked again.
	w := f.get(oauth.AuthorizePath, authQuery(c, challenge, nil))
	consentForm(t, w)
}
