package tools

import (
	"context"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// ProductView is a product as tools return it. Money is in minor units.
type ProductView struct {
	ID          string `json:"id"`
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	PriceMinor  int64  `json:"price_minor" jsonschema:"price in minor units (cents) of currency"`
	Currency    string `json:"currency" jsonschema:"ISO 4217 currency code"`
	Stock       int64  `json:"stock"`
	Deleted     bool   `json:"deleted"`
	auditView
}

// auditView says who created and last changed a row, and when.
type auditView struct {
	CreatedAt string `json:"created_at" jsonschema:"RFC 3339 time"`
	CreatedBy string `json:"created_by" jsonschema:"user id"`
	UpdatedAt string `json:"updated_at" jsonschema:"RFC 3339 time"`
	UpdatedBy string `json:"updated_by" jsonschema:"user id"`
}

func viewAudit(a store.Audit) auditView {
	return auditView{CreatedAt: a.CreatedAt.UTC().Format(time.RFC3339), CreatedBy: a.CreatedBy,
		UpdatedAt: a.UpdatedAt.UTC().Format(time.RFC3339), UpdatedBy: a.UpdatedBy}
}

func viewProduct(p *store.Product) ProductView {
	return ProductView{ID: p.ID, SKU: p.SKU, Name: p.Name, Description: p.Description, PriceMinor: p.PriceMinor,
		Currency: p.Currency, Stock: p.Stock, Deleted: !p.DeletedAt.IsZero(), auditView: viewAudit(p.Audit)}
}

// ProductList is a page of products.
type ProductList struct {
	Products []ProductView `json:"products"`
	nextPage
}

type productsListIn struct {
	Query          string `json:"query,omitempty" jsonschema:"substring of the name or SKU"`
	IncludeDeleted bool   `json:"include_deleted,omitempty" jsonschema:"also list deleted products"`
	pageIn
}

type productCreateIn struct {
	SKU         string `json:"sku" jsonschema:"stock-keeping unit, unique"`
	Name        string `json:"name" jsonschema:"product name"`
	Description string `json:"description,omitempty" jsonschema:"description"`
	PriceMinor  int64  `json:"price_minor" jsonschema:"price in minor units (e.g. 1299 for 12.99)"`
	Currency    string `json:"currency" jsonschema:"ISO 4217 code, e.g. EUR"`
	Stock       int64  `json:"stock,omitempty" jsonschema:"initial stock (default 0)"`
}

type productUpdateIn struct {
	ID          string  `json:"id" jsonschema:"the product's id"`
	SKU         *string `json:"sku,omitempty" jsonschema:"new SKU"`
	Name        *string `json:"name,omitempty" jsonschema:"new name"`
	Description *string `json:"description,omitempty" jsonschema:"new description"`
	PriceMinor  *int64  `json:"price_minor,omitempty" jsonschema:"new price in minor units"`
	Currency    *string `json:"currency,omitempty" jsonschema:"new ISO 4217 currency code"`
}

type stockIn struct {
	ID    string `json:"id" jsonschema:"the product's id"`
	Delta int64  `json:"delta" jsonschema:"amount to add (negative to remove); stock never goes below zero"`
}

// Deleted confirms a deletion.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

func (s *Server) addProducts() {
	shop := s.cfg.Shop
	add(s, toolSpec{name: "products_list", family: "product", action: "list", scope: "product:read", title: "List products",
		description: "Lists products, filtered by a search text, a page at a time.", readOnly: true, idempotent: true},
		func(ctx context.Context, p *bearer.Principal, in *productsListIn) (ProductList, error) {
			list, next, err := shop.ListProducts(ctx, store.ProductFilter{Query: in.Query, IncludeDeleted: in.IncludeDeleted,
				Page: in.page()})
			return ProductList{Products: views(list, viewProduct), nextPage: nextPage{next}}, err
		})
	add(s, toolSpec{name: "products_get", family: "product", action: "get", scope: "product:read", title: "Get a product",
		description: "Returns one product by id.", readOnly: true, idempotent: true},
		getByID(shop.GetProduct, viewProduct))
	add(s, toolSpec{name: "products_create", family: "product", action: "create", scope: "product:write", title: "Create a product",
		description: "Creates a product with a price in minor units and an initial stock."},
		func(ctx context.Context, p *bearer.Principal, in *productCreateIn) (ProductView, error) {
			pr := &store.Product{ID: newID("prd"), SKU: in.SKU, Name: in.Name, Description: in.Description,
				PriceMinor: in.PriceMinor, Currency: in.Currency, Stock: in.Stock, Audit: audit(p, s.cfg.Now())}
			return viewOf(viewProduct, pr, shop.CreateProduct(ctx, pr))
		})
	add(s, toolSpec{name: "products_update", family: "product", action: "update", scope: "product:write", title: "Update a product",
		description: "Changes a product's SKU, name, description, price or currency; fields left out stay as they are.", idempotent: true},
		func(ctx context.Context, p *bearer.Principal, in *productUpdateIn) (ProductView, error) {
			if err := required("id", in.ID); err != nil {
				return ProductView{}, err
			}
			pr, err := shop.UpdateProduct(ctx, in.ID, store.ProductChange{Name: in.Name, Description: in.Description, SKU: in.SKU,
				Currency: in.Currency, PriceMinor: in.PriceMinor}, p.Subject, s.cfg.Now())
			return viewOf(viewProduct, pr, err)
		})
	add(s, toolSpec{name: "products_delete", family: "product", action: "delete", scope: "product:write", title: "Delete a product",
		description: "Deletes a product (it stays in past orders).", destructive: true, idempotent: true},
		func(ctx context.Context, p *bearer.Principal, in *idIn) (Deleted, error) {
			if err := required("id", in.ID); err != nil {
				return Deleted{}, err
			}
			if err := shop.DeleteProduct(ctx, in.ID, p.Subject, s.cfg.Now()); err != nil {
				return Deleted{}, err
			}
			return Deleted{ID: in.ID, Deleted: true}, nil
		})
	add(s, toolSpec{name: "products_adjust_stock", family: "product", action: "adjust_stock", scope: "product:write",
		title: "Adjust stock", description: "Adds to or removes from a product's stock; it never goes below zero."},
		func(ctx context.Context, p *bearer.Principal, in *stockIn) (ProductView, error) {
			if err := required("id", in.ID); err != nil {
				return ProductView{}, err
			}
			if in.Delta == 0 {
				return ProductView{}, store.Invalid("delta", "must not be zero")
			}
			pr, err := shop.AdjustStock(ctx, in.ID, in.Delta, p.Subject, s.cfg.Now())
			return viewOf(viewProduct, pr, err)
		})
}
