// SQL helpers of the back office (products, bookings, orders, forms):
// statements built piece by piece, row locks, and the opaque cursors of
// paged lists.

package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// sqlArgs numbers the arguments of a statement built piece by piece.
type sqlArgs []any

// add appends v and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// where joins conditions into a WHERE clause ("" for none).
func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// forUpdate locks the selected rows until the transaction ends. SQLite
// needs no row locks: its writing transactions run one at a time.
func (s *sqlStore) forUpdate() string {
	if s.db.dialect() == "postgres" {
		return " FOR UPDATE"
	}
	return ""
}

// lockResource serializes, until the transaction ends, the transactions
// that book one resource. SQLite's writing transactions are serialized
// already (BEGIN IMMEDIATE).
func (s *sqlStore) lockResource(ctx context.Context, q querier, resource string) error {
	if s.db.dialect() != "postgres" {
		return nil
	}
	_, err := q.exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('booking:' || $1::text, 0))`, resource)
	return err
}

// Cursors are base64url JSON arrays of strings: the list's kind, then
// the sort key of the last item of the page.
func encodeCursor(kind string, key ...string) string {
	b, _ := json.Marshal(append([]string{kind}, key...)) // strings always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c, kind string, n int) ([]string, error) {
	bad := Invalid("cursor", "is not a cursor that this list returned")
	if len(c) > 2048 {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, bad
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil || len(v) != n+1 || v[0] != kind {
		return nil, bad
	}
	return v[1:], nil
}

func timeKey(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// decodeTimeCursor decodes a cursor keyed by a time and an id.
func decodeTimeCursor(c, kind string) (time.Time, string, error) {
	v, err := decodeCursor(c, kind, 2)
	if err != nil {
		return time.Time{}, "", err
	}
	us, perr := strconv.ParseInt(v[0], 10, 64)
	if perr != nil {
		return time.Time{}, "", Invalid("cursor", "is not a cursor that this list returned")
	}
	return time.UnixMicro(us).UTC(), v[1], nil
}

// likeContains is a LIKE pattern (with ESCAPE '\') matching s anywhere.
func likeContains(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}

// fold is the case-insensitive form of a text to search.
func fold(s string) string { return strings.ToLower(s) }

// scanned puts the times of a scanned Audit in UTC.
func (a *Audit) scanned() {
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
}
