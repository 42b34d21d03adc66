package tools

import (
	"context"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// OrderView is an order as tools return it. Prices come from the
// products at the time of the order, never from the client.
type OrderView struct {
	ID         string          `json:"id"`
	Customer   string          `json:"customer"`
	Status     string          `json:"status" jsonschema:"pending, paid, shipped, delivered or cancelled"`
	Items      []OrderItemView `json:"items"`
	TotalMinor int64           `json:"total_minor" jsonschema:"total in minor units"`
	Currency   string          `json:"currency"`
	auditView
}

// OrderItemView is one line of an order.
type OrderItemView struct {
	ProductID      string `json:"product_id"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
	LineMinor      int64  `json:"line_minor"`
}

func viewOrder(o *store.Order) OrderView {
	v := OrderView{ID: o.ID, Customer: o.Customer, Status: o.Status, Items: []OrderItemView{}, TotalMinor: o.TotalMinor,
		Currency: o.Currency, auditView: viewAudit(o.Audit)}
	for _, it := range o.Items {
		v.Items = append(v.Items, OrderItemView{ProductID: it.ProductID, Name: it.Name, Quantity: it.Quantity,
			UnitPriceMinor: it.UnitPriceMinor, LineMinor: it.LineMinor})
	}
	return v
}

// OrderList is a page of orders.
type OrderList struct {
	Orders []OrderView `json:"orders"`
	nextPage
}

type ordersListIn struct {
	Status string `json:"status,omitempty" jsonschema:"only orders with this status"`
	pageIn
}

type orderLineIn struct {
	ProductID string `json:"product_id" jsonschema:"the product's id"`
	Quantity  int64  `json:"quantity" jsonschema:"how many, at least 1"`
}

type orderCreateIn struct {
	Customer string        `json:"customer" jsonschema:"who the order is for"`
	Items    []orderLineIn `json:"items" jsonschema:"the products and quantities; prices come from the catalogue"`
}

type orderStatusIn struct {
	ID     string `json:"id" jsonschema:"the order's id"`
	Status string `json:"status" jsonschema:"paid, shipped, delivered or cancelled (pending → paid → shipped → delivered; pending or paid → cancelled)"`
}

func (s *Server) addOrders() {
	shop := s.cfg.Shop
	add(s, toolSpec{name: "orders_list", family: "order", action: "list", scope: "order:read", title: "List orders",
		description: "Lists orders, newest first, optionally by status.", readOnly: true, idempotent: true},
		func(ctx context.Context, p *bearer.Principal, in *ordersListIn) (OrderList, error) {
			list, next, err := shop.ListOrders(ctx, store.OrderFilter{Status: in.Status, Page: in.page()})
			return OrderList{Orders: views(list, viewOrder), nextPage: nextPage{next}}, err
		})
	add(s, toolSpec{name: "orders_get", family: "order", action: "get", scope: "order:read", title: "Get an order",
		description: "Returns one order with its items.", readOnly: true, idempotent: true},
		getByID(shop.GetOrder, viewOrder))
	add(s, toolSpec{name: "orders_create", family: "order", action: "create", scope: "order:write", title: "Create an order",
		description: "Creates a pending order: prices and the total are computed from the products, and their stock is reserved at once."},
		func(ctx context.Context, p *bearer.Principal, in *orderCreateIn) (OrderView, error) {
			lines := make([]store.OrderLine, len(in.Items))
			for i, it := range in.Items {
				lines[i] = store.OrderLine{ProductID: it.ProductID, Quantity: it.Quantity}
			}
			o, err := shop.CreateOrder(ctx, newID("ord"), in.Customer, lines, p.Subject, s.cfg.Now())
			return viewOf(viewOrder, o, err)
		})
	add(s, toolSpec{name: "orders_update_status", family: "order", action: "update_status", scope: "order:write",
		title: "Change an order's status", description: "Moves an order along pending → paid → shipped → delivered, or cancels a pending or paid order (restoring its stock)."},
		func(ctx context.Context, p *bearer.Principal, in *orderStatusIn) (OrderView, error) {
			if err := required("id", in.ID); err != nil {
				return OrderView{}, err
			}
			if err := required("status", in.Status); err != nil {
				return OrderView{}, err
			}
			o, err := shop.SetOrderStatus(ctx, in.ID, in.Status, p.Subject, s.cfg.Now())
			return viewOf(viewOrder, o, err)
		})
}
