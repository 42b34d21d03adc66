package oauth

import "testing"

func TestValidDNSName(t *testing.T) {
	for name, ok := range map[string]bool{
		"example.com": true, "a.example.com.": true, "*.example.com": true, "xn--caf-dma.example": true, "_svc.example": true,
		"": false, ".": false, "a..b": false, "-a.example": false, "a-.example": false, "a b": false, "*": false,
		"a.*.example": false, "ex@mple.com": false,
	} {
		if validDNSName(name) != ok {
			t.Errorf("validDNSName(%q) = %v", name, !ok)
		}
	}
}
