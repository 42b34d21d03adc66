// SQL of the back office's products and their stock.

package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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
	p, err := queryOne(ctx, s.db, scanProduct, `SELECT `+productCols+` FROM products WHERE id = $1`, id)
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
	list, next, err := queryPage(ctx, s.db, scanProduct, limit,
		func(p *Product) string { return encodeCursor("products", p.Name, p.ID) },
		`SELECT `+productCols+` FROM products`+where(conds)+` ORDER BY name, id`, a)
	if err != nil {
		return nil, "", fmt.Errorf("listing products: %w", err)
	}
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
	p, err := queryOne(ctx, s.db, scanProduct, `UPDATE products SET
		sku = COALESCE($2, sku), name = COALESCE($3, name), name_fold = COALESCE($4, name_fold),
		description = COALESCE($5, description), price_minor = COALESCE($6, price_minor),
		currency = COALESCE($7, currency), updated_at = $8, updated_by = $9
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+productCols,
		id, deref(ch.SKU), name, nameFold, deref(ch.Description), deref(ch.PriceMinor), deref(ch.Currency), ts(now), by)
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
		p, err := queryOne(ctx, s.db, scanProduct, `UPDATE products SET stock = stock + $2, updated_at = $3, updated_by = $4
			WHERE id = $1 AND deleted_at IS NULL AND stock + $2 >= 0 AND stock + $2 <= $5
			RETURNING `+productCols, id, delta, ts(now), by, MaxStock)
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
