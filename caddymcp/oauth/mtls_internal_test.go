package oauth

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"testing"
)

// TestParseDN checks the RFC 4514 string syntax of distinguished names:
// RDN order, multi-valued RDNs, escapes, #hex values, attribute type
// names and OIDs, and the strings that are not DNs.
func TestParseDN(t *testing.T) {
	cn, o, ou, c := asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}, asn1.ObjectIdentifier{2, 5, 4, 11}, asn1.ObjectIdentifier{2, 5, 4, 6}
	dc, email := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	type attr struct {
		oid   asn1.ObjectIdentifier
		value string
	}
	for _, tt := range []struct {
		in   string
		want [][]attr
	}{
		{"CN=agent,O=Example,C=DE", [][]attr{{{cn, "agent"}}, {{o, "Example"}}, {{c, "DE"}}}},
		{"cn = agent , o=Example", [][]attr{{{cn, "agent"}}, {{o, "Example"}}}},
		{"OU=a+OU=b,DC=example", [][]attr{{{ou, "a"}, {ou, "b"}}, {{dc, "example"}}}},
		{`CN=Doe\, John,O=\"Q\" \+ \<R\>`, [][]attr{{{cn, "Doe, John"}}, {{o, `"Q" + <R>`}}}},
		{`CN=\ padded\ `, [][]attr{{{cn, " padded "}}}},
		{`CN=trailing   `, [][]attr{{{cn, "trailing"}}}},
		{`CN=\#hash,O=a\=b\;c`, [][]attr{{{cn, "#hash"}}, {{o, "a=b;c"}}}},
		{`CN=caf\C3\A9`, [][]attr{{{cn, "café"}}}},
		{`CN=Lučić`, [][]attr{{{cn, "Lučić"}}}},
		{"2.5.4.3=agent,E=a@example.com,emailAddress=b@example.com", [][]attr{{{cn, "agent"}}, {{email, "a@example.com"}}, {{email, "b@example.com"}}}},
		{"CN=#0c056167656e74", [][]attr{{{cn, ""}}}},
	} {
		dn, err := parseDN(tt.in)
		if err != nil {
			t.Errorf("parseDN(%q): %v", tt.in, err)
			continue
		}
		var got [][]attr
		for _, rdn := range dn {
			var g []attr
			for _, a := range rdn {
				g = append(g, attr{a.oid, a.value})
			}
			got = append(got, g)
		}
		if !slices.EqualFunc(got, tt.want, func(a, b []attr) bool {
			return slices.EqualFunc(a, b, func(x, y attr) bool { return x.oid.Equal(y.oid) && x.value == y.value })
		}) {
			t.Errorf("parseDN(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, in := range []string{
		"", "agent", "CN", "CN=", "CN=a,", ",CN=a", "CN=a,,O=b", "CN=a+", "XX=a", "1=a", "2.5.x=a", "CN=a\\", `CN=a\x`,
		`CN=a\4`, `CN=a"b`, "CN=a;b", "CN=a<b", "CN=a>b", "CN=a\x00b", `CN=\ff`, "CN=#", "CN=#0", "CN=#zz", "CN=#0c",
		"CN=#0c056167656e74ff", "CN=#0c05616765 6e74", "C N=a",
	} {
		if dn, err := parseDN(in); err == nil {
			t.Errorf("parseDN(%q) = %v, want an error", in, dn)
		}
	}
}

// TestDNMatches applies distinguishedNameMatch to subjects encoded with
// the string types certificates use.
func TestDNMatches(t *testing.T) {
	cn := asn1.ObjectIdentifier{2, 5, 4, 3}
	o := asn1.ObjectIdentifier{2, 5, 4, 10}
	raw := func(tag int, b []byte) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: b}
	}
	subject := func(values ...asn1.RawValue) []byte {
		t.Helper()
		seq := pkix.RDNSequence{}
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: o, Value: "Example"}})
		for _, v := range values {
			seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: cn, Value: v}})
		}
		der, err := asn1.Marshal(seq)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	bmp := []byte{0, 'A', 0, 'g', 0, 0xe9, 0, 'n', 0, 't'}
	utf32 := []byte{0, 0, 0, 'A', 0, 0, 0, 'g', 0, 0, 0, 0xe9, 0, 0, 0, 'n', 0, 0, 0, 't'}
	for _, tt := range []struct {
		name    string
		subject []byte
		dn      string
		ok      bool
	}{
		{"UTF8String", subject(raw(asn1.TagUTF8String, []byte("Agént"))), "CN=agÉnt,O=example", true},
		{"BMPString", subject(raw(asn1.TagBMPString, bmp)), "CN=Agént,O=Example", true},
		{"UniversalString", subject(raw(28, utf32)), "CN=Agént,O=Example", true},
		{"TeletexString as Latin-1", subject(raw(asn1.TagT61String, []byte{'A', 'g', 0xe9, 'n', 't'})), "CN=Agént,O=Example", true},
		{"odd BMPString", subject(raw(asn1.TagBMPString, bmp[:3])), "CN=A,O=Example", false},
		{"OCTET STRING is no text", subject(raw(asn1.TagOctetString, []byte("Agent"))), "CN=Agent,O=Example", false},
		{"OCTET STRING as #hex", subject(raw(asn1.TagOctetString, []byte("Agent"))), "CN=#04054167656e74,O=Example", true},
		{"inner spaces fold", subject(raw(asn1.TagUTF8String, []byte(" a  b "))), "CN=a b,O=Example", true},
		{"spaces are not removed", subject(raw(asn1.TagUTF8String, []byte("a b"))), "CN=ab,O=Example", false},
		{"one RDN more", subject(raw(asn1.TagUTF8String, []byte("a")), raw(asn1.TagUTF8String, []byte("b"))), "CN=b,O=Example", false},
		{"two RDNs in order", subject(raw(asn1.TagUTF8String, []byte("a")), raw(asn1.TagUTF8String, []byte("b"))), "CN=b,CN=a,O=Example", true},
		{"two RDNs out of order", subject(raw(asn1.TagUTF8String, []byte("a")), raw(asn1.TagUTF8String, []byte("b"))), "CN=a,CN=b,O=Example", false},
		{"malformed subject", []byte{0x30, 0x03, 0x31}, "CN=a", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dn, err := parseDN(tt.dn)
			if err != nil {
				t.Fatal(err)
			}
			if got := dn.matches(tt.subject); got != tt.ok {
				t.Fatalf("%s matches = %v, want %v", tt.dn, got, tt.ok)
			}
		})
	}
}

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
