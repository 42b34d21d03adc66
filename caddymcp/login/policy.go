package login

import (
	"errors"
	"fmt"
	"strings"

	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// policy is the validated, normalised access policy.
type policy []rule

// rule is a Rule with lowercased conditions.
type rule struct {
	emails, domains, hostedDomains map[string]bool
	everyone                       bool
	scopes                         []string // nil: all
}

// newPolicy checks and normalises rules.
func newPolicy(rules []Rule) (policy, error) {
	if len(rules) == 0 {
		return nil, errors.New("login: no access rule: nobody could sign in (use Everyone to let every user in)")
	}
	p := make(policy, 0, len(rules))
	for i, r := range rules {
		n := rule{everyone: r.Everyone}
		var err error
		if n.emails, err = lowerSet(r.Emails, func(v string) bool {
			at := strings.LastIndexByte(v, '@')
			return at > 0 && at < len(v)-1
		}); err != nil {
			return nil, fmt.Errorf("login: rule %d: email %w", i+1, err)
		}
		if n.domains, err = lowerSet(r.Domains, validDomain); err != nil {
			return nil, fmt.Errorf("login: rule %d: domain %w", i+1, err)
		}
		if n.hostedDomains, err = lowerSet(r.HostedDomains, validDomain); err != nil {
			return nil, fmt.Errorf("login: rule %d: hosted domain %w", i+1, err)
		}
		if !n.everyone && len(n.emails)+len(n.domains)+len(n.hostedDomains) == 0 {
			return nil, fmt.Errorf("login: rule %d matches nobody: give emails, domains, hosted domains or everyone", i+1)
		}
		if r.Scopes != nil {
			n.scopes = make([]string, 0, len(r.Scopes))
			for _, sc := range r.Scopes {
				if !web.ValidScopeToken(sc) {
					return nil, fmt.Errorf("login: rule %d: invalid scope %q", i+1, sc)
				}
				n.scopes = append(n.scopes, sc)
			}
		}
		p = append(p, n)
	}
	return p, nil
}

// lowerSet lowercases and trims values into a set, rejecting those valid
// refuses.
func lowerSet(values []string, valid func(string) bool) (map[string]bool, error) {
	set := make(map[string]bool, len(values))
	for _, v := range values {
		n := strings.ToLower(strings.TrimSpace(v))
		if !valid(n) {
			return nil, fmt.Errorf("%q is not valid", v)
		}
		set[n] = true
	}
	return set, nil
}

// validDomain accepts a DNS name without '@', spaces or a leading dot.
func validDomain(d string) bool {
	if d == "" || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// scopes applies the policy to u: whether some rule lets the user in,
// and the union of the scopes of the matching rules (nil: all scopes).
func (p policy) scopes(u *store.User) (allowed bool, scopes []string) {
	email := strings.ToLower(u.Email)
	domain := ""
	if at := strings.LastIndexByte(email, '@'); at > 0 && u.EmailVerified {
		domain = email[at+1:]
	} else {
		email = ""
	}
	hd := strings.ToLower(u.HostedDomain)
	all := false
	seen := map[string]bool{}
	for _, r := range p {
		match := r.everyone ||
			email != "" && r.emails[email] ||
			domain != "" && r.domains[domain] ||
			hd != "" && r.hostedDomains[hd]
		if !match {
			continue
		}
		allowed = true
		if r.scopes == nil {
			all = true
			continue
		}
		for _, sc := range r.scopes {
			if !seen[sc] {
				seen[sc] = true
				scopes = append(scopes, sc)
			}
		}
	}
	switch {
	case !allowed || all:
		return allowed, nil
	case scopes == nil:
		return true, []string{} // let in, but with nothing to grant
	}
	return true, scopes
}
