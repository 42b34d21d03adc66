package login

import "strings"

// uaBrowsers are the browsers describeUserAgent names, each with the
// User-Agent tokens that identify it, most specific first: Edge and
// Opera also claim Chrome, Chrome also claims Safari.
var uaBrowsers = []struct {
	name   string
	tokens []string
}{
	{"Edge", []string{"Edg/", "EdgA/", "EdgiOS/", "Edge/"}},
	{"Opera", []string{"OPR/", "Opera"}},
	{"Samsung Internet", []string{"SamsungBrowser/"}},
	{"Firefox", []string{"Firefox/", "FxiOS/"}},
	{"Chrome", []string{"HeadlessChrome/", "CriOS/", "Chrome/"}},
	{"Chromium", []string{"Chromium/"}},
	{"Safari", []string{"Safari/"}},
	{"curl", []string{"curl/"}},
}

// uaSystems are the operating systems describeUserAgent names, most
// specific first: Android also claims Linux, iOS claims Mac OS X.
var uaSystems = []struct {
	name   string
	tokens []string
}{
	{"Windows", []string{"Windows"}},
	{"iPhone", []string{"iPhone"}},
	{"iPad", []string{"iPad"}},
	{"Android", []string{"Android"}},
	{"ChromeOS", []string{"CrOS"}},
	{"macOS", []string{"Macintosh", "Mac OS X"}},
	{"Linux", []string{"Linux", "X11"}},
}

// describeUserAgent turns a User-Agent header into a short description
// a person recognises, such as "Firefox on Linux". It names only the
// browsers and systems it knows, so that nothing a client chose to send
// is shown verbatim.
func describeUserAgent(ua string) string {
	find := func(list []struct {
		name   string
		tokens []string
	}) string {
		for _, e := range list {
			for _, t := range e.tokens {
				if strings.Contains(ua, t) {
					return e.name
				}
			}
		}
		return ""
	}
	browser, system := find(uaBrowsers), find(uaSystems)
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "A browser on " + system
	}
	return "An unknown browser"
}
