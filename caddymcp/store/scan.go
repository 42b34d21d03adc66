// Row scanning for the SQL store: the one way a query's rows become
// values. Each stored type has a scanner next to its column list, and
// the helpers here run a query and apply it to the single row, to every
// row, or to one page of a paged list (after pgx's CollectOneRow and
// CollectRows). A statement that reads a few loose columns (a count, a
// status) calls row.Scan itself.

package store

import "context"

// scanner reads the current row into *v. It fills v in place, so that a
// result set is scanned straight into the slice that holds it.
type scanner[T any] func(r row, v *T) error

// queryOne runs a query that returns one row and scans it. Without a
// row the error is ErrNotFound, as both engines map it.
func queryOne[T any](ctx context.Context, q querier, scan scanner[T], stmt string, args ...any) (*T, error) {
	v := new(T)
	if err := scan(q.queryRow(ctx, stmt, args...), v); err != nil {
		return nil, err
	}
	return v, nil
}

// queryAll runs a query and scans every row it returns. It returns nil
// when there is no row. The caller wraps the error once, with what it
// was listing: a failed query and a failed scan fail the list alike.
func queryAll[T any](ctx context.Context, q querier, scan scanner[T], stmt string, args ...any) ([]T, error) {
	rs, err := q.query(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	return appendRows(nil, rs, scan)
}

// queryPage runs the statement of a paged list: stmt, a SELECT up to and
// including its ORDER BY, whose arguments are in a. It fetches one row
// more than limit, which only tells whether a next page exists, and
// returns the page with the cursor that key makes of the page's last
// item ("" when the list ends with this page).
func queryPage[T any](ctx context.Context, q querier, scan scanner[T], limit int, key func(*T) string, stmt string, a sqlArgs) ([]T, string, error) {
	rs, err := q.query(ctx, stmt+` LIMIT `+a.add(int64(limit+1)), a...)
	if err != nil {
		return nil, "", err
	}
	// The page's capacity is known: the slice is allocated once.
	items, err := appendRows(make([]T, 0, limit+1), rs, scan)
	if err != nil {
		return nil, "", err
	}
	if len(items) <= limit {
		return items, "", nil
	}
	items = items[:limit]
	return items, key(&items[limit-1]), nil
}

// appendRows scans every row of rs onto dst and closes it.
func appendRows[T any](dst []T, rs rows, scan scanner[T]) ([]T, error) {
	defer rs.Close()
	for rs.Next() {
		dst = append(dst, *new(T))
		if err := scan(rs, &dst[len(dst)-1]); err != nil {
			return nil, err
		}
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return dst, nil
}
