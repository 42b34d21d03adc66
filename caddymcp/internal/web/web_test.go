package web

import "testing"

func TestIsBase64URL(t *testing.T) {
	for s, want := range map[string]bool{
		"":         true,
		"AZaz09-_": true,
		"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM": true,
		"a+b":   false, // standard base64, not base64url
		"a/b":   false,
		"abc=":  false, // padding
		"a b":   false,
		"a.b":   false,
		"a~b":   false,
		"é":     false,
		"a\x00": false,
	} {
		if got := IsBase64URL(s); got != want {
			t.Errorf("IsBase64URL(%q) = %v, want %v", s, got, want)
		}
	}
}
