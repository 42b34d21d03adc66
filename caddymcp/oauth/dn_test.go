package oauth

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"strings"
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

// TestParseDNValues checks what each attribute holds after parsing: text
// with its escapes resolved and insignificant spaces dropped, or, for a
// #hex value, the BER encoding it spells out.
func TestParseDNValues(t *testing.T) {
	cn, o, c := asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}, asn1.ObjectIdentifier{2, 5, 4, 6}
	dc := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	text := func(oid asn1.ObjectIdentifier, v string) dnAttribute { return dnAttribute{oid: oid, value: v} }
	ber := func(oid asn1.ObjectIdentifier, b ...byte) dnAttribute { return dnAttribute{oid: oid, ber: b} }
	for _, tt := range []struct {
		name, in string
		want     distinguishedName
	}{
		// Escapes (RFC 4514 §2.4, §3): a special character after a
		// backslash, or two hex digits for one byte of UTF-8.
		{"escaped backslash", `CN=a\\b`, distinguishedName{{text(cn, `a\b`)}}},
		{"backslash as hex", `CN=a\5Cb`, distinguishedName{{text(cn, `a\b`)}}},
		{"escaped leading #", `CN=\#not hex`, distinguishedName{{text(cn, "#not hex")}}},
		{"# inside a value", `CN=a#b`, distinguishedName{{text(cn, "a#b")}}},
		{"= inside a value", `CN=a=b`, distinguishedName{{text(cn, "a=b")}}},
		{"escaped plus", `CN=a\2Bb+O=c`, distinguishedName{{text(cn, "a+b"), text(o, "c")}}},
		{"escaped comma as hex", `O=Example\2c Inc.`, distinguishedName{{text(o, "Example, Inc.")}}},
		{"spaces as hex are kept", `CN=\20x\20`, distinguishedName{{text(cn, " x ")}}},
		{"an escaped trailing space is kept, the others dropped", `CN=a \  `, distinguishedName{{text(cn, "a  ")}}},
		{"leading spaces are dropped", `CN=   x`, distinguishedName{{text(cn, "x")}}},
		{"UTF-8 in hex, any case", `CN=\e4\B8\aD`, distinguishedName{{text(cn, "中")}}},
		// #hex values: the BER encoding of one value (RFC 4514 §2.4).
		{"hex value", "CN=#0c056167656e74", distinguishedName{{ber(cn, 0x0c, 5, 'a', 'g', 'e', 'n', 't')}}},
		{"hex value in upper case", "CN=#0C056167656E74", distinguishedName{{ber(cn, 0x0c, 5, 'a', 'g', 'e', 'n', 't')}}},
		{"hex value with spaces after it", "C=#13024445 , O=x", distinguishedName{{ber(c, 0x13, 2, 'D', 'E')}, {text(o, "x")}}},
		{"hex values in one RDN", "CN=#0c0161+O=#0c0162", distinguishedName{{ber(cn, 0x0c, 1, 'a'), ber(o, 0x0c, 1, 'b')}}},
		// Multi-valued RDNs (RFC 4514 §2.2), spaces around '+' tolerated.
		{"multi-valued RDN", "CN=a + O=b + C=DE, DC=example", distinguishedName{{text(cn, "a"), text(o, "b"), text(c, "DE")}, {text(dc, "example")}}},
		{"multi-valued RDN last", "DC=example,CN=a+O=b", distinguishedName{{text(dc, "example")}, {text(cn, "a"), text(o, "b")}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDN(tt.in)
			if err != nil {
				t.Fatalf("parseDN(%q): %v", tt.in, err)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b []dnAttribute) bool {
				return slices.EqualFunc(a, b, func(x, y dnAttribute) bool {
					return x.oid.Equal(y.oid) && x.value == y.value && bytes.Equal(x.ber, y.ber) && (x.ber == nil) == (y.ber == nil)
				})
			}) {
				t.Fatalf("parseDN(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestParseDNMalformed checks that malformed strings are refused, and
// that the error says what is wrong.
func TestParseDNMalformed(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "lacks '='"},
		{"=a", "unknown attribute type"},
		{"CN=a,O", "lacks '='"},
		{"CN=a,+O=b", "unknown attribute type"},
		{"1.2.=a", "unknown attribute type"},
		{".1.2=a", "unknown attribute type"},
		{"2.5.4.1234567890=a", "unknown attribute type"},
		{"CN=  ", "empty"},
		{"CN=a,O= ,C=DE", "empty"},
		{`CN=a\`, "lone backslash"},
		{`CN=a\g0`, "bad escape at position 5"},
		{`CN=a\0`, "bad escape"},
		{`CN=\C3`, "not UTF-8"},
		{`CN=\C3\28`, "not UTF-8"},
		{"CN=a;O=b", `';' must be escaped (position 5)`},
		{`CN=x"`, `'"' must be escaped`},
		{"CN=#0c0261", "not one BER-encoded value"},
		{"CN=#0c01610c0162", "not one BER-encoded value"},
		{"CN=#0c0161 x", "unexpected 'x' at position 12"},
		{"CN=#0c016", "odd or zero number of digits"},
		{"CN=#0c0161 +", "lacks '='"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			dn, err := parseDN(tt.in)
			if err == nil {
				t.Fatalf("parseDN(%q) = %v, want an error", tt.in, dn)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseDN(%q): %v, want it to mention %q", tt.in, err, tt.want)
			}
		})
	}
}

// TestDNMatchesMultiValued checks the attributes of a multi-valued RDN:
// in any order, each matched once, none left over; and that a #hex value
// matches the certificate's encoding, string type included.
func TestDNMatchesMultiValued(t *testing.T) {
	cn, ou := asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 11}
	utf8String := func(s string) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(s)}
	}
	subject, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: ou, Value: utf8String("ops")}, {Type: ou, Value: utf8String("mcp")}},
		{{Type: cn, Value: utf8String("x")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		dn string
		ok bool
	}{
		{"CN=x,OU=ops+OU=mcp", true},
		{"CN=x,OU=mcp+OU=ops", true},
		{"cn=X, ou=MCP + ou=OPS", true},
		{"CN=#0c0178,OU=mcp+OU=#0c036f7073", true},
		{"CN=#130178,OU=mcp+OU=ops", false}, // a PrintableString
		{"CN=x,OU=ops", false},
		{"CN=x,OU=ops+OU=ops", false},
		{"CN=x,OU=ops+OU=mcp+OU=dev", false},
		{"CN=x,OU=ops,OU=mcp", false},
		{"CN=x+OU=ops,OU=mcp", false},
	} {
		t.Run(tt.dn, func(t *testing.T) {
			dn, err := parseDN(tt.dn)
			if err != nil {
				t.Fatal(err)
			}
			if got := dn.matches(subject); got != tt.ok {
				t.Fatalf("%s matches = %v, want %v", tt.dn, got, tt.ok)
			}
		})
	}
}
