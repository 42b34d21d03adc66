package oauth

import "testing"

func TestMatchRedirectURI(t *testing.T) {
	registered := []string{"http://127.0.0.1/callback", "http://localhost:8080/cb?x=1", "https://app.example.com/cb"}
	for _, tt := range []struct {
		requested string
		want      bool
	}{
		{"https://app.example.com/cb", true},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:5555/callback", true},
		{"http://localhost:9/cb?x=1", true},
		// Security finding 9: the port-tolerant loopback branch must not
		// let a fragment or user information through.
		{"http://127.0.0.1:5555/callback#frag", false},
		{"http://127.0.0.1/callback#", false},
		{"http://localhost:9/cb?x=1#frag", false},
		{"http://user@127.0.0.1:5555/callback", false},
		{"http://user:pw@127.0.0.1/callback", false},
		{"https://app.example.com/cb#frag", false},
		{"http://127.0.0.1:5555/other", false},
	} {
		t.Run(tt.requested, func(t *testing.T) {
			if got := matchRedirectURI(registered, tt.requested); got != tt.want {
				t.Fatalf("matchRedirectURI(%q) = %v, want %v", tt.requested, got, tt.want)
			}
		})
	}
}
