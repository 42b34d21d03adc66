package dpop

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
)

func TestNormalizeHTU(t *testing.T) {
	same := []struct{ a, b string }{
		{"https://mcp.example.com/oauth/token", "HTTPS://MCP.Example.COM/oauth/token"},
		{"https://mcp.example.com/oauth/token", "https://mcp.example.com:443/oauth/token"},
		{"http://127.0.0.1/mcp", "http://127.0.0.1:80/mcp"},
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp?session=1#frag"},
		{"https://mcp.example.com/", "https://mcp.example.com"},
		{"https://mcp.example.com/a~b", "https://mcp.example.com/a%7Eb"},
		{"https://mcp.example.com/a%2Fb", "https://mcp.example.com/a%2fb"},
		{"https://mcp.example.com/mcp", "https://mcp.example.com/x/../mcp"},
		{"https://mcp.example.com/mcp", "https://mcp.example.com/./mcp"},
		{"https://[::1]:8443/mcp", "https://[::1]:8443/mcp"},
	}
	for _, tt := range same {
		a, ok1 := NormalizeHTU(tt.a)
		b, ok2 := NormalizeHTU(tt.b)
		if !ok1 || !ok2 || a != b {
			t.Errorf("normalizeHTU(%q) = %q, NormalizeHTU(%q) = %q; want equal", tt.a, a, tt.b, b)
		}
	}
	differ := []struct{ a, b string }{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp/"},
		{"https://mcp.example.com/mcp", "http://mcp.example.com/mcp"},
		{"https://mcp.example.com/mcp", "https://mcp.example.com:8443/mcp"},
		{"https://mcp.example.com/mcp", "https://other.example.com/mcp"},
		{"https://mcp.example.com/MCP", "https://mcp.example.com/mcp"},
	}
	for _, tt := range differ {
		a, _ := NormalizeHTU(tt.a)
		b, _ := NormalizeHTU(tt.b)
		if a == b {
			t.Errorf("%q and %q normalise to the same %q", tt.a, tt.b, a)
		}
	}
	for _, bad := range []string{"", "http://:", "https://:443/x", "/oauth/token", "mcp.example.com/mcp", "ftp://mcp.example.com/x",
		"https://user:pw@mcp.example.com/mcp", "mailto:x@example.com", "https://%zz/"} {
		if got, ok := NormalizeHTU(bad); ok {
			t.Errorf("normalizeHTU(%q) = %q, want it refused", bad, got)
		}
	}
}

func TestReplayCache(t *testing.T) {
	c := NewReplayCache()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	p := &Proof{HTU: "https://mcp.example.com/mcp", JKT: "k1", JTI: "j1"}
	if fresh, err := c.FirstUse(p, now); !fresh || err != nil {
		t.Fatalf("first use = %v, %v", fresh, err)
	}
	// The same proof is refused for as long as it could be accepted:
	// its iat may be up to ProofLeeway ahead of the first use, and it
	// is accepted until ProofMaxAge + ProofLeeway after iat.
	longest := ProofMaxAge + 2*ProofLeeway
	for _, after := range []time.Duration{0, time.Second, ProofMaxAge, longest} {
		if fresh, _ := c.FirstUse(p, now.Add(after)); fresh {
			t.Fatalf("the proof is accepted again %v later", after)
		}
	}
	// A proof differs by its target URI, key or jti.
	for _, q := range []*Proof{
		{HTU: "https://mcp.example.com/other", JKT: "k1", JTI: "j1"},
		{HTU: p.HTU, JKT: "k2", JTI: "j1"},
		{HTU: p.HTU, JKT: "k1", JTI: "j2"},
	} {
		if fresh, _ := c.FirstUse(q, now.Add(longest)); !fresh {
			t.Errorf("%+v is taken for a replay of %+v", q, p)
		}
	}
	// Two windows later everything is forgotten, and memory with it.
	if fresh, _ := c.FirstUse(p, now.Add(3*c.window)); !fresh {
		t.Error("a proof is remembered after its window")
	}
	if n := len(c.cur) + len(c.prev); n != 1 {
		t.Errorf("%d proofs remembered, want 1", n)
	}

	// Full: new proofs are refused, never old ones forgotten.
	small := &ReplayCache{window: c.window, capacity: 3}
	for i := range 3 {
		if fresh, err := small.FirstUse(&Proof{JTI: fmt.Sprint(i)}, now); !fresh || err != nil {
			t.Fatalf("proof %d: %v, %v", i, fresh, err)
		}
	}
	if _, err := small.FirstUse(&Proof{JTI: "x"}, now); !errors.Is(err, ErrReplayFull) {
		t.Fatalf("over capacity: %v, want ErrReplayFull", err)
	}
	if fresh, _ := small.FirstUse(&Proof{JTI: "0"}, now); fresh {
		t.Fatal("a full cache forgot a proof")
	}
	// The next generation has room again, and still knows the last one.
	if fresh, err := small.FirstUse(&Proof{JTI: "x"}, now.Add(small.window)); !fresh || err != nil {
		t.Fatalf("next window: %v, %v", fresh, err)
	}
	if fresh, _ := small.FirstUse(&Proof{JTI: "1"}, now.Add(small.window)); fresh {
		t.Fatal("the previous window was forgotten")
	}
}

func TestDPoPNonces(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	const issuer = "https://mcp.example.com"
	start := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC) // a slot boundary
	n := Nonce(secret, issuer, Slot(start))
	if len(n) != 32 || !web.ValidScopeToken(n) {
		t.Fatalf("nonce %q is not 32 NQCHARs (RFC 9449 §8.1)", n)
	}
	for _, at := range []time.Duration{0, NonceSlot - time.Nanosecond, NonceSlot, 2*NonceSlot - time.Nanosecond} {
		if !ValidNonce(secret, issuer, n, start.Add(at)) {
			t.Errorf("the nonce is refused %v after it was made", at)
		}
	}
	if ValidNonce(secret, issuer, n, start.Add(2*NonceSlot)) {
		t.Error("the nonce is accepted two slots later")
	}
	if ValidNonce(secret, issuer, n, start.Add(-time.Nanosecond)) {
		t.Error("the nonce is accepted before its slot")
	}
	if next := Nonce(secret, issuer, Slot(start)+1); next == n {
		t.Error("two slots share a nonce")
	}
	if ValidNonce(bytes.Repeat([]byte{8}, 32), issuer, n, start) {
		t.Error("a nonce is accepted under another secret")
	}
	if ValidNonce(secret, "https://other.example.com", n, start) {
		t.Error("a nonce is accepted for another issuer")
	}
	if ValidNonce(secret, issuer, "", start) {
		t.Error("an empty nonce is accepted")
	}
}

// FuzzCheckDPoPProof feeds arbitrary proofs and URLs to the checks: they
// must never panic, and whatever passes must have the claims §4.2 needs.
func FuzzCheckDPoPProof(f *testing.F) {
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIn19.eyJqdGkiOiJ4In0.c2ln", "POST", "https://h.example/oauth/token")
	f.Add("a.b.c", "GET", "https://[::1]:443/./../x/%7e")
	f.Add("e30.e30.", "POST", "http://h/%zz")
	now := time.Unix(1770000000, 0)
	f.Fuzz(func(t *testing.T, proof, method, htu string) {
		p, err := CheckProof([]string{proof}, method, htu, "token", now)
		if err == nil && (p.JKT == "" || p.JTI == "" || p.HTU == "") {
			t.Fatalf("accepted %q as %+v", proof, p)
		}
		if n, ok := NormalizeHTU(htu); ok {
			if again, ok := NormalizeHTU(n); !ok || again != n {
				t.Fatalf("normalizeHTU(%q) = %q, but normalizing that gives %q", htu, n, again)
			}
		}
	})
}
