// Package store persists caddymcp's state: OAuth clients, authorization
// codes, grants with their access-token records and refresh tokens, users,
// login sessions, consents and signing keys.
//
// Two implementations share one SQL core: Postgres (pgx, the production
// store) and Embedded (a pure-Go SQLite file, the zero-config default).
// Opaque secrets (authorization codes, refresh tokens, session ids and
// client secrets) are hashed with SHA-256 before they reach the database
// and are looked up by hash; no method returns them in clear.
//
// It imports only migrations: no other caddymcp package, and not Caddy.
// Its API carries no stability promise outside this module.
package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them, so test with errors.Is.
var (
	// ErrNotFound means the record does not exist, has expired or has
	// been revoked.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a record with the same unique key exists.
	ErrConflict = errors.New("conflict")
	// ErrAlreadyUsed means a single-use secret (an authorization code or
	// a refresh token) was presented again after it had been consumed.
	// The record is returned with it, so that the caller can revoke the
	// grant it belongs to (RFC 9700 §4.14, OAuth 2.1 §4.3.1).
	ErrAlreadyUsed = errors.New("already used")
	// ErrUnavailable means the database could not be reached or did not
	// answer in time.
	ErrUnavailable = errors.New("store unavailable")
)

// Hash returns the SHA-256 digest under which an opaque secret is stored.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// SecretMatches reports, in constant time, whether secret hashes to hash.
func SecretMatches(hash []byte, secret string) bool {
	return len(hash) == sha256.Size && subtle.ConstantTimeCompare(hash, Hash(secret)) == 1
}

// Client is a registered OAuth client (RFC 7591).
type Client struct {
	// ID is the client_id.
	ID string
	// SecretHash is the SHA-256 of the client secret; nil for public
	// clients.
	SecretHash []byte
	// SecretExpiresAt is when the secret expires; zero means never.
	SecretExpiresAt time.Time
	// Name is the human-readable client_name.
	Name string
	// RedirectURIs are the registered redirection endpoints.
	RedirectURIs []string
	// GrantTypes are the registered grant types.
	GrantTypes []string
	// ResponseTypes are the registered response types.
	ResponseTypes []string
	// Scope is the space-separated scope the client registered for.
	Scope string
	// TokenEndpointAuthMethod is how the client authenticates at the
	// token endpoint ("none", "client_secret_basic", "tls_client_auth",
	// ...).
	TokenEndpointAuthMethod string
	// TLSSubject is the certificate subject of a client that
	// authenticates with tls_client_auth (RFC 8705 §2.1.2); zero for
	// other clients.
	TLSSubject CertificateSubject
	// JWKS is the client's JWK Set (RFC 7591 jwks) as a JSON object: for
	// self_signed_tls_client_auth, the certificates of the client (x5c,
	// RFC 8705 §2.2.2). Nil when it registered none.
	JWKS []byte
	// CertificateBoundTokens is the client's
	// tls_client_certificate_bound_access_tokens (RFC 8705 §3.4): it
	// gets only access tokens bound to its TLS client certificate.
	CertificateBoundTokens bool
	// Metadata is the complete registered metadata as a JSON object, as
	// echoed in the registration response.
	Metadata []byte
	// CreatedAt, UpdatedAt and LastUsedAt are maintained by the store
	// from the times the caller passes in.
	CreatedAt, UpdatedAt, LastUsedAt time.Time
}

// CertificateSubject is the subject a client certificate must carry for
// the PKI method of mutual-TLS client authentication (RFC 8705 §2.1.2).
type CertificateSubject struct {
	// Kind names the registration parameter Value comes from, without its
	// "tls_client_auth_" prefix: "subject_dn", "san_dns", "san_uri",
	// "san_ip" or "san_email". Empty: no subject.
	Kind string
	// Value is the expected subject DN (RFC 4514 string) or SAN entry.
	Value string
}

// AuthCode is an authorization code (RFC 6749 §4.1.2) waiting to be
// redeemed. The code itself is never stored.
type AuthCode struct {
	// GrantID is the id the grant will have once the code is redeemed;
	// it lets a replayed code revoke what the first redemption issued.
	GrantID string
	// ClientID is the client the code was issued to.
	ClientID string
	// UserID is the user who authorized it.
	UserID string
	// RedirectURI is the redirect_uri of the authorization request.
	RedirectURI string
	// Scope is the space-separated granted scope.
	Scope string
	// Resource is the RFC 8707 resource the code is bound to.
	Resource string
	// CodeChallenge and CodeChallengeMethod are the PKCE parameters.
	CodeChallenge, CodeChallengeMethod string
	// DPoPJKT is the RFC 7638 thumbprint of the DPoP key the code is
	// bound to by the dpop_jkt authorization parameter (RFC 9449 §10):
	// the token request must prove possession of that key. Empty: not
	// bound.
	DPoPJKT string
	// CreatedAt, ExpiresAt and ConsumedAt (zero until redeemed).
	CreatedAt, ExpiresAt, ConsumedAt time.Time
}

// Grant is what a user authorized a client to do: the lineage that
// access tokens and rotating refresh tokens descend from.
type Grant struct {
	// ID identifies the grant.
	ID string
	// ClientID and UserID are the parties.
	ClientID, UserID string
	// Scope is space-separated; Resource is the RFC 8707 audience.
	Scope, Resource string
	// RedirectURI is where the authorization code of the grant was sent
	// (the authorization request's redirect_uri). Empty for grants made
	// before schema version 10.
	RedirectURI string
	// CreatedAt, UpdatedAt, ExpiresAt and RevokedAt (zero if active).
	// UpdatedAt moves when tokens are issued under the grant (a refresh)
	// and when it is revoked.
	CreatedAt, UpdatedAt, ExpiresAt, RevokedAt time.Time
}

// UserGrant is a live grant as its user sees it on their account page.
// For a grant made before grants kept their redirect URI, Grant's
// RedirectURI is that of the user's remembered consent to the client, if
// there is one.
type UserGrant struct {
	Grant
	// ClientName is the registered client's name (client_name); empty
	// when the client has none or is not stored (a client configured in
	// the Caddyfile, or one known by its metadata document).
	ClientName string
	// LastUsedAt is when tokens were last issued under the grant: the
	// redemption of its code or its latest refresh. (Access tokens are
	// verified without the database, so their every use is not seen.)
	LastUsedAt time.Time
}

// AccessToken is the record of an issued JWT access token, kept by its
// jti so that it can be revoked.
type AccessToken struct {
	// JTI is the token's unique id (RFC 7519 §4.1.7).
	JTI string
	// GrantID is the grant the token was issued under.
	GrantID string
	// ClientID, UserID, Scope and Resource copy the token's claims.
	ClientID, UserID, Scope, Resource string
	// CreatedAt, ExpiresAt and RevokedAt (zero if not revoked).
	CreatedAt, ExpiresAt, RevokedAt time.Time
}

// RefreshToken is an issued refresh token. The token itself is never
// stored.
type RefreshToken struct {
	// GrantID is the grant the token belongs to.
	GrantID string
	// ClientID, UserID, Scope and Resource are bound to the token.
	ClientID, UserID, Scope, Resource string
	// DPoPJKT is the RFC 7638 thumbprint of the DPoP key the token is
	// bound to (RFC 9449 §5): a refresh must prove possession of that
	// key. Empty: not bound.
	DPoPJKT string
	// CertThumbprint is the x5t#S256 (base64url SHA-256 of the DER) of
	// the TLS client certificate the token is bound to (RFC 8705 §4): a
	// refresh must come over a connection with that certificate. Empty:
	// not bound.
	CertThumbprint string
	// CreatedAt, ExpiresAt, RotatedAt (zero until exchanged) and
	// RevokedAt (zero if not revoked).
	CreatedAt, ExpiresAt, RotatedAt, RevokedAt time.Time
	// Successor is the sealed response that rotating this token produced
	// (see Grants.RefreshGrant); nil until rotated.
	Successor []byte
}

// Issue is what redeeming a code or a refresh token stores: the grant
// (only when a code is redeemed), the access-token record and the next
// refresh token.
type Issue struct {
	// Grant is created when a code is redeemed; ignored on refresh.
	Grant *Grant
	// Access is the record of the new access token.
	Access *AccessToken
	// Refresh is the new refresh token and Refreshed its record; both
	// empty when no refresh token is issued.
	Refresh   string
	Refreshed *RefreshToken
	// Sealed is stored on the rotated refresh token as its Successor.
	Sealed []byte
}

// AuthRequest is a validated authorization request waiting for the
// user's decision. Its id is never stored.
type AuthRequest struct {
	// ClientID is the requesting client.
	ClientID string
	// UserID is the user asked to decide.
	UserID string
	// CSRFHash is the SHA-256 of the anti-forgery token of the form.
	CSRFHash []byte
	// Params is the request, as JSON.
	Params []byte
	// CreatedAt, ExpiresAt and ConsumedAt (zero until decided).
	CreatedAt, ExpiresAt, ConsumedAt time.Time
}

// RevokedToken is an entry of the access-token deny-list.
type RevokedToken struct {
	// JTI is the revoked token's id.
	JTI string
	// ExpiresAt is when the token would have expired anyway.
	ExpiresAt time.Time
	// RevokedAt is when it was revoked.
	RevokedAt time.Time
}

// User is a person who logged in through an upstream provider.
type User struct {
	// ID is caddymcp's stable user id (the sub of access tokens).
	ID string
	// Provider and Subject identify the user upstream; together unique.
	Provider, Subject string
	// Email and EmailVerified as asserted by the provider.
	Email         string
	EmailVerified bool
	// Name and Picture for display.
	Name, Picture string
	// HostedDomain is Google's hd claim, if any.
	HostedDomain string
	// CreatedAt, UpdatedAt and LastLoginAt.
	CreatedAt, UpdatedAt, LastLoginAt time.Time
}

// Session is a server-side login session. Its id is never stored.
type Session struct {
	// IDHash is the SHA-256 of the session id (the cookie value); it is
	// the handle for listing and revoking sessions.
	IDHash []byte
	// UserID is the logged-in user.
	UserID string
	// UserAgent and RemoteAddr describe where the login came from.
	UserAgent, RemoteAddr string
	// CreatedAt and LastSeenAt.
	CreatedAt, LastSeenAt time.Time
	// IdleExpiresAt moves forward on each use; ExpiresAt is absolute.
	IdleExpiresAt, ExpiresAt time.Time
}

// Consent records the scope a user approved for a client.
type Consent struct {
	// UserID and ClientID; together unique.
	UserID, ClientID string
	// Scope is space-separated.
	Scope string
	// RedirectURI and Resource are those the consent was given for.
	RedirectURI, Resource string
	// CreatedAt and UpdatedAt.
	CreatedAt, UpdatedAt time.Time
}

// SigningKey is a private key used to sign access tokens.
type SigningKey struct {
	// ID is the key id (kid).
	ID string
	// Algorithm is the JWS algorithm, e.g. "ES256".
	Algorithm string
	// PrivateKey is the PKCS #8 DER encoding of the key.
	PrivateKey []byte
	// CreatedAt and RetiredAt (zero while the key signs).
	CreatedAt, RetiredAt time.Time
}

// Clients stores OAuth clients.
type Clients interface {
	// CreateClient stores c; ErrConflict if its ID exists.
	CreateClient(ctx context.Context, c *Client) error
	// GetClient returns a client or ErrNotFound.
	GetClient(ctx context.Context, id string) (*Client, error)
	// TouchClient records that a client was used at t.
	TouchClient(ctx context.Context, id string, t time.Time) error
	// DeleteClient removes a client and revokes its grants, codes and
	// consents; ErrNotFound if there is none.
	DeleteClient(ctx context.Context, id string) error
	// ListClients returns up to limit clients with IDs after afterID,
	// ordered by ID.
	ListClients(ctx context.Context, afterID string, limit int) ([]Client, error)
	// CountClients returns the number of clients.
	CountClients(ctx context.Context) (int, error)
	// DeleteStaleClients deletes clients not used since before and
	// holding no unrevoked grant, and returns how many.
	DeleteStaleClients(ctx context.Context, before time.Time) (int64, error)
	// DeleteUnusedClients deletes clients never used (LastUsedAt zero:
	// no authorization completed) created before before and holding no
	// unrevoked grant, and returns how many.
	DeleteUnusedClients(ctx context.Context, before time.Time) (int64, error)
	// EvictUnusedClient deletes the never-used client created first
	// (ties broken by ID) that holds no unrevoked grant, and returns its
	// ID; ErrNotFound if there is none.
	EvictUnusedClient(ctx context.Context) (string, error)
}

// Codes stores authorization codes.
type Codes interface {
	// CreateCode stores c under the hash of code; ErrConflict if the
	// code exists.
	CreateCode(ctx context.Context, code string, c *AuthCode) error
	// RedeemCode consumes the code and stores what issue returns (a
	// grant, an access-token record, a refresh token) in one transaction.
	// issue runs inside that transaction and must not call the store (it
	// would wait for a second connection, which may never come). It is
	// called with the unconsumed code; if it returns an error,
	// nothing changes and the code stays usable. Exactly one of any number
	// of concurrent callers succeeds. An unknown or expired code gives
	// ErrNotFound; a consumed code gives its record with ErrAlreadyUsed
	// (issue is not called).
	RedeemCode(ctx context.Context, code string, now time.Time, issue func(*AuthCode) (*Issue, error)) (*AuthCode, error)
}

// AuthRequests stores pending authorization requests.
type AuthRequests interface {
	// CreateAuthRequest stores r under the hash of id.
	CreateAuthRequest(ctx context.Context, id string, r *AuthRequest) error
	// ConsumeAuthRequest marks the request decided and returns it; only
	// one caller succeeds. Unknown or expired: ErrNotFound; already
	// decided: ErrAlreadyUsed.
	ConsumeAuthRequest(ctx context.Context, id string, now time.Time) (*AuthRequest, error)
}

// Grants stores grants, access-token records and refresh tokens.
type Grants interface {
	// CreateGrant stores g; ErrConflict if its ID exists.
	CreateGrant(ctx context.Context, g *Grant) error
	// GetGrant returns a grant (revoked or not) or ErrNotFound.
	GetGrant(ctx context.Context, id string) (*Grant, error)
	// ListGrantsByUser returns a user's active grants, newest first.
	ListGrantsByUser(ctx context.Context, userID string, now time.Time) ([]Grant, error)
	// RevokeGrant revokes a grant with all its access and refresh
	// tokens; ErrNotFound if there is none.
	RevokeGrant(ctx context.Context, id string, now time.Time) error

	// RecordAccessToken stores the record of an issued access token.
	RecordAccessToken(ctx context.Context, t *AccessToken) error
	// AccessTokenActive reports whether the token with this jti is known,
	// unexpired, and neither it nor its grant is revoked.
	AccessTokenActive(ctx context.Context, jti string, now time.Time) (bool, error)
	// RevokeAccessToken revokes one access token; ErrNotFound if unknown.
	RevokeAccessToken(ctx context.Context, jti string, now time.Time) error
	// RevokedAccessTokens returns the access tokens revoked at or after
	// since that have not expired at now, oldest revocation first.
	RevokedAccessTokens(ctx context.Context, since, now time.Time) ([]RevokedToken, error)

	// CreateRefreshToken stores t under the hash of token.
	CreateRefreshToken(ctx context.Context, token string, t *RefreshToken) error
	// GetRefreshToken returns an active refresh token or ErrNotFound.
	GetRefreshToken(ctx context.Context, token string, now time.Time) (*RefreshToken, error)
	// RefreshGrant rotates a refresh token: in one transaction it marks
	// the token used, calls issue with it and its grant, and stores the
	// new refresh token, the access-token record and the sealed response
	// (on the old token, as Successor). issue runs inside the transaction
	// and must not call the store. If issue fails nothing changes.
	// Exactly one of concurrent callers succeeds. An unknown, expired or
	// revoked token gives ErrNotFound; a token already rotated gives its
	// record (with Successor and RotatedAt) and ErrAlreadyUsed.
	RefreshGrant(ctx context.Context, token string, now time.Time, issue func(*RefreshToken, *Grant) (*Issue, error)) (*RefreshToken, error)
	// RevokeRefreshToken revokes a refresh token and its whole grant;
	// ErrNotFound if unknown.
	RevokeRefreshToken(ctx context.Context, token string, now time.Time) error
}

// Users stores users.
type Users interface {
	// UpsertUser creates or updates the user identified by (Provider,
	// Subject) and returns the stored record. A new user gets u.ID.
	UpsertUser(ctx context.Context, u *User) (*User, error)
	// GetUser returns a user or ErrNotFound.
	GetUser(ctx context.Context, id string) (*User, error)
	// FindUsers returns up to limit users whose email equals email
	// (ignoring case), or every user when email is empty, ordered by
	// email and id.
	FindUsers(ctx context.Context, email string, limit int) ([]User, error)
}

// Sessions stores login sessions.
type Sessions interface {
	// CreateSession stores s under the hash of id; ErrConflict if exists.
	CreateSession(ctx context.Context, id string, s *Session) error
	// GetSession returns the session if neither timeout has passed at
	// now, else ErrNotFound.
	GetSession(ctx context.Context, id string, now time.Time) (*Session, error)
	// TouchSession records use at now and moves the idle expiry to
	// idleUntil (never past the absolute expiry).
	TouchSession(ctx context.Context, id string, now, idleUntil time.Time) error
	// DeleteSession removes a session by its id; ErrNotFound if unknown.
	DeleteSession(ctx context.Context, id string) error
	// ListSessionsByUser returns a user's live sessions, newest first.
	ListSessionsByUser(ctx context.Context, userID string, now time.Time) ([]Session, error)
	// DeleteSessionByHash removes a session by its IDHash.
	DeleteSessionByHash(ctx context.Context, idHash []byte) error
	// DeleteSessionsByUser removes all of a user's sessions.
	DeleteSessionsByUser(ctx context.Context, userID string) (int64, error)
}

// Accounts is what a signed-in user may see and undo of their own: the
// applications they authorized and their sign-in sessions. Every method
// takes the user, and acts only on what belongs to that user.
type Accounts interface {
	// ListUserGrants returns the user's live grants (neither revoked nor
	// expired at now), newest first, with the names of their clients.
	ListUserGrants(ctx context.Context, userID string, now time.Time) ([]UserGrant, error)
	// RevokeUserGrant revokes the user's grant with this id, with all
	// its access and refresh tokens, and deletes the user's remembered
	// consent to the grant's client, so that the client's next
	// authorization asks the user again — all in one transaction. It
	// returns the grant as it was. A grant that is already revoked is
	// returned unchanged and its client's consent is kept (the user may
	// have approved the client again since): a second revocation changes
	// nothing. ErrNotFound if the user has no grant with this id, also
	// when another user has one.
	RevokeUserGrant(ctx context.Context, userID, grantID string, now time.Time) (*Grant, error)
	// EndUserSession deletes the user's session whose id hashes to
	// idHash (Session.IDHash). ErrNotFound if the user has no such
	// session, also when another user has one.
	EndUserSession(ctx context.Context, userID string, idHash []byte) error
}

// Consents stores consent decisions.
type Consents interface {
	// SaveConsent creates or replaces the consent of (UserID, ClientID).
	SaveConsent(ctx context.Context, c *Consent) error
	// GetConsent returns a consent or ErrNotFound.
	GetConsent(ctx context.Context, userID, clientID string) (*Consent, error)
	// ListConsentsByUser returns a user's consents.
	ListConsentsByUser(ctx context.Context, userID string) ([]Consent, error)
	// DeleteConsent removes a consent; ErrNotFound if there is none.
	DeleteConsent(ctx context.Context, userID, clientID string) error
}

// Keys stores signing keys.
type Keys interface {
	// SigningKeys returns all keys, newest first, retired ones included.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// EnsureSigningKey returns the newest unretired key, creating one with
	// generate if there is none. It is safe against concurrent callers in
	// this and other processes sharing the database: exactly one key is
	// created.
	EnsureSigningKey(ctx context.Context, generate func() (*SigningKey, error)) (*SigningKey, error)
	// AddSigningKey stores a new key (for rotation); ErrConflict if its
	// ID exists.
	AddSigningKey(ctx context.Context, k *SigningKey) error
	// RetireSigningKey marks a key retired at now, or keeps an earlier
	// retirement; ErrNotFound if unknown.
	RetireSigningKey(ctx context.Context, id string, now time.Time) error
	// RotateSigningKey adds a key from generate if the newest unretired
	// key was created before olderThan (or there is none), and retires
	// every other unretired key at the new key's CreatedAt (which may be
	// in the future: the key is published before it signs). It reports
	// whether it rotated, and is safe against concurrent callers in other
	// processes.
	RotateSigningKey(ctx context.Context, olderThan time.Time, generate func() (*SigningKey, error)) (bool, error)
}

// LegacyToken is an opaque access token of the system that predates
// OAuth, kept for a transition period. The token itself is stored only as
// a hash.
type LegacyToken struct {
	// ID is a public handle for listing and revoking, never the token.
	ID string
	// UserID is the user the token speaks for (the sub of the principal).
	UserID string
	// Scope is the space-separated granted scope.
	Scope string
	// Name describes the token (what or who uses it).
	Name string
	// CreatedAt is when the token was created.
	CreatedAt time.Time
	// ExpiresAt is when the token stops working.
	ExpiresAt time.Time
	// RevokedAt is when the token was revoked; zero if it was not.
	RevokedAt time.Time
}

// LegacyTokens stores legacy opaque access tokens.
type LegacyTokens interface {
	// CreateLegacyToken stores t under the hash of token; ErrConflict if
	// its ID or token exists.
	CreateLegacyToken(ctx context.Context, token string, t *LegacyToken) error
	// GetLegacyToken returns the token if it is neither expired at now
	// nor revoked, else ErrNotFound.
	GetLegacyToken(ctx context.Context, token string, now time.Time) (*LegacyToken, error)
	// ListLegacyTokens returns the tokens of a user (every token if
	// userID is empty), revoked and expired ones included, newest first.
	ListLegacyTokens(ctx context.Context, userID string) ([]LegacyToken, error)
	// RevokeLegacyToken revokes the token with this ID at now; ErrNotFound
	// if there is no such unrevoked token.
	RevokeLegacyToken(ctx context.Context, id string, now time.Time) error
}

// Secrets stores secrets that every instance sharing the database must
// agree on, such as the one DPoP nonces are derived from. Secrets are
// never rotated by the store.
type Secrets interface {
	// EnsureSecret returns the secret stored under name, first storing
	// the one generate makes if there is none. Concurrent callers, in
	// this and in other processes, all get the same secret.
	EnsureSecret(ctx context.Context, name string, now time.Time, generate func() ([]byte, error)) ([]byte, error)
}

// Store is everything a caddymcp store provides.
type Store interface {
	Clients
	Codes
	AuthRequests
	Grants
	Users
	Sessions
	Consents
	Accounts
	Keys
	LegacyTokens
	Secrets
	// Shop is the back office: products, bookings, orders and forms.
	Shop

	// Migrate applies pending schema migrations and returns the schema
	// version. It is safe against concurrent callers.
	Migrate(ctx context.Context) (int, error)
	// SchemaVersion returns the applied schema version (0 if none).
	SchemaVersion(ctx context.Context) (int, error)
	// DeleteExpired removes codes, requests, tokens, grants and sessions
	// that expired before now, and returns how many rows went.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close()
}
