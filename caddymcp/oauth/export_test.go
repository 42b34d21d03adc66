package oauth

import "crypto/ecdsa"

// SignerOf exposes a key set's private key to this package's tests.
func SignerOf(ks *KeySet) *ecdsa.PrivateKey {
	k, _ := ks.signer.(*ecdsa.PrivateKey)
	return k
}
