package oauth

// How host names are shown to a person deciding whom to trust, and the
// characters no URI may hold. A look-alike host (Cyrillic "аррӏе.com",
// or "clаude.ai" with one Cyrillic letter) is shown as browsers show it:
// in its ASCII (punycode) form, with the Unicode form beside it only
// when each of its labels is written in one script (UTS #39 §5.1), and
// with a warning when a label mixes scripts.

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// shownHost is a host (with its port, if any) as the consent page shows
// it.
type shownHost struct {
	// ascii is the host in ASCII: internationalized labels in punycode.
	ascii string
	// unicode is its Unicode form, when that differs and every label is
	// single-script; else "".
	unicode string
	// mixed: a label mixes scripts, as look-alike hosts do.
	mixed bool
}

// showHost prepares hostport (a URL's Host) for display.
func showHost(hostport string) shownHost {
	if hostport == "" || strings.HasPrefix(hostport, "[") {
		return shownHost{ascii: hostport}
	}
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i:]
	}
	ascii, err := idna.Punycode.ToASCII(strings.ToLower(host))
	if err != nil {
		// Not a host name idna can convert: every non-ASCII character
		// escaped, so that nothing can pass for something else.
		q := strconv.QuoteToASCII(host)
		return shownHost{ascii: q[1:len(q)-1] + port, mixed: true}
	}
	out := shownHost{ascii: ascii + port}
	uni, err := idna.Punycode.ToUnicode(ascii)
	if err != nil || uni == ascii {
		return out
	}
	for _, label := range strings.Split(uni, ".") {
		if mixedScript(label) {
			out.mixed = true
		}
	}
	if !out.mixed {
		out.unicode = uni + port
	}
	return out
}

// asciiHostURI is uri with its host in ASCII form, as it is shown.
func asciiHostURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return uri
	}
	shown := showHost(u.Host).ascii
	if shown == u.Host || !strings.Contains(uri, u.Host) {
		return uri
	}
	return strings.Replace(uri, u.Host, shown, 1)
}

// cjkScripts are the combinations of scripts that one label may use
// together in East Asian writing (UTS #39 §5.1, "Highly Restrictive").
var cjkScripts = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Hangul"},
	{"Latin", "Han", "Bopomofo"},
}

// mixedScript reports whether a label uses letters of more than one
// script, other than the East Asian combinations. Digits, hyphens and
// combining marks (Common and Inherited) belong to no script.
func mixedScript(label string) bool {
	var scripts []string
	for _, r := range label {
		if s := scriptOf(r); s != "" && !slices.Contains(scripts, s) {
			scripts = append(scripts, s)
		}
	}
	if len(scripts) <= 1 {
		return false
	}
	for _, allowed := range cjkScripts {
		if !slices.ContainsFunc(scripts, func(s string) bool { return !slices.Contains(allowed, s) }) {
			return false
		}
	}
	return true
}

// scriptOf is the Unicode script of r, "" for Common and Inherited.
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return ""
	}
	for name, table := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

// hasControlChar reports whether s holds a control character (C0, DEL,
// C1) or an invisible formatting one (Unicode Cf: bidirectional
// overrides and isolates such as U+202E, zero-width joiners, the byte
// order mark), which can make a URI read as something it is not.
func hasControlChar(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Bidi_Control, r) {
			return true
		}
	}
	return false
}

// uriHasControlChar reports whether a URI holds a control or formatting
// character, as written or percent-encoded.
func uriHasControlChar(raw string) bool {
	if hasControlChar(raw) {
		return true
	}
	dec, err := url.PathUnescape(raw)
	return err == nil && hasControlChar(dec)
}
