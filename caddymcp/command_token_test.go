package caddymcp

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func TestRevokeLegacyTokenCommand(t *testing.T) {
	s, ctx := migratedStore(t), context.Background()
	now := time.Now()
	if err := s.CreateLegacyToken(ctx, legacyTokenPrefix+"revoke-me-0123456789", &store.LegacyToken{ID: "lt1", UserID: "u1",
		Scope: "read", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := revokeLegacyToken(ctx, s, "lt1", &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "revoked lt1; every instance refuses it within") {
		t.Fatalf("stderr %q", stderr.String())
	}
	list, err := s.ListLegacyTokens(ctx, "u1")
	if err != nil || len(list) != 1 || list[0].RevokedAt.IsZero() {
		t.Fatalf("after revoke: %+v, %v", list, err)
	}
	// A second revocation finds no unrevoked token.
	if err := revokeLegacyToken(ctx, s, "lt1", &stderr); err == nil || !strings.Contains(err.Error(), `no unrevoked token with id "lt1"`) {
		t.Fatalf("revoking twice: %v", err)
	}
}
