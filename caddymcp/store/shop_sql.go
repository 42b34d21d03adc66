package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StockError is the ErrInsufficientStock of one product: what was
// asked of it and what it has. errors.Is(err, ErrInsufficientStock)
// holds for it.
type StockError struct {
	// ProductID is the product that lacks stock.
	ProductID string
	// Available is its stock when the request failed.
	Available int64
	// Requested is the quantity the request needed.
	Requested int64
}

func (e *StockError) Error() string {
	return fmt.Sprintf("%v: product %s has %d available, %d requested", ErrInsufficientStock, e.ProductID, e.Available, e.Requested)
}

// Unwrap returns ErrInsufficientStock.
func (e *StockError) Unwrap() error { return ErrInsufficientStock }

// ---- helpers ----

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

// nextPage trims the extra row fetched to detect a following page and
// returns the cursor of that page ("" if there is none).
func nextPage[T any](items []T, limit int, key func(*T) string) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, key(&items[limit-1])
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

// ---- products ----

const productCols = `id, sku, name, description, price_minor, currency, stock, deleted_at,
	created_at, updated_at, created_by, updated_by`

func scanProduct(r row, p *Product) error {
	var deleted nt
	if err := r.Scan(&p.ID, &p.SKU, &p.Name, &p.Description, &p.PriceMinor, &p.Currency, &p.Stock,
		&deleted.t, &p.CreatedAt, &p.UpdatedAt, &p.CreatedBy, &p.UpdatedBy); err != nil {
		return err
	}
	p.DeletedAt = deleted.val()
	p.scanned()
	return nil
}

func (s *sqlStore) CreateProduct(ctx context.Context, p *Product) error {
	if err := validateProduct(p); err != nil {
		return fmt.Errorf("creating product: %w", err)
	}
	_, err := s.db.exec(ctx, `INSERT INTO products (id, sku, name, name_fold, description, price_minor,
		currency, stock, created_at, updated_at, created_by, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		p.ID, p.SKU, p.Name, fold(p.Name), p.Description, p.PriceMinor, p.Currency, p.Stock,
		ts(p.CreatedAt), ts(p.UpdatedAt), p.CreatedBy, p.UpdatedBy)
	if err != nil {
		return fmt.Errorf("creating product %s: %w", p.ID, err)
	}
	return nil
}

func (s *sqlStore) GetProduct(ctx context.Context, id string) (*Product, error) {
	p, err := scanRow(s.db.queryRow(ctx, `SELECT `+productCols+` FROM products WHERE id = $1`, id), scanProduct)
	if err != nil {
		return nil, fmt.Errorf("getting product %s: %w", id, err)
	}
	return p, nil
}

func (s *sqlStore) ListProducts(ctx context.Context, f ProductFilter) ([]Product, string, error) {
	limit, err := pageLimit(f.Page)
	if err == nil {
		err = checkText("query", f.Query, 0, maxQueryLen, false)
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing products: %w", err)
	}
	var (
		a     sqlArgs
		conds []string
	)
	if !f.IncludeDeleted {
		conds = append(conds, `deleted_at IS NULL`)
	}
	if f.Query != "" {
		p := a.add(likeContains(fold(f.Query)))
		conds = append(conds, `(name_fold LIKE `+p+` ESCAPE '\' OR lower(sku) LIKE `+p+` ESCAPE '\')`)
	}
	if f.Cursor != "" {
		key, err := decodeCursor(f.Cursor, "products", 2)
		if err != nil {
			return nil, "", fmt.Errorf("listing products: %w", err)
		}
		conds = append(conds, `(name, id) > (`+a.add(key[0])+`, `+a.add(key[1])+`)`)
	}
	rs, err := s.db.query(ctx, `SELECT `+productCols+` FROM products`+where(conds)+
		` ORDER BY name, id LIMIT `+a.add(int64(limit+1)), a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing products: %w", err)
	}
	list, err := appendRows(make([]Product, 0, limit+1), rs, scanProduct)
	if err != nil {
		return nil, "", fmt.Errorf("listing products: %w", err)
	}
	list, next := nextPage(list, limit, func(p *Product) string { return encodeCursor("products", p.Name, p.ID) })
	return list, next, nil
}

func (s *sqlStore) UpdateProduct(ctx context.Context, id string, ch ProductChange, by string, now time.Time) (*Product, error) {
	if err := checkChange(by, now); err != nil {
		return nil, fmt.Errorf("updating product: %w", err)
	}
	if err := validateProductChange(ch); err != nil {
		return nil, fmt.Errorf("updating product: %w", err)
	}
	if ch == (ProductChange{}) {
		// Nothing to change: report the product as it is.
		p, err := s.GetProduct(ctx, id)
		if err == nil && !p.DeletedAt.IsZero() {
			err = fmt.Errorf("product %s is deleted: %w", id, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("updating product: %w", err)
		}
		return p, nil
	}
	var name, nameFold any
	if ch.Name != nil {
		name, nameFold = *ch.Name, fold(*ch.Name)
	}
	p, err := scanRow(s.db.queryRow(ctx, `UPDATE products SET
		sku = COALESCE($2, sku), name = COALESCE($3, name), name_fold = COALESCE($4, name_fold),
		description = COALESCE($5, description), price_minor = COALESCE($6, price_minor),
		currency = COALESCE($7, currency), updated_at = $8, updated_by = $9
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+productCols,
		id, deref(ch.SKU), name, nameFold, deref(ch.Description), deref(ch.PriceMinor), deref(ch.Currency), ts(now), by), scanProduct)
	if err != nil {
		return nil, fmt.Errorf("updating product %s: %w", id, err)
	}
	return p, nil
}

// deref is *p, or nil (SQL NULL) for a nil p.
func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func (s *sqlStore) DeleteProduct(ctx context.Context, id, by string, now time.Time) error {
	if err := checkChange(by, now); err != nil {
		return fmt.Errorf("deleting product: %w", err)
	}
	n, err := s.db.exec(ctx, `UPDATE products SET deleted_at = $2, updated_at = $2, updated_by = $3
		WHERE id = $1 AND deleted_at IS NULL`, id, ts(now), by)
	return affected("deleting product "+id, n, err)
}

func (s *sqlStore) AdjustStock(ctx context.Context, id string, delta int64, by string, now time.Time) (*Product, error) {
	if err := checkChange(by, now); err != nil {
		return nil, fmt.Errorf("adjusting stock: %w", err)
	}
	if err := checkStockDelta(delta); err != nil {
		return nil, fmt.Errorf("adjusting stock: %w", err)
	}
	for attempt := 1; ; attempt++ {
		p, err := scanRow(s.db.queryRow(ctx, `UPDATE products SET stock = stock + $2, updated_at = $3, updated_by = $4
			WHERE id = $1 AND deleted_at IS NULL AND stock + $2 >= 0 AND stock + $2 <= $5
			RETURNING `+productCols, id, delta, ts(now), by, MaxStock), scanProduct)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("adjusting stock of product %s: %w", id, err)
		}
		// No row changed: tell why.
		var (
			stock   int64
			deleted nt
		)
		err = s.db.queryRow(ctx, `SELECT stock, deleted_at FROM products WHERE id = $1`, id).Scan(&stock, &deleted.t)
		switch {
		case err != nil:
			return nil, fmt.Errorf("adjusting stock of product %s: %w", id, err)
		case deleted.t != nil:
			return nil, fmt.Errorf("adjusting stock: product %s is deleted: %w", id, ErrNotFound)
		case stock+delta < 0:
			return nil, fmt.Errorf("adjusting stock: %w", &StockError{ProductID: id, Available: stock, Requested: -delta})
		case stock+delta > MaxStock:
			return nil, fmt.Errorf("adjusting stock: %w", Invalid("delta", "the stock of product %s would exceed %d", id, MaxStock))
		}
		// The stock changed in between and the adjustment fits now.
		if attempt == 5 {
			return nil, fmt.Errorf("adjusting stock: the stock of product %s keeps changing, try again: %w", id, ErrConflict)
		}
	}
}

// ---- bookings ----

const bookingCols = `id, resource, customer, notes, start_at, end_at, status,
	created_at, updated_at, created_by, updated_by`

func scanBooking(r row, b *Booking) error {
	if err := r.Scan(&b.ID, &b.Resource, &b.Customer, &b.Notes, &b.Start, &b.End, &b.Status,
		&b.CreatedAt, &b.UpdatedAt, &b.CreatedBy, &b.UpdatedBy); err != nil {
		return err
	}
	b.Start, b.End = b.Start.UTC(), b.End.UTC()
	b.scanned()
	return nil
}

// claimSlot locks b's resource for the transaction and fails with
// ErrSlotTaken if another confirmed booking of it overlaps [Start, End).
// No booking lasts longer than MaxBookingDuration, so only those that
// start less than that before b's start can overlap it.
func (s *sqlStore) claimSlot(ctx context.Context, q querier, b *Booking) error {
	if err := s.lockResource(ctx, q, b.Resource); err != nil {
		return err
	}
	o, err := scanRow(q.queryRow(ctx, `SELECT `+bookingCols+` FROM bookings
		WHERE resource = $1 AND status = 'confirmed' AND start_at < $3 AND start_at > $4 AND end_at > $2
		AND id <> $5 ORDER BY start_at, id LIMIT 1`,
		b.Resource, ts(b.Start), ts(b.End), ts(b.Start.Add(-MaxBookingDuration)), b.ID), scanBooking)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: %s is booked from %s to %s (booking %s)", ErrSlotTaken, b.Resource,
		o.Start.Format(time.RFC3339), o.End.Format(time.RFC3339), o.ID)
}

func (s *sqlStore) CreateBooking(ctx context.Context, b *Booking) error {
	if err := validateBooking(b); err != nil {
		return fmt.Errorf("creating booking: %w", err)
	}
	b.Status = BookingConfirmed
	err := s.db.inTx(ctx, false, func(q querier) error {
		if err := s.claimSlot(ctx, q, b); err != nil {
			return err
		}
		_, err := q.exec(ctx, `INSERT INTO bookings (`+bookingCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			b.ID, b.Resource, b.Customer, b.Notes, ts(b.Start), ts(b.End), b.Status,
			ts(b.CreatedAt), ts(b.UpdatedAt), b.CreatedBy, b.UpdatedBy)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating booking %s: %w", b.ID, err)
	}
	return nil
}

func (s *sqlStore) GetBooking(ctx context.Context, id string) (*Booking, error) {
	b, err := scanRow(s.db.queryRow(ctx, `SELECT `+bookingCols+` FROM bookings WHERE id = $1`, id), scanBooking)
	if err != nil {
		return nil, fmt.Errorf("getting booking %s: %w", id, err)
	}
	return b, nil
}

func (s *sqlStore) ListBookings(ctx context.Context, f BookingFilter) ([]Booking, string, error) {
	limit, err := pageLimit(f.Page)
	switch {
	case err != nil:
	case f.Status != "" && f.Status != BookingConfirmed && f.Status != BookingCancelled:
		err = Invalid("status", "must be %s or %s", BookingConfirmed, BookingCancelled)
	case !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From):
		err = Invalid("to", "must be after from")
	default:
		err = checkText("resource", f.Resource, 0, maxResourceLen, false)
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing bookings: %w", err)
	}
	var (
		a     sqlArgs
		conds []string
	)
	if !f.From.IsZero() {
		conds = append(conds, `end_at > `+a.add(ts(f.From)))
	}
	if !f.To.IsZero() {
		conds = append(conds, `start_at < `+a.add(ts(f.To)))
	}
	if f.Status != "" {
		conds = append(conds, `status = `+a.add(f.Status))
	}
	if f.Resource != "" {
		conds = append(conds, `resource = `+a.add(f.Resource))
	}
	if f.Cursor != "" {
		t, id, err := decodeTimeCursor(f.Cursor, "bookings")
		if err != nil {
			return nil, "", fmt.Errorf("listing bookings: %w", err)
		}
		conds = append(conds, `(start_at, id) > (`+a.add(ts(t))+`, `+a.add(id)+`)`)
	}
	rs, err := s.db.query(ctx, `SELECT `+bookingCols+` FROM bookings`+where(conds)+
		` ORDER BY start_at, id LIMIT `+a.add(int64(limit+1)), a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing bookings: %w", err)
	}
	list, err := appendRows(make([]Booking, 0, limit+1), rs, scanBooking)
	if err != nil {
		return nil, "", fmt.Errorf("listing bookings: %w", err)
	}
	list, next := nextPage(list, limit, func(b *Booking) string { return encodeCursor("bookings", timeKey(b.Start), b.ID) })
	return list, next, nil
}

func (s *sqlStore) UpdateBooking(ctx context.Context, id string, ch BookingChange, by string, now time.Time) (*Booking, error) {
	if err := checkChange(by, now); err != nil {
		return nil, fmt.Errorf("updating booking: %w", err)
	}
	var out *Booking
	err := s.db.inTx(ctx, false, func(q querier) error {
		cur, err := scanRow(q.queryRow(ctx, `SELECT `+bookingCols+` FROM bookings WHERE id = $1`+s.forUpdate(), id), scanBooking)
		if err != nil {
			return err
		}
		if cur.Status != BookingConfirmed {
			return fmt.Errorf("booking %s is %s: %w", id, cur.Status, ErrNotFound)
		}
		if ch == (BookingChange{}) {
			out = cur
			return nil
		}
		b := *cur
		for _, c := range []struct {
			to   *string
			from *string
		}{{&b.Resource, ch.Resource}, {&b.Customer, ch.Customer}, {&b.Notes, ch.Notes}} {
			if c.from != nil {
				*c.to = *c.from
			}
		}
		if ch.Start != nil {
			b.Start = *ch.Start
		}
		if ch.End != nil {
			b.End = *ch.End
		}
		if err := validateBookingFields(&b); err != nil {
			return err
		}
		b.UpdatedAt, b.UpdatedBy = utcMicro(now), by
		if b.Resource != cur.Resource || !b.Start.Equal(cur.Start) || !b.End.Equal(cur.End) {
			if err := s.claimSlot(ctx, q, &b); err != nil {
				return err
			}
		}
		if _, err := q.exec(ctx, `UPDATE bookings SET resource = $2, customer = $3, notes = $4,
			start_at = $5, end_at = $6, updated_at = $7, updated_by = $8 WHERE id = $1`,
			id, b.Resource, b.Customer, b.Notes, ts(b.Start), ts(b.End), ts(b.UpdatedAt), b.UpdatedBy); err != nil {
			return err
		}
		out = &b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("updating booking %s: %w", id, err)
	}
	return out, nil
}

func (s *sqlStore) CancelBooking(ctx context.Context, id, by string, now time.Time) (*Booking, error) {
	if err := checkChange(by, now); err != nil {
		return nil, fmt.Errorf("cancelling booking: %w", err)
	}
	b, err := scanRow(s.db.queryRow(ctx, `UPDATE bookings SET status = 'cancelled', updated_at = $2, updated_by = $3
		WHERE id = $1 AND status = 'confirmed' RETURNING `+bookingCols, id, ts(now), by), scanBooking)
	if err != nil {
		return nil, fmt.Errorf("cancelling booking %s: %w", id, err)
	}
	return b, nil
}

// ---- orders ----

const orderCols = `id, customer, status, total_minor, currency, created_at, updated_at, created_by, updated_by`

func scanOrder(r row, o *Order) error {
	if err := r.Scan(&o.ID, &o.Customer, &o.Status, &o.TotalMinor, &o.Currency,
		&o.CreatedAt, &o.UpdatedAt, &o.CreatedBy, &o.UpdatedBy); err != nil {
		return err
	}
	o.scanned()
	return nil
}

// loadItems fills in the items of orders.
func loadItems(ctx context.Context, q querier, orders []Order) error {
	if len(orders) == 0 {
		return nil
	}
	var a sqlArgs
	ph := make([]string, len(orders))
	at := make(map[string]int, len(orders))
	for i, o := range orders {
		ph[i] = a.add(o.ID)
		at[o.ID] = i
	}
	rs, err := q.query(ctx, `SELECT order_id, product_id, name, quantity, unit_price_minor, line_minor
		FROM order_items WHERE order_id IN (`+strings.Join(ph, ", ")+`) ORDER BY order_id, line_no`, a...)
	if err != nil {
		return err
	}
	type itemRow struct {
		orderID string
		item    OrderItem
	}
	items, err := scanRows(rs, func(r row, v *itemRow) error {
		it := &v.item
		return r.Scan(&v.orderID, &it.ProductID, &it.Name, &it.Quantity, &it.UnitPriceMinor, &it.LineMinor)
	})
	if err != nil {
		return err
	}
	for _, v := range items {
		o := &orders[at[v.orderID]]
		o.Items = append(o.Items, v.item)
	}
	return nil
}

func getOrder(ctx context.Context, q querier, id string) (*Order, error) {
	o, err := scanRow(q.queryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE id = $1`, id), scanOrder)
	if err != nil {
		return nil, err
	}
	list := []Order{*o}
	if err := loadItems(ctx, q, list); err != nil {
		return nil, err
	}
	return &list[0], nil
}

func (s *sqlStore) CreateOrder(ctx context.Context, id, customer string, lines []OrderLine, by string, now time.Time) (*Order, error) {
	if err := validateOrder(id, customer, lines); err != nil {
		return nil, fmt.Errorf("creating order: %w", err)
	}
	if err := checkChange(by, now); err != nil {
		return nil, fmt.Errorf("creating order: %w", err)
	}
	now = utcMicro(now)
	o := &Order{ID: id, Customer: customer, Status: OrderPending, Items: make([]OrderItem, len(lines)),
		Audit: Audit{CreatedAt: now, UpdatedAt: now, CreatedBy: by, UpdatedBy: by}}
	err := s.db.inTx(ctx, false, func(q querier) error {
		// Check every product first, in the order of the lines, so that
		// the first bad line is the one reported.
		for i, l := range lines {
			p, err := scanRow(q.queryRow(ctx, `SELECT `+productCols+` FROM products WHERE id = $1`, l.ProductID), scanProduct)
			field := fmt.Sprintf("items[%d].product_id", i)
			switch {
			case errors.Is(err, ErrNotFound):
				return Invalid(field, "there is no product %q", l.ProductID)
			case err != nil:
				return err
			case !p.DeletedAt.IsZero():
				return Invalid(field, "product %q is deleted", l.ProductID)
			case o.Currency == "":
				o.Currency = p.Currency
			case p.Currency != o.Currency:
				return Invalid("items", "an order is in one currency: product %q is priced in %s, not %s", l.ProductID, p.Currency, o.Currency)
			}
		}
		// Take the stock in the order of product ids: concurrent orders
		// lock rows in the same order and cannot deadlock. The prices are
		// those of the rows as locked.
		order := make([]int, len(lines))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(i, j int) int { return strings.Compare(lines[i].ProductID, lines[j].ProductID) })
		for _, i := range order {
			l := lines[i]
			it := OrderItem{ProductID: l.ProductID, Quantity: l.Quantity}
			var currency string
			err := q.queryRow(ctx, `UPDATE products SET stock = stock - $2, updated_at = $3, updated_by = $4
				WHERE id = $1 AND deleted_at IS NULL AND stock >= $2 RETURNING name, price_minor, currency`,
				l.ProductID, l.Quantity, ts(now), by).Scan(&it.Name, &it.UnitPriceMinor, &currency)
			if errors.Is(err, ErrNotFound) {
				return orderLineFailure(ctx, q, i, l)
			}
			if err != nil {
				return err
			}
			if currency != o.Currency {
				return Invalid("items", "an order is in one currency: product %q is priced in %s, not %s", l.ProductID, currency, o.Currency)
			}
			it.LineMinor = it.UnitPriceMinor * it.Quantity
			o.Items[i] = it
		}
		for _, it := range o.Items {
			o.TotalMinor += it.LineMinor
		}
		if _, err := q.exec(ctx, `INSERT INTO orders (`+orderCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			o.ID, o.Customer, o.Status, o.TotalMinor, o.Currency, ts(o.CreatedAt), ts(o.UpdatedAt), o.CreatedBy, o.UpdatedBy); err != nil {
			return err
		}
		for i, it := range o.Items {
			if _, err := q.exec(ctx, `INSERT INTO order_items (order_id, line_no, product_id, name, quantity,
				unit_price_minor, line_minor) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				o.ID, int64(i), it.ProductID, it.Name, it.Quantity, it.UnitPriceMinor, it.LineMinor); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("creating order %s: %w", id, err)
	}
	return o, nil
}

// orderLineFailure tells why the stock of line i could not be taken.
func orderLineFailure(ctx context.Context, q querier, i int, l OrderLine) error {
	var (
		stock   int64
		deleted nt
	)
	err := q.queryRow(ctx, `SELECT stock, deleted_at FROM products WHERE id = $1`, l.ProductID).Scan(&stock, &deleted.t)
	switch {
	case errors.Is(err, ErrNotFound):
		return Invalid(fmt.Sprintf("items[%d].product_id", i), "there is no product %q", l.ProductID)
	case err != nil:
		return err
	case deleted.t != nil:
		return Invalid(fmt.Sprintf("items[%d].product_id", i), "product %q is deleted", l.ProductID)
	}
	return &StockError{ProductID: l.ProductID, Available: stock, Requested: l.Quantity}
}

func (s *sqlStore) GetOrder(ctx context.Context, id string) (*Order, error) {
	o, err := getOrder(ctx, s.db, id)
	if err != nil {
		return nil, fmt.Errorf("getting order %s: %w", id, err)
	}
	return o, nil
}

func (s *sqlStore) ListOrders(ctx context.Context, f OrderFilter) ([]Order, string, error) {
	limit, err := pageLimit(f.Page)
	if err == nil && f.Status != "" {
		err = checkOrderStatus("status", f.Status)
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing orders: %w", err)
	}
	var (
		a     sqlArgs
		conds []string
	)
	if f.Status != "" {
		conds = append(conds, `status = `+a.add(f.Status))
	}
	if f.Cursor != "" {
		t, id, err := decodeTimeCursor(f.Cursor, "orders")
		if err != nil {
			return nil, "", fmt.Errorf("listing orders: %w", err)
		}
		conds = append(conds, `(created_at, id) < (`+a.add(ts(t))+`, `+a.add(id)+`)`)
	}
	rs, err := s.db.query(ctx, `SELECT `+orderCols+` FROM orders`+where(conds)+
		` ORDER BY created_at DESC, id DESC LIMIT `+a.add(int64(limit+1)), a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing orders: %w", err)
	}
	list, err := appendRows(make([]Order, 0, limit+1), rs, scanOrder)
	if err != nil {
		return nil, "", fmt.Errorf("listing orders: %w", err)
	}
	list, next := nextPage(list, limit, func(o *Order) string { return encodeCursor("orders", timeKey(o.CreatedAt), o.ID) })
	if err := loadItems(ctx, s.db, list); err != nil {
		return nil, "", fmt.Errorf("listing orders: %w", err)
	}
	return list, next, nil
}

func (s *sqlStore) SetOrderStatus(ctx context.Context, id, status, by string, now time.Time) (*Order, error) {
	if err := checkOrderStatus("status", status); err != nil {
		return nil, fmt.Errorf("changing order status: %w", err)
	}
	if err := checkChange(by, now); err != nil {
		return nil, fmt.Errorf("changing order status: %w", err)
	}
	var o *Order
	err := s.db.inTx(ctx, false, func(q querier) error {
		var cur string
		if err := q.queryRow(ctx, `SELECT status FROM orders WHERE id = $1`+s.forUpdate(), id).Scan(&cur); err != nil {
			return err
		}
		if !canTransition(cur, status) {
			return fmt.Errorf("%w: order %s is %s and cannot become %s", ErrInvalidTransition, id, cur, status)
		}
		if _, err := q.exec(ctx, `UPDATE orders SET status = $2, updated_at = $3, updated_by = $4 WHERE id = $1`,
			id, status, ts(now), by); err != nil {
			return err
		}
		if status == OrderCancelled {
			if err := restoreStock(ctx, q, id, by, now); err != nil {
				return err
			}
		}
		var err error
		o, err = getOrder(ctx, q, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("changing status of order %s: %w", id, err)
	}
	return o, nil
}

// restoreStock gives the quantities of an order's lines back to their
// products, deleted ones included, in the order of product ids.
func restoreStock(ctx context.Context, q querier, orderID, by string, now time.Time) error {
	rs, err := q.query(ctx, `SELECT product_id, quantity FROM order_items WHERE order_id = $1 ORDER BY product_id`, orderID)
	if err != nil {
		return err
	}
	// The rows are read to the end, and closed, before the updates: a
	// connection runs one statement at a time.
	lines, err := scanRows(rs, func(r row, l *OrderLine) error { return r.Scan(&l.ProductID, &l.Quantity) })
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := q.exec(ctx, `UPDATE products SET stock = stock + $2, updated_at = $3, updated_by = $4 WHERE id = $1`,
			l.ProductID, l.Quantity, ts(now), by); err != nil {
			return err
		}
	}
	return nil
}

// ---- forms ----

// fieldJSON is how a FormField is stored.
type fieldJSON struct {
	Name      string   `json:"name"`
	Label     string   `json:"label"`
	Type      string   `json:"type"`
	Required  bool     `json:"required,omitempty"`
	MinLength int      `json:"min_length,omitempty"`
	MaxLength int      `json:"max_length,omitempty"`
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
	Choices   []string `json:"choices,omitempty"`
}

const formCols = `id, title, description, fields, created_at, updated_at, created_by, updated_by`

func scanForm(r row, f *Form) error {
	var fields string
	if err := r.Scan(&f.ID, &f.Title, &f.Description, &fields, &f.CreatedAt, &f.UpdatedAt, &f.CreatedBy, &f.UpdatedBy); err != nil {
		return err
	}
	var stored []fieldJSON
	if err := json.Unmarshal([]byte(fields), &stored); err != nil {
		return fmt.Errorf("decoding the fields of form %s: %w", f.ID, err)
	}
	f.Fields = make([]FormField, len(stored))
	for i, fd := range stored {
		f.Fields[i] = FormField(fd)
	}
	f.scanned()
	return nil
}

func (s *sqlStore) CreateForm(ctx context.Context, f *Form) error {
	if err := validateForm(f); err != nil {
		return fmt.Errorf("creating form: %w", err)
	}
	stored := make([]fieldJSON, len(f.Fields))
	for i, fd := range f.Fields {
		stored[i] = fieldJSON(fd)
	}
	fields, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("creating form: encoding fields: %w", err)
	}
	_, err = s.db.exec(ctx, `INSERT INTO forms (`+formCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		f.ID, f.Title, f.Description, string(fields), ts(f.CreatedAt), ts(f.UpdatedAt), f.CreatedBy, f.UpdatedBy)
	if err != nil {
		return fmt.Errorf("creating form %s: %w", f.ID, err)
	}
	return nil
}

func (s *sqlStore) GetForm(ctx context.Context, id string) (*Form, error) {
	f, err := scanRow(s.db.queryRow(ctx, `SELECT `+formCols+` FROM forms WHERE id = $1`, id), scanForm)
	if err != nil {
		return nil, fmt.Errorf("getting form %s: %w", id, err)
	}
	return f, nil
}

func (s *sqlStore) ListForms(ctx context.Context, p Page) ([]Form, string, error) {
	limit, err := pageLimit(p)
	if err != nil {
		return nil, "", fmt.Errorf("listing forms: %w", err)
	}
	var (
		a     sqlArgs
		conds []string
	)
	if p.Cursor != "" {
		t, id, err := decodeTimeCursor(p.Cursor, "forms")
		if err != nil {
			return nil, "", fmt.Errorf("listing forms: %w", err)
		}
		conds = append(conds, `(created_at, id) < (`+a.add(ts(t))+`, `+a.add(id)+`)`)
	}
	rs, err := s.db.query(ctx, `SELECT `+formCols+` FROM forms`+where(conds)+
		` ORDER BY created_at DESC, id DESC LIMIT `+a.add(int64(limit+1)), a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing forms: %w", err)
	}
	list, err := appendRows(make([]Form, 0, limit+1), rs, scanForm)
	if err != nil {
		return nil, "", fmt.Errorf("listing forms: %w", err)
	}
	list, next := nextPage(list, limit, func(f *Form) string { return encodeCursor("forms", timeKey(f.CreatedAt), f.ID) })
	return list, next, nil
}

const submissionCols = `id, form_id, answers, created_at, updated_at, created_by, updated_by`

func scanSubmission(r row, sub *Submission) error {
	var answers string
	if err := r.Scan(&sub.ID, &sub.FormID, &answers, &sub.CreatedAt, &sub.UpdatedAt, &sub.CreatedBy, &sub.UpdatedBy); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(answers), &sub.Values); err != nil {
		return fmt.Errorf("decoding submission %s: %w", sub.ID, err)
	}
	sub.scanned()
	return nil
}

func (s *sqlStore) SubmitForm(ctx context.Context, sub *Submission) error {
	err := checkID("id", sub.ID)
	if err == nil {
		err = checkID("form_id", sub.FormID)
	}
	if err == nil {
		err = checkAudit(&sub.Audit)
	}
	if err != nil {
		return fmt.Errorf("submitting form: %w", err)
	}
	var values map[string]any
	err = s.db.inTx(ctx, false, func(q querier) error {
		f, err := scanRow(q.queryRow(ctx, `SELECT `+formCols+` FROM forms WHERE id = $1`, sub.FormID), scanForm)
		if err != nil {
			return err
		}
		if values, err = validateSubmission(f.Fields, sub.Values); err != nil {
			return err
		}
		answers, err := json.Marshal(values)
		if err != nil {
			return fmt.Errorf("encoding answers: %w", err)
		}
		_, err = q.exec(ctx, `INSERT INTO form_submissions (`+submissionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			sub.ID, sub.FormID, string(answers), ts(sub.CreatedAt), ts(sub.UpdatedAt), sub.CreatedBy, sub.UpdatedBy)
		return err
	})
	if err != nil {
		return fmt.Errorf("submitting form %s: %w", sub.FormID, err)
	}
	sub.Values = values
	return nil
}

func (s *sqlStore) ListSubmissions(ctx context.Context, formID string, p Page) ([]Submission, string, error) {
	limit, err := pageLimit(p)
	if err != nil {
		return nil, "", fmt.Errorf("listing submissions: %w", err)
	}
	var a sqlArgs
	conds := []string{`form_id = ` + a.add(formID)}
	if p.Cursor != "" {
		t, id, err := decodeTimeCursor(p.Cursor, "submissions")
		if err != nil {
			return nil, "", fmt.Errorf("listing submissions: %w", err)
		}
		conds = append(conds, `(created_at, id) < (`+a.add(ts(t))+`, `+a.add(id)+`)`)
	}
	var one int64
	if err := s.db.queryRow(ctx, `SELECT 1 FROM forms WHERE id = $1`, formID).Scan(&one); err != nil {
		return nil, "", fmt.Errorf("listing submissions of form %s: %w", formID, err)
	}
	rs, err := s.db.query(ctx, `SELECT `+submissionCols+` FROM form_submissions`+where(conds)+
		` ORDER BY created_at DESC, id DESC LIMIT `+a.add(int64(limit+1)), a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing submissions: %w", err)
	}
	list, err := appendRows(make([]Submission, 0, limit+1), rs, scanSubmission)
	if err != nil {
		return nil, "", fmt.Errorf("listing submissions: %w", err)
	}
	list, next := nextPage(list, limit, func(s *Submission) string {
		return encodeCursor("submissions", timeKey(s.CreatedAt), s.ID)
	})
	return list, next, nil
}
