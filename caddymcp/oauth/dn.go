package oauth

// Distinguished names (RFC 4514) for the tls_client_auth_subject_dn of
// mutual-TLS clients (RFC 8705 §2.1.2): the string a client registers is
// parsed here and compared with the DER subject of the certificate it
// presents.

import (
	"bytes"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// dnAttribute is one attribute of a distinguished name: its type, and
// its value as text, or, for a value written as #hex, the BER encoding
// of the value (RFC 4514 §2.4).
type dnAttribute struct {
	oid   asn1.ObjectIdentifier
	value string
	ber   []byte
}

// distinguishedName is a parsed DN: its relative distinguished names in
// the order of the string, the most specific first (RFC 4514 §2.1).
type distinguishedName [][]dnAttribute

// dnAttributeTypes are the attribute type names a DN string may use
// (RFC 4514 §3, and names certificates commonly carry), upper case.
var dnAttributeTypes = map[string]asn1.ObjectIdentifier{
	"CN": {2, 5, 4, 3}, "SN": {2, 5, 4, 4}, "SERIALNUMBER": {2, 5, 4, 5}, "C": {2, 5, 4, 6}, "L": {2, 5, 4, 7},
	"ST": {2, 5, 4, 8}, "STREET": {2, 5, 4, 9}, "O": {2, 5, 4, 10}, "OU": {2, 5, 4, 11}, "TITLE": {2, 5, 4, 12},
	"POSTALCODE": {2, 5, 4, 17}, "GIVENNAME": {2, 5, 4, 42}, "GN": {2, 5, 4, 42}, "ORGANIZATIONIDENTIFIER": {2, 5, 4, 97},
	"DC": {0, 9, 2342, 19200300, 100, 1, 25}, "UID": {0, 9, 2342, 19200300, 100, 1, 1},
	"EMAILADDRESS": {1, 2, 840, 113549, 1, 9, 1}, "E": {1, 2, 840, 113549, 1, 9, 1},
}

// parseDN parses the string representation of a distinguished name (RFC
// 4514 §3). Beyond the grammar it tolerates spaces around ',', '+' and
// '=', as people write them.
func parseDN(s string) (distinguishedName, error) {
	p := &dnParser{s: s}
	var dn distinguishedName
	var rdn []dnAttribute
	for {
		a, err := p.attribute()
		if err != nil {
			return nil, err
		}
		rdn = append(rdn, a)
		if p.i == len(p.s) {
			return append(dn, rdn), nil
		}
		switch p.s[p.i] {
		case '+':
			// multi-valued RDN
		case ',':
			dn, rdn = append(dn, rdn), nil
		default:
			return nil, fmt.Errorf("unexpected %q at position %d", p.s[p.i], p.i+1)
		}
		p.i++
	}
}

// dnParser is the state of parseDN.
type dnParser struct {
	s string
	i int
}

func (p *dnParser) skipSpaces() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// attribute reads attributeType "=" attributeValue.
func (p *dnParser) attribute() (dnAttribute, error) {
	p.skipSpaces()
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != '=' {
		p.i++
	}
	if p.i == len(p.s) {
		return dnAttribute{}, errors.New("an attribute lacks '='")
	}
	oid, err := dnAttributeType(strings.TrimRight(p.s[start:p.i], " "))
	if err != nil {
		return dnAttribute{}, err
	}
	p.i++ // '='
	p.skipSpaces()
	if p.i < len(p.s) && p.s[p.i] == '#' {
		return p.hexValue(oid)
	}
	var val []byte
	keep := 0 // length of val without unescaped trailing spaces
value:
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ',' || c == '+':
			break value
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return dnAttribute{}, errors.New("the DN ends with a lone backslash")
			}
			n := p.s[p.i+1]
			if strings.IndexByte(` "#+,;<=>\`, n) >= 0 {
				val = append(val, n)
				p.i += 2
			} else if b, err := hex.DecodeString(p.s[p.i+1 : min(p.i+3, len(p.s))]); err == nil && len(b) == 1 {
				val = append(val, b[0]) // a \XX escape: one byte of UTF-8
				p.i += 3
			} else {
				return dnAttribute{}, fmt.Errorf("bad escape at position %d", p.i+1)
			}
			keep = len(val)
		case c == 0 || c == '"' || c == ';' || c == '<' || c == '>':
			return dnAttribute{}, fmt.Errorf("%q must be escaped (position %d)", c, p.i+1)
		default:
			val = append(val, c)
			p.i++
			if c != ' ' {
				keep = len(val)
			}
		}
	}
	val = val[:keep]
	if len(val) == 0 {
		return dnAttribute{}, errors.New("an attribute value is empty")
	}
	if !utf8.Valid(val) {
		return dnAttribute{}, errors.New("an attribute value is not UTF-8")
	}
	return dnAttribute{oid: oid, value: string(val)}, nil
}

// hexValue reads a '#' hexstring: the BER encoding of one ASN.1 value.
func (p *dnParser) hexValue(oid asn1.ObjectIdentifier) (dnAttribute, error) {
	p.i++ // '#'
	start := p.i
	for p.i < len(p.s) && strings.IndexByte("0123456789abcdefABCDEF", p.s[p.i]) >= 0 {
		p.i++
	}
	ber, err := hex.DecodeString(p.s[start:p.i])
	if err != nil || len(ber) == 0 {
		return dnAttribute{}, errors.New("a #hexstring value has an odd or zero number of digits")
	}
	var v asn1.RawValue
	if rest, err := asn1.Unmarshal(ber, &v); err != nil || len(rest) > 0 {
		return dnAttribute{}, errors.New("a #hexstring value is not one BER-encoded value")
	}
	p.skipSpaces()
	return dnAttribute{oid: oid, ber: ber}, nil
}

// dnAttributeType resolves an attribute type: a known name (any case) or
// a dotted object identifier.
func dnAttributeType(t string) (asn1.ObjectIdentifier, error) {
	if oid, ok := dnAttributeTypes[strings.ToUpper(t)]; ok {
		return oid, nil
	}
	parts := strings.Split(t, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("unknown attribute type %q", t)
	}
	oid := make(asn1.ObjectIdentifier, 0, len(parts))
	for _, part := range parts {
		n := 0
		if part == "" || len(part) > 9 {
			return nil, fmt.Errorf("unknown attribute type %q", t)
		}
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return nil, fmt.Errorf("unknown attribute type %q", t)
			}
			n = n*10 + int(part[i]-'0')
		}
		oid = append(oid, n)
	}
	return oid, nil
}

// certAttribute is one attribute of a certificate's subject.
type certAttribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// parseSubject reads a certificate's DER subject into its RDNs, in
// ASN.1 order (the least specific first).
func parseSubject(raw []byte) ([][]certAttribute, error) {
	var seq []asn1.RawValue
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
		return nil, errors.New("malformed subject")
	}
	out := make([][]certAttribute, 0, len(seq))
	for _, set := range seq {
		var atvs []certAttribute
		if rest, err := asn1.UnmarshalWithParams(set.FullBytes, &atvs, "set"); err != nil || len(rest) > 0 {
			return nil, errors.New("malformed subject")
		}
		out = append(out, atvs)
	}
	return out, nil
}

// matches applies distinguishedNameMatch (RFC 4517 §4.2.15) to a
// certificate's DER subject: the same RDNs in the same order, each with
// the same attributes in any order, values compared as RFC 4518 would
// for caseIgnoreMatch: ignoring case, and leading, trailing and repeated
// spaces. A #hex value must equal the certificate's encoding exactly.
func (dn distinguishedName) matches(rawSubject []byte) bool {
	rdns, err := parseSubject(rawSubject)
	if err != nil || len(rdns) != len(dn) {
		return false
	}
	for i, rdn := range dn {
		got := rdns[len(rdns)-1-i]
		if len(got) != len(rdn) {
			return false
		}
		used := make([]bool, len(got))
		for _, want := range rdn {
			found := false
			for j, c := range got {
				if !used[j] && want.matches(c) {
					used[j], found = true, true
					break
				}
			}
			if !found {
				return false
			}
		}
	}
	return true
}

func (a dnAttribute) matches(c certAttribute) bool {
	if !a.oid.Equal(c.Type) {
		return false
	}
	if a.ber != nil {
		return bytes.Equal(a.ber, c.Value.FullBytes)
	}
	s, ok := asn1Text(c.Value)
	return ok && strings.EqualFold(foldSpaces(s), foldSpaces(a.value))
}

// foldSpaces removes leading and trailing spaces and makes each run of
// spaces one.
func foldSpaces(s string) string { return strings.Join(strings.Fields(s), " ") }

// asn1Text decodes a directory string value (X.520): UTF8String,
// PrintableString, IA5String, NumericString, VisibleString, TeletexString
// (as Latin-1), BMPString or UniversalString.
func asn1Text(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	b := v.Bytes
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString, 26:
		return string(b), utf8.Valid(b)
	case asn1.TagT61String:
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), true
	case asn1.TagBMPString:
		if len(b)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u)), true
	case 28: // UniversalString
		if len(b)%4 != 0 {
			return "", false
		}
		r := make([]rune, len(b)/4)
		for i := range r {
			r[i] = rune(binary.BigEndian.Uint32(b[4*i:]))
		}
		return string(r), true
	}
	return "", false
}
