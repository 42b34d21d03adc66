package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Business-rule errors of the back-office data. Implementations wrap
// them; test with errors.Is.
var (
	// ErrInsufficientStock means an order or a stock adjustment would
	// take a product's stock below zero.
	ErrInsufficientStock = errors.New("insufficient stock")
	// ErrSlotTaken means a booking overlaps another confirmed booking of
	// the same resource.
	ErrSlotTaken = errors.New("the resource is already booked at that time")
	// ErrInvalidTransition means an order cannot move to the requested
	// status from its current one.
	ErrInvalidTransition = errors.New("invalid status transition")
)

// ValidationError is invalid input to a back-office operation, naming
// the field at fault.
type ValidationError struct {
	// Field is the argument or form field at fault.
	Field string
	// Message says what is wrong with it.
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Invalid returns a ValidationError.
func Invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

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

// Audit records who created and last changed a row, and when. The user
// ids come from the access token's sub.
type Audit struct {
	CreatedAt, UpdatedAt time.Time
	CreatedBy, UpdatedBy string
}

// Page asks for one page of a list: up to Limit items (default 20, at
// most 100) after the opaque Cursor a previous page returned.
type Page struct {
	Cursor string
	Limit  int
}

// Product is an item for sale. Money is in integer minor units (cents)
// with an ISO 4217 currency code.
type Product struct {
	ID          string
	SKU         string // unique among products that are not deleted
	Name        string
	Description string
	PriceMinor  int64 // >= 0
	Currency    string
	Stock       int64 // >= 0
	DeletedAt   time.Time
	Audit
}

// ProductFilter selects products to list.
type ProductFilter struct {
	// Query matches a substring of the name or SKU, case-insensitively.
	Query string
	// IncludeDeleted also lists soft-deleted products.
	IncludeDeleted bool
	Page
}

// ProductChange holds the fields to change; nil leaves a field alone.
type ProductChange struct {
	Name, Description, SKU, Currency *string
	PriceMinor                       *int64
}

// Products stores the product catalogue.
type Products interface {
	// CreateProduct validates and stores p (ID, Audit set by the caller);
	// ErrConflict if an active product has the same SKU.
	CreateProduct(ctx context.Context, p *Product) error
	// GetProduct returns a product (deleted ones too) or ErrNotFound.
	GetProduct(ctx context.Context, id string) (*Product, error)
	// ListProducts returns a page ordered by name then id, and the cursor
	// of the next page ("" at the end).
	ListProducts(ctx context.Context, f ProductFilter) ([]Product, string, error)
	// UpdateProduct applies ch to an active product; ErrNotFound for a
	// deleted or unknown one.
	UpdateProduct(ctx context.Context, id string, ch ProductChange, by string, now time.Time) (*Product, error)
	// DeleteProduct soft-deletes a product; ErrNotFound if unknown or
	// already deleted.
	DeleteProduct(ctx context.Context, id, by string, now time.Time) error
	// AdjustStock adds delta (which may be negative) to the stock of an
	// active product, atomically; ErrInsufficientStock below zero.
	AdjustStock(ctx context.Context, id string, delta int64, by string, now time.Time) (*Product, error)
}

// Booking statuses.
const (
	BookingConfirmed = "confirmed"
	BookingCancelled = "cancelled"
)

// Booking reserves a resource (a room, a staff member, a table…) for the
// half-open interval [Start, End).
type Booking struct {
	ID       string
	Resource string
	Customer string
	Notes    string
	Start    time.Time
	End      time.Time
	Status   string
	Audit
}

// BookingFilter selects bookings to list: those overlapping [From, To)
// (zero bounds are open), with a status and resource if given.
type BookingFilter struct {
	From, To time.Time
	Status   string
	Resource string
	Page
}

// BookingChange holds the fields to change; nil leaves a field alone.
type BookingChange struct {
	Resource, Customer, Notes *string
	Start, End                *time.Time
}

// Bookings stores bookings. No two confirmed bookings of one resource
// ever overlap, also under concurrent requests: the check and the write
// happen in one serialized transaction per resource.
type Bookings interface {
	// CreateBooking validates and stores a confirmed booking;
	// ErrSlotTaken on overlap.
	CreateBooking(ctx context.Context, b *Booking) error
	// GetBooking returns a booking or ErrNotFound.
	GetBooking(ctx context.Context, id string) (*Booking, error)
	// ListBookings returns a page ordered by start then id, and the next
	// cursor.
	ListBookings(ctx context.Context, f BookingFilter) ([]Booking, string, error)
	// UpdateBooking changes a confirmed booking; ErrSlotTaken on overlap
	// with another booking, ErrNotFound for an unknown or cancelled one.
	UpdateBooking(ctx context.Context, id string, ch BookingChange, by string, now time.Time) (*Booking, error)
	// CancelBooking cancels a confirmed booking, freeing its slot;
	// ErrNotFound for an unknown or already cancelled one.
	CancelBooking(ctx context.Context, id, by string, now time.Time) (*Booking, error)
}

// Order statuses. Allowed transitions: pending → paid → shipped →
// delivered; pending or paid → cancelled (which restores the stock).
const (
	OrderPending   = "pending"
	OrderPaid      = "paid"
	OrderShipped   = "shipped"
	OrderDelivered = "delivered"
	OrderCancelled = "cancelled"
)

// OrderLine is what a client asks for: a product and a quantity.
type OrderLine struct {
	ProductID string
	Quantity  int64 // >= 1
}

// OrderItem is a line of a stored order, priced by the server from the
// product at the time of the order.
type OrderItem struct {
	ProductID      string
	Name           string
	Quantity       int64
	UnitPriceMinor int64
	LineMinor      int64
}

// Order is a customer's order.
type Order struct {
	ID         string
	Customer   string
	Status     string
	Items      []OrderItem
	TotalMinor int64
	Currency   string
	Audit
}

// OrderFilter selects orders to list.
type OrderFilter struct {
	Status string
	Page
}

// Orders stores orders.
type Orders interface {
	// CreateOrder prices the lines from the products (active, one
	// currency), decrements their stock and stores a pending order, all
	// in one transaction; ErrInsufficientStock (naming the product in a
	// ValidationError-free message) leaves every stock unchanged.
	CreateOrder(ctx context.Context, id, customer string, lines []OrderLine, by string, now time.Time) (*Order, error)
	// GetOrder returns an order with its items or ErrNotFound.
	GetOrder(ctx context.Context, id string) (*Order, error)
	// ListOrders returns a page, newest first, and the next cursor.
	ListOrders(ctx context.Context, f OrderFilter) ([]Order, string, error)
	// SetOrderStatus moves an order along the allowed transitions;
	// ErrInvalidTransition otherwise. Cancelling restores the stock.
	SetOrderStatus(ctx context.Context, id, status, by string, now time.Time) (*Order, error)
}

// Form field types.
const (
	FieldText   = "text"
	FieldEmail  = "email"
	FieldNumber = "number"
	FieldDate   = "date"
	FieldChoice = "choice"
)

// FormField describes one field of a form.
type FormField struct {
	Name     string // unique in the form: [a-z][a-z0-9_]*
	Label    string
	Type     string
	Required bool
	// MinLength and MaxLength bound text and email values (0: none).
	MinLength, MaxLength int
	// Min and Max bound number values (nil: none).
	Min, Max *float64
	// Choices are the allowed values of a choice field (at least one).
	Choices []string
}

// Form is a form people submit answers to.
type Form struct {
	ID          string
	Title       string
	Description string
	Fields      []FormField
	Audit
}

// Submission is one set of answers to a form, validated against its
// fields: values keyed by field name (strings, and float64 for numbers;
// dates as YYYY-MM-DD strings).
type Submission struct {
	ID     string
	FormID string
	Values map[string]any
	Audit
}

// Forms stores forms and their submissions.
type Forms interface {
	// CreateForm validates the field definitions and stores f.
	CreateForm(ctx context.Context, f *Form) error
	// GetForm returns a form or ErrNotFound.
	GetForm(ctx context.Context, id string) (*Form, error)
	// ListForms returns a page, newest first, and the next cursor.
	ListForms(ctx context.Context, p Page) ([]Form, string, error)
	// SubmitForm validates values against the form's fields (a
	// ValidationError names the field) and stores the submission.
	SubmitForm(ctx context.Context, s *Submission) error
	// ListSubmissions returns a page of a form's submissions, newest
	// first, and the next cursor; ErrNotFound for an unknown form.
	ListSubmissions(ctx context.Context, formID string, p Page) ([]Submission, string, error)
}

// Shop is the back office the MCP tools work on.
type Shop interface {
	Products
	Bookings
	Orders
	Forms
}
