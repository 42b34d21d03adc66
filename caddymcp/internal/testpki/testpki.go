// Package testpki makes X.509 certificates for tests of mutual TLS: a
// certificate authority, client certificates it signs, self-signed
// client certificates, and server certificates, with their PEM files.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority.
type CA struct {
	// Cert is its self-signed certificate.
	Cert *x509.Certificate
	key  crypto.Signer
}

// NewKey returns a new P-256 key.
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewCA makes a certificate authority named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := NewKey(t)
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: name, Organization: []string{"caddymcp tests"}},
		IsCA:    true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cert := create(t, tmpl, tmpl, key.Public(), key)
	return &CA{Cert: cert.Leaf, key: key}
}

// Pool is a certificate pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// PEM is the CA's certificate in PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Client signs a client certificate (extended key usage clientAuth) with
// the subject and SANs of tmpl, for key (nil: a new key).
func (ca *CA) Client(t testing.TB, tmpl *x509.Certificate, key crypto.Signer) tls.Certificate {
	t.Helper()
	c, key := clientTemplate(t, tmpl, key)
	return create(t, c, ca.Cert, key.Public(), ca.key, key)
}

// clientTemplate is a copy of tmpl for a client certificate (extended key
// usage clientAuth) and its key: key, or a new one when nil.
func clientTemplate(t testing.TB, tmpl *x509.Certificate, key crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	if key == nil {
		key = NewKey(t)
	}
	c := *tmpl
	c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	c.KeyUsage = x509.KeyUsageDigitalSignature
	return &c, key
}

// Server signs a server certificate for hosts (DNS names or IP
// addresses).
func (ca *CA) Server(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	key := NewKey(t)
	c := &x509.Certificate{Subject: pkix.Name{CommonName: hosts[0]},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			c.IPAddresses = append(c.IPAddresses, ip)
		} else {
			c.DNSNames = append(c.DNSNames, h)
		}
	}
	return create(t, c, ca.Cert, key.Public(), ca.key, key)
}

// SelfSigned makes a self-signed client certificate with the subject and
// SANs of tmpl, for key (nil: a new key).
func SelfSigned(t testing.TB, tmpl *x509.Certificate, key crypto.Signer) tls.Certificate {
	t.Helper()
	c, key := clientTemplate(t, tmpl, key)
	return create(t, c, c, key.Public(), key, key)
}

// create signs tmpl with the parent's key and returns the certificate
// with its private key (leafKey, or none for a CA).
func create(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer, leafKey ...crypto.Signer) tls.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Certificate{Certificate: [][]byte{der}, Leaf: leaf}
	if len(leafKey) > 0 {
		tc.PrivateKey = leafKey[0]
	}
	return tc
}

// WriteFiles writes a certificate and its key as PEM files into dir and
// returns their paths.
func WriteFiles(t testing.TB, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	WriteFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
	WriteFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return certFile, keyFile
}

// WriteFile writes data to path with mode 0600.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// CertPEM is a certificate in PEM.
func CertPEM(c tls.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
}
