// SQL of the back office's orders: stock taken and given back, and the
// status transitions.

package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

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
	type itemRow struct {
		orderID string
		item    OrderItem
	}
	scanItem := func(r row, v *itemRow) error {
		it := &v.item
		return r.Scan(&v.orderID, &it.ProductID, &it.Name, &it.Quantity, &it.UnitPriceMinor, &it.LineMinor)
	}
	items, err := queryAll(ctx, q, scanItem, `SELECT order_id, product_id, name, quantity, unit_price_minor, line_minor
		FROM order_items WHERE order_id IN (`+strings.Join(ph, ", ")+`) ORDER BY order_id, line_no`, a...)
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
	o, err := queryOne(ctx, q, scanOrder, `SELECT `+orderCols+` FROM orders WHERE id = $1`, id)
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
			p, err := queryOne(ctx, q, scanProduct, `SELECT `+productCols+` FROM products WHERE id = $1`, l.ProductID)
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
	list, next, err := queryPage(ctx, s.db, scanOrder, limit,
		func(o *Order) string { return encodeCursor("orders", timeKey(o.CreatedAt), o.ID) },
		`SELECT `+orderCols+` FROM orders`+where(conds)+` ORDER BY created_at DESC, id DESC`, a)
	if err != nil {
		return nil, "", fmt.Errorf("listing orders: %w", err)
	}
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
	// The rows are read to the end, and closed, before the updates: a
	// connection runs one statement at a time.
	scanLine := func(r row, l *OrderLine) error { return r.Scan(&l.ProductID, &l.Quantity) }
	lines, err := queryAll(ctx, q, scanLine,
		`SELECT product_id, quantity FROM order_items WHERE order_id = $1 ORDER BY product_id`, orderID)
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
