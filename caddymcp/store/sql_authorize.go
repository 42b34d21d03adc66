// SQL of the authorization step: pending authorization requests (the
// consent screen's state) and authorization codes, whose redemption
// creates the grant and its first tokens in one transaction.

package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const authRequestCols = `client_id, user_id, csrf_hash, params, created_at, expires_at, consumed_at`

func (s *sqlStore) CreateAuthRequest(ctx context.Context, id string, r *AuthRequest) error {
	params := r.Params
	if len(params) == 0 {
		params = []byte("{}")
	}
	_, err := s.db.exec(ctx, `INSERT INTO auth_requests (id_hash, `+authRequestCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		Hash(id), r.ClientID, r.UserID, r.CSRFHash, string(params), ts(r.CreatedAt), ts(r.ExpiresAt), ts(r.ConsumedAt))
	if err != nil {
		return fmt.Errorf("creating authorization request: %w", err)
	}
	return nil
}

func scanAuthRequest(r row, a *AuthRequest) error {
	var (
		params               string
		createdAt, expiresAt time.Time
		consumed             nt
	)
	if err := r.Scan(&a.ClientID, &a.UserID, &a.CSRFHash, &params, &createdAt, &expiresAt, &consumed.t); err != nil {
		return err
	}
	a.Params = []byte(params)
	a.CreatedAt, a.ExpiresAt, a.ConsumedAt = createdAt.UTC(), expiresAt.UTC(), consumed.val()
	return nil
}

func (s *sqlStore) ConsumeAuthRequest(ctx context.Context, id string, now time.Time) (*AuthRequest, error) {
	h := Hash(id)
	a, err := queryOne(ctx, s.db, scanAuthRequest, `UPDATE auth_requests SET consumed_at = $2
		WHERE id_hash = $1 AND consumed_at IS NULL AND expires_at > $2 RETURNING `+authRequestCols, h, ts(now))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("consuming authorization request: %w", err)
	}
	a, err = queryOne(ctx, s.db, scanAuthRequest, `SELECT `+authRequestCols+` FROM auth_requests WHERE id_hash = $1`, h)
	switch {
	case err != nil:
		return nil, fmt.Errorf("consuming authorization request: %w", err)
	case !a.ConsumedAt.IsZero():
		return a, fmt.Errorf("consuming authorization request: %w", ErrAlreadyUsed)
	default:
		return nil, fmt.Errorf("consuming authorization request: %w", ErrNotFound)
	}
}

// ---- authorization codes ----

const codeCols = `grant_id, client_id, user_id, redirect_uri, scope, resource,
	code_challenge, code_challenge_method, dpop_jkt, created_at, expires_at, consumed_at`

func (s *sqlStore) CreateCode(ctx context.Context, code string, c *AuthCode) error {
	_, err := s.db.exec(ctx, `INSERT INTO authorization_codes (code_hash, `+codeCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		Hash(code), c.GrantID, c.ClientID, c.UserID, c.RedirectURI, c.Scope, c.Resource,
		c.CodeChallenge, c.CodeChallengeMethod, c.DPoPJKT, ts(c.CreatedAt), ts(c.ExpiresAt), ts(c.ConsumedAt))
	if err != nil {
		return fmt.Errorf("creating authorization code: %w", err)
	}
	return nil
}

func scanCode(r row, c *AuthCode) error {
	var (
		createdAt, expiresAt time.Time
		consumed             nt
	)
	if err := r.Scan(&c.GrantID, &c.ClientID, &c.UserID, &c.RedirectURI, &c.Scope, &c.Resource,
		&c.CodeChallenge, &c.CodeChallengeMethod, &c.DPoPJKT, &createdAt, &expiresAt, &consumed.t); err != nil {
		return err
	}
	c.CreatedAt, c.ExpiresAt, c.ConsumedAt = createdAt.UTC(), expiresAt.UTC(), consumed.val()
	return nil
}

func (s *sqlStore) RedeemCode(ctx context.Context, code string, now time.Time, issue func(*AuthCode) (*Issue, error)) (*AuthCode, error) {
	h := Hash(code)
	var c *AuthCode
	err := s.db.inTx(ctx, false, func(q querier) error {
		var err error
		c, err = queryOne(ctx, q, scanCode, `UPDATE authorization_codes SET consumed_at = $2
			WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2
			RETURNING `+codeCols, h, ts(now))
		if err != nil {
			return err
		}
		out, err := issue(c)
		if err != nil {
			return &callerError{err}
		}
		if out.Grant == nil {
			return errors.New("redeeming a code must create a grant")
		}
		if err := insertGrant(ctx, q, out.Grant); err != nil {
			return err
		}
		return storeIssue(ctx, q, out)
	})
	switch {
	case err == nil:
		return c, nil
	case !errors.Is(err, ErrNotFound): // a callerError never is
		return nil, txError("redeeming authorization code", err)
	}
	c, err = queryOne(ctx, s.db, scanCode, `SELECT `+codeCols+` FROM authorization_codes WHERE code_hash = $1`, h)
	switch {
	case err != nil:
		return nil, fmt.Errorf("redeeming authorization code: %w", err)
	case !c.ConsumedAt.IsZero():
		return c, fmt.Errorf("redeeming authorization code: %w", ErrAlreadyUsed)
	default: // expired
		return nil, fmt.Errorf("redeeming authorization code: %w", ErrNotFound)
	}
}
