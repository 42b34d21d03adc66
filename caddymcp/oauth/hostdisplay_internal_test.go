package oauth

import "testing"

// Security finding 4: hosts are shown in ASCII form, with the Unicode
// form beside only when single-script, and mixed scripts are flagged.
func TestShowHost(t *testing.T) {
	for _, tt := range []struct {
		in, ascii, unicode string
		mixed              bool
	}{
		{"app.example.com", "app.example.com", "", false},
		{"App.Example.com:8443", "app.example.com:8443", "", false},
		{"127.0.0.1:5555", "127.0.0.1:5555", "", false},
		{"[::1]:5555", "[::1]:5555", "", false},
		// Whole-script Cyrillic "apple": ASCII form first, Unicode beside.
		{"аррӏе.com", "xn--80ak6aa92e.com", "аррӏе.com", false},
		{"xn--80ak6aa92e.com", "xn--80ak6aa92e.com", "аррӏе.com", false},
		// One Cyrillic letter among Latin ones: no Unicode form, a warning.
		{"clаude.ai", "xn--clude-5ve.ai", "", true},
		{"bücher.example", "xn--bcher-kva.example", "bücher.example", false},
		// Japanese mixes Han, Hiragana and Katakana legitimately.
		{"例え.jp", "xn--r8jz45g.jp", "例え.jp", false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got := showHost(tt.in)
			if got.ascii != tt.ascii || got.unicode != tt.unicode || got.mixed != tt.mixed {
				t.Fatalf("showHost(%q) = %+v, want {%s %s %v}", tt.in, got, tt.ascii, tt.unicode, tt.mixed)
			}
		})
	}
}

func TestURIControlCharacters(t *testing.T) {
	for _, uri := range []string{
		"https://app.example.com/\u202ecb",
		"https://app.example.com/cb%E2%80%AE",
		"https://app.example.com/c\u200db",
		"https://app.example.com/c%00b",
		"http://127.0.0.1/cb\u2066",
		"https://app.example.com\u202e/cb",
	} {
		t.Run(uri, func(t *testing.T) {
			if err := checkRedirectURI(uri); err == nil {
				t.Error("checkRedirectURI accepted it")
			}
			if matchRedirectURI([]string{uri}, uri) {
				t.Error("matchRedirectURI accepted it")
			}
		})
	}
	if _, err := checkDocumentURL("https://client.example.com/\u202eclient.json"); err == nil {
		t.Error("checkDocumentURL accepted a bidi override")
	}
	if _, err := checkDocumentURL("https://client.example.com/%E2%80%AEclient.json"); err == nil {
		t.Error("checkDocumentURL accepted an encoded bidi override")
	}
	if err := checkRedirectURI("https://app.example.com/cb?x=%20y"); err != nil {
		t.Errorf("an ordinary URI refused: %v", err)
	}
}
