// Row scanning for the SQL store: the one way a query's rows become
// values. Each stored type has a scanner next to its column list, and
// the helpers here apply it to a single row or to a whole result set
// (after pgx's CollectOneRow, CollectRows and AppendRows). A statement
// that reads a few loose columns (a count, a status) calls row.Scan
// itself.

package store

// scanner reads the current row into *v. It fills v in place, so that a
// result set is scanned straight into the slice that holds it.
type scanner[T any] func(r row, v *T) error

// scanRow scans the single row of a queryRow. Without a row the error
// is ErrNotFound, as both engines map it.
func scanRow[T any](r row, scan scanner[T]) (*T, error) {
	v := new(T)
	if err := scan(r, v); err != nil {
		return nil, err
	}
	return v, nil
}

// scanRows scans every row of rs and closes it. It returns nil when
// there is no row.
func scanRows[T any](rs rows, scan scanner[T]) ([]T, error) {
	return appendRows(nil, rs, scan)
}

// appendRows scans every row of rs onto dst and closes it. A caller that
// knows how many rows to expect (a page) passes a slice of that capacity,
// so that it is allocated once.
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
