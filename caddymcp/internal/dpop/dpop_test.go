package dpop

import (
	"bytes"
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
	// Seen looks and records nothing.
	for range 2 {
		if c.Seen(p, now) {
			t.Fatal("an unrecorded proof is seen")
		}
	}
	if fresh := c.FirstUse(p, now); !fresh {
		t.Fatal("first use refused")
	}
	// The same proof is refused for as long as it could be accepted:
	// its iat may be up to ProofLeeway ahead of the first use, and it
	// is accepted until ProofMaxAge + ProofLeeway after iat.
	longest := ProofMaxAge + 2*ProofLeeway
	for _, after := range []time.Duration{0, time.Second, ProofMaxAge, longest} {
		if !c.Seen(p, now.Add(after)) {
			t.Fatalf("the proof is not seen %v later", after)
		}
		if fresh := c.FirstUse(p, now.Add(after)); fresh {
			t.Fatalf("the proof is accepted again %v later", after)
		}
	}
	// A proof differs by its target URI, key or jti.
	for _, q := range []*Proof{
		{HTU: "https://mcp.example.com/other", JKT: "k1", JTI: "j1"},
		{HTU: p.HTU, JKT: "k2", JTI: "j1"},
		{HTU: p.HTU, JKT: "k1", JTI: "j2"},
	} {
		if fresh := c.FirstUse(q, now.Add(longest)); !fresh {
			t.Errorf("%+v is taken for a replay of %+v", q, p)
		}
	}
	// Two windows later everything is forgotten, and memory with it.
	if fresh := c.FirstUse(p, now.Add(3*c.window)); !fresh {
		t.Error("a proof is remembered after its window")
	}
	if n := len(c.seen); n != 1 || len(c.order)-c.head != 1 {
		t.Errorf("%d proofs remembered (%d queued), want 1", n, len(c.order)-c.head)
	}
}

// TestReplayCacheFullEvictsOldest: a full cache forgets its oldest proofs
// rather than refuse new ones, so a flood delays no request, and the
// newest proofs are still caught as replays.
func TestReplayCacheFullEvictsOldest(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	const capacity = 3
	c := &ReplayCache{window: ProofMaxAge + 2*ProofLeeway, capacity: capacity}
	proof := func(i int) *Proof {
		return &Proof{HTU: "https://mcp.example.com/oauth/token", JKT: "k", JTI: fmt.Sprint(i)}
	}
	const n = 10
	for i := range n {
		if fresh := c.FirstUse(proof(i), now.Add(time.Duration(i)*time.Millisecond)); !fresh {
			t.Fatalf("proof %d refused: the full cache did not make room", i)
		}
		if len(c.seen) > capacity || len(c.order)-c.head > capacity {
			t.Fatalf("after proof %d the cache holds %d (%d queued), over its capacity %d", i, len(c.seen), len(c.order)-c.head, capacity)
		}
	}
	for i := n - capacity; i < n; i++ {
		if !c.Seen(proof(i), now) || c.FirstUse(proof(i), now) {
			t.Errorf("the recent proof %d is not caught as a replay", i)
		}
	}
	if c.Seen(proof(0), now) {
		t.Error("the oldest proof was not the one forgotten")
	}

	// The queue stays within a few times the capacity however many pass.
	big := &ReplayCache{window: ProofMaxAge + 2*ProofLeeway, capacity: 2000}
	for i := range 50000 {
		big.FirstUse(proof(i), now)
	}
	if len(big.seen) != 2000 || len(big.order)-big.head != 2000 || cap(big.order) > 3*2000+1024 {
		t.Errorf("holds %d, queue %d of capacity %d", len(big.seen), len(big.order)-big.head, cap(big.order))
	}
	for i := 50000 - 2000; i < 50000; i++ {
		if !big.Seen(proof(i), now) {
			t.Fatalf("the recent proof %d was forgotten", i)
		}
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
