// Command bearertoken prints access tokens for bench/bearer-load.sh: JWTs
// signed with the current signing key of a running caddymcp's embedded
// store, with the claims its token endpoint puts in them, so that
// mcp_bearer accepts them as it accepts any token it issued.
//
// It reads the keys from the store file (the key-encryption secret, if
// the store has one, comes from the environment variable named by
// -kek-env) and writes nothing. Usage:
//
//	go run ./bench/bearertoken -db <caddymcp.db> -issuer http://127.0.0.1:8080 \
//		-resource http://127.0.0.1:8080/bearer [-scope 'booking:read'] [-n 1]
//
// It prints n tokens, one per line, each with its own jti and subject.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddymcp/caddymcp/caddymcp/jose"
	"github.com/caddymcp/caddymcp/caddymcp/signing"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

func main() {
	db := flag.String("db", "", "the embedded store file of the running Caddy")
	issuer := flag.String("issuer", "", "the issuer, e.g. http://127.0.0.1:8080 (the request origin by default)")
	resource := flag.String("resource", "", "the audience: the resource mcp_bearer guards, e.g. http://127.0.0.1:8080/bearer")
	scope := flag.String("scope", "booking:read", "the granted scope")
	n := flag.Int("n", 1, "how many tokens to print")
	lifetime := flag.Duration("lifetime", time.Hour, "how long the tokens are valid")
	kekEnv := flag.String("kek-env", "", "environment variable holding the key-encryption secret, if the store has one")
	flag.Parse()
	if err := run(*db, *issuer, *resource, *scope, *n, *lifetime, *kekEnv); err != nil {
		fmt.Fprintln(os.Stderr, "bearertoken:", err)
		os.Exit(1)
	}
}

func run(db, issuer, resource, scope string, n int, lifetime time.Duration, kekEnv string) error {
	if db == "" || issuer == "" || resource == "" || n < 1 {
		return errors.New("-db, -issuer and -resource are required, and -n must be at least 1")
	}
	if _, err := os.Stat(db); err != nil {
		return err // never create a store
	}
	st, err := store.OpenEmbedded(db)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	kek := ""
	if kekEnv != "" {
		kek = os.Getenv(kekEnv)
	}
	for i := range keys {
		if keys[i].PrivateKey, err = signing.OpenKey(kek, keys[i].PrivateKey); err != nil {
			return err
		}
	}
	now := time.Now()
	ks, err := signing.NewKeySet(keys, now, 0)
	if err != nil {
		return err
	}
	client := rand.Text()
	for range n {
		tok, err := ks.Sign(&jose.AccessClaims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: issuer, Subject: rand.Text(), Audience: jwt.ClaimStrings{resource},
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
				ID: rand.Text(),
			},
			ClientID: client,
			Scope:    scope,
		})
		if err != nil {
			return err
		}
		fmt.Println(tok)
	}
	return nil
}
