package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// DPoPConfig configures DPoP (RFC 9449) at the token endpoint. By default
// a token request that carries a valid DPoP proof gets a DPoP-bound
// access token, and one without gets a bearer token.
type DPoPConfig struct {
	// Disabled ignores DPoP proofs and dpop_jkt: every access token is a
	// bearer token, and the metadata does not advertise DPoP.
	Disabled bool
	// RequireNonce makes the token endpoint demand a server nonce in
	// every DPoP proof (RFC 9449 §8): a proof without the current nonce
	// is answered 400 use_dpop_nonce with a DPoP-Nonce header, and the
	// code or refresh token stays usable for the retry. Nonces are
	// derived from NonceSecret and the time, so every instance that
	// shares the secret accepts the nonces of the others.
	RequireNonce bool
	// NonceSecret returns the secret nonces are derived from, the same
	// on every instance. Required with RequireNonce.
	NonceSecret func(ctx context.Context) ([]byte, error)
}

// tokenProof checks the DPoP proof of a token request (RFC 9449 §5):
// none (nil, true) when the request has no DPoP header or DPoP is off.
// When it has answered the request (a bad proof, a missing nonce, a
// failure) it returns false. With nonces required, every answer to a
// request with a proof carries the current nonce (§8.2).
func (s *Server) tokenProof(w http.ResponseWriter, r *http.Request, issuer string) (*dpop.Proof, bool) {
	values := r.Header.Values(dpop.Header)
	if s.cfg.DPoP.Disabled || len(values) == 0 {
		return nil, true
	}
	now := s.cfg.Now()
	var secret []byte
	if s.cfg.DPoP.RequireNonce {
		var err error
		if secret, err = s.cfg.DPoP.NonceSecret(r.Context()); err != nil {
			s.internalError(w, r, "reading the DPoP nonce secret", err)
			return nil, false
		}
		w.Header().Set(dpop.NonceHeader, dpop.Nonce(secret, issuer, dpop.Slot(now)))
	}
	proof, err := dpop.CheckProof(values, http.MethodPost, issuer+TokenPath, "", now)
	if err != nil {
		badRequest("invalid_dpop_proof", err.Error()).write(w)
		return nil, false
	}
	if s.cfg.DPoP.RequireNonce && !dpop.ValidNonce(secret, issuer, proof.Nonce, now) {
		// The grant is not looked at: the code or refresh token stays
		// usable for the retry with the nonce.
		desc := "a DPoP nonce is required: retry with a proof carrying the nonce of the DPoP-Nonce header"
		if proof.Nonce != "" {
			desc = "the DPoP nonce is unknown or expired: retry with the nonce of the DPoP-Nonce header"
		}
		badRequest("use_dpop_nonce", desc).write(w)
		return nil, false
	}
	// RFC 9449 §11.1: each proof once. Only looked up here; the proof is
	// recorded (useProof) once the grant is found valid, so that junk
	// requests with fresh proofs take no room in the replay cache.
	if s.replay.Seen(proof, now) {
		proofReplayed().write(w)
		return nil, false
	}
	return proof, true
}

// proofReplayed refuses a DPoP proof already used (RFC 9449 §11.1).
func proofReplayed() *oauthError {
	return badRequest("invalid_dpop_proof", "the DPoP proof was already used: make a new proof for each request")
}

// useProof records the request's DPoP proof as used, once the request is
// otherwise valid, and refuses it if another request recorded it first
// (two requests with one proof at once both pass tokenProof's look-up).
// It runs inside the store's transaction where the grant is decided, so
// that a refusal here uses up no code or refresh token.
func (t *tokenIssuer) useProof() *oauthError {
	if t.proof == nil || t.s.replay.FirstUse(t.proof, t.now) {
		return nil
	}
	return proofReplayed()
}

// checkDPoPConfig checks the DPoP configuration.
func checkDPoPConfig(c *DPoPConfig) error {
	if c.RequireNonce && !c.Disabled && c.NonceSecret == nil {
		return errors.New("oauth server: DPoP nonces need a nonce secret")
	}
	return nil
}

// NonceSecretName names the stored secret DPoP nonces are derived from.
const NonceSecretName = "dpop_nonce"

// StoredNonceSecret returns a DPoPConfig.NonceSecret kept in a store:
// made from random on first use (sealed with kek when it is set, like the
// signing keys), the same for every instance sharing the store, then kept
// in memory. open yields the store once it is ready to be read (migrated);
// it is called on first use, not before.
func StoredNonceSecret(open func(context.Context) (store.Secrets, error), kek string, random io.Reader) func(ctx context.Context) ([]byte, error) {
	var mu sync.Mutex
	var cached []byte
	return func(ctx context.Context) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if cached != nil {
			return cached, nil
		}
		st, err := open(ctx)
		if err != nil {
			return nil, err
		}
		stored, err := st.EnsureSecret(ctx, NonceSecretName, time.Now(), func() ([]byte, error) {
			b := make([]byte, 32)
			if _, err := io.ReadFull(random, b); err != nil {
				return nil, err
			}
			if kek == "" {
				return b, nil
			}
			return signing.SealKey(kek, b, random)
		})
		if err != nil {
			return nil, err
		}
		secret, err := signing.OpenKey(kek, stored)
		if err != nil {
			return nil, fmt.Errorf("DPoP nonce secret: %w", err)
		}
		cached = secret
		return secret, nil
	}
}
