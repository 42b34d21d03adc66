package store_test

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// ---- helpers ----

const (
	alice = "user-alice"
	bob   = "user-bob"
)

func audit(at time.Time) store.Audit {
	return store.Audit{CreatedAt: at, UpdatedAt: at, CreatedBy: alice, UpdatedBy: alice}
}

func ptr[T any](v T) *T { return &v }

// wantInvalid fails unless err is a ValidationError on field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var ve *store.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a ValidationError on %q", err, field)
	}
	if ve.Field != field {
		t.Fatalf("ValidationError on %q (%v), want %q", ve.Field, ve, field)
	}
	if ve.Message == "" {
		t.Fatalf("ValidationError on %q has no message", field)
	}
}

func wantAudit(t *testing.T, what string, got store.Audit, created time.Time, createdBy string, updated time.Time, updatedBy string) {
	t.Helper()
	sameTime(t, what+" CreatedAt", got.CreatedAt, created)
	sameTime(t, what+" UpdatedAt", got.UpdatedAt, updated)
	if got.CreatedBy != createdBy || got.UpdatedBy != updatedBy {
		t.Errorf("%s created/updated by %q/%q, want %q/%q", what, got.CreatedBy, got.UpdatedBy, createdBy, updatedBy)
	}
	if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
		t.Errorf("%s audit times are not in UTC", what)
	}
}

func newProduct(t *testing.T, s store.Store, id, sku, name string, price, stock int64, currency string) *store.Product {
	t.Helper()
	p := &store.Product{ID: id, SKU: sku, Name: name, Description: "A " + name, PriceMinor: price,
		Currency: currency, Stock: stock, Audit: audit(t0)}
	must(t, s.CreateProduct(ctx(), p))
	return p
}

func stockOf(t *testing.T, s store.Store, id string) int64 {
	t.Helper()
	p, err := s.GetProduct(ctx(), id)
	must(t, err)
	return p.Stock
}

func newBooking(resource string, start time.Time, d time.Duration) *store.Booking {
	return &store.Booking{Resource: resource, Customer: "Grace", Start: start, End: start.Add(d), Audit: audit(t0)}
}

// walk lists every page of a list and returns the ids of each page.
func walk[T any](t *testing.T, limit int, list func(store.Page) ([]T, string, error), id func(T) string) [][]string {
	t.Helper()
	var pages [][]string
	cursor := ""
	for range 100 {
		items, next, err := list(store.Page{Cursor: cursor, Limit: limit})
		must(t, err)
		ids := make([]string, len(items))
		for i, it := range items {
			ids[i] = id(it)
		}
		pages = append(pages, ids)
		if next == "" {
			return pages
		}
		cursor = next
	}
	t.Fatal("the list never ends")
	return nil
}

// wantPages checks that pages hold want, in order, in pages of sizes.
func wantPages(t *testing.T, pages [][]string, want []string, sizes ...int) {
	t.Helper()
	var got []string
	var gotSizes []int
	for _, p := range pages {
		got = append(got, p...)
		gotSizes = append(gotSizes, len(p))
	}
	if !slices.Equal(gotSizes, sizes) {
		t.Errorf("page sizes %v, want %v", gotSizes, sizes)
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed\n%v\nwant\n%v", got, want)
	}
}

// ---- products ----

func TestProducts(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		in := &store.Product{ID: "p1", SKU: "MUG-01", Name: "Mug", Description: "A mug\nwith two lines",
			PriceMinor: 1250, Currency: "EUR", Stock: 7,
			Audit: store.Audit{CreatedAt: t0.In(time.FixedZone("X", 3600)), CreatedBy: alice}}
		must(t, s.CreateProduct(ctx(), in))
		got, err := s.GetProduct(ctx(), "p1")
		must(t, err)
		if got.SKU != "MUG-01" || got.Name != "Mug" || got.Description != "A mug\nwith two lines" ||
			got.PriceMinor != 1250 || got.Currency != "EUR" || got.Stock != 7 || !got.DeletedAt.IsZero() {
			t.Fatalf("GetProduct = %+v", got)
		}
		// Unset update stamps default to the creation stamps.
		wantAudit(t, "new product", got.Audit, t0, alice, t0, alice)
		if !reflect.DeepEqual(got, in) {
			t.Errorf("stored %+v\ncreated %+v", got, in)
		}

		_, err = s.GetProduct(ctx(), "nope")
		wantErr(t, err, store.ErrNotFound)
		// Duplicate id; duplicate SKU among active products.
		wantErr(t, s.CreateProduct(ctx(), &store.Product{ID: "p1", SKU: "OTHER", Name: "x", Currency: "EUR", Audit: audit(t0)}), store.ErrConflict)
		wantErr(t, s.CreateProduct(ctx(), &store.Product{ID: "p2", SKU: "MUG-01", Name: "x", Currency: "EUR", Audit: audit(t0)}), store.ErrConflict)
		// SKUs are case-sensitive.
		newProduct(t, s, "p2", "mug-01", "Other mug", 100, 0, "EUR")

		// Update every field.
		t1 := t0.Add(time.Hour)
		up, err := s.UpdateProduct(ctx(), "p1", store.ProductChange{Name: ptr("Big mug"), Description: ptr(""),
			SKU: ptr("MUG-02"), Currency: ptr("USD"), PriceMinor: ptr(int64(0))}, bob, t1)
		must(t, err)
		if up.Name != "Big mug" || up.Description != "" || up.SKU != "MUG-02" || up.Currency != "USD" || up.PriceMinor != 0 || up.Stock != 7 {
			t.Fatalf("UpdateProduct = %+v", up)
		}
		wantAudit(t, "updated product", up.Audit, t0, alice, t1, bob)
		got, err = s.GetProduct(ctx(), "p1")
		must(t, err)
		if !reflect.DeepEqual(got, up) {
			t.Errorf("after update got %+v, want %+v", got, up)
		}
		// A partial update leaves the other fields alone.
		up, err = s.UpdateProduct(ctx(), "p1", store.ProductChange{PriceMinor: ptr(int64(990))}, alice, t1.Add(time.Minute))
		must(t, err)
		if up.Name != "Big mug" || up.SKU != "MUG-02" || up.PriceMinor != 990 || up.Currency != "USD" {
			t.Fatalf("partial update = %+v", up)
		}
		// An empty change reports the product unchanged.
		same, err := s.UpdateProduct(ctx(), "p1", store.ProductChange{}, bob, t1.Add(time.Hour))
		must(t, err)
		if !reflect.DeepEqual(same, up) {
			t.Errorf("empty change = %+v, want %+v", same, up)
		}
		_, err = s.UpdateProduct(ctx(), "p1", store.ProductChange{SKU: ptr("mug-01")}, bob, t1)
		wantErr(t, err, store.ErrConflict)
		_, err = s.UpdateProduct(ctx(), "nope", store.ProductChange{Name: ptr("x")}, bob, t1)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.UpdateProduct(ctx(), "p1", store.ProductChange{Currency: ptr("usd")}, bob, t1)
		wantInvalid(t, err, "currency")
		_, err = s.UpdateProduct(ctx(), "p1", store.ProductChange{Name: ptr("x")}, "", t1)
		wantInvalid(t, err, "by")

		// Soft delete.
		t2 := t0.Add(2 * time.Hour)
		must(t, s.DeleteProduct(ctx(), "p2", bob, t2))
		wantErr(t, s.DeleteProduct(ctx(), "p2", bob, t2), store.ErrNotFound)
		wantErr(t, s.DeleteProduct(ctx(), "nope", bob, t2), store.ErrNotFound)
		del, err := s.GetProduct(ctx(), "p2")
		must(t, err)
		sameTime(t, "DeletedAt", del.DeletedAt, t2)
		wantAudit(t, "deleted product", del.Audit, t0, alice, t2, bob)
		_, err = s.UpdateProduct(ctx(), "p2", store.ProductChange{Name: ptr("x")}, bob, t2)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.UpdateProduct(ctx(), "p2", store.ProductChange{}, bob, t2)
		wantErr(t, err, store.ErrNotFound)
		// The SKU of a deleted product can be used again, also twice
		// among deleted products.
		newProduct(t, s, "p3", "mug-01", "New mug", 100, 0, "EUR")
		must(t, s.DeleteProduct(ctx(), "p3", bob, t2))
		newProduct(t, s, "p4", "mug-01", "Newer mug", 100, 0, "EUR")
		_, err = s.UpdateProduct(ctx(), "p1", store.ProductChange{SKU: ptr("mug-01")}, bob, t2)
		wantErr(t, err, store.ErrConflict)
	})
}

func TestProductValidation(t *testing.T) {
	valid := func() *store.Product {
		return &store.Product{ID: "p", SKU: "A.b_c-9", Name: "Tea", PriceMinor: 0, Currency: "GBP", Audit: audit(t0)}
	}
	cases := []struct {
		name  string
		edit  func(p *store.Product)
		field string
	}{
		{"no id", func(p *store.Product) { p.ID = "" }, "id"},
		{"id with space", func(p *store.Product) { p.ID = "a b" }, "id"},
		{"id too long", func(p *store.Product) { p.ID = strings.Repeat("i", 129) }, "id"},
		{"no sku", func(p *store.Product) { p.SKU = "" }, "sku"},
		{"sku too long", func(p *store.Product) { p.SKU = strings.Repeat("S", 65) }, "sku"},
		{"sku with space", func(p *store.Product) { p.SKU = "A B" }, "sku"},
		{"sku with slash", func(p *store.Product) { p.SKU = "A/B" }, "sku"},
		{"sku non-ascii", func(p *store.Product) { p.SKU = "Ä" }, "sku"},
		{"no name", func(p *store.Product) { p.Name = "" }, "name"},
		{"blank name", func(p *store.Product) { p.Name = "   " }, "name"},
		{"name too long", func(p *store.Product) { p.Name = strings.Repeat("é", 201) }, "name"},
		{"name with newline", func(p *store.Product) { p.Name = "a\nb" }, "name"},
		{"name not utf-8", func(p *store.Product) { p.Name = "a\xffb" }, "name"},
		{"description too long", func(p *store.Product) { p.Description = strings.Repeat("d", 2001) }, "description"},
		{"description with NUL", func(p *store.Product) { p.Description = "a\x00b" }, "description"},
		{"negative price", func(p *store.Product) { p.PriceMinor = -1 }, "price_minor"},
		{"price too high", func(p *store.Product) { p.PriceMinor = 1_000_000_000_001 }, "price_minor"},
		{"negative stock", func(p *store.Product) { p.Stock = -1 }, "stock"},
		{"no currency", func(p *store.Product) { p.Currency = "" }, "currency"},
		{"lower-case currency", func(p *store.Product) { p.Currency = "eur" }, "currency"},
		{"long currency", func(p *store.Product) { p.Currency = "EURO" }, "currency"},
		{"digit currency", func(p *store.Product) { p.Currency = "E1R" }, "currency"},
		{"deleted", func(p *store.Product) { p.DeletedAt = t0 }, "deleted_at"},
		{"no creation time", func(p *store.Product) { p.CreatedAt = time.Time{} }, "created_at"},
		{"no creator", func(p *store.Product) { p.CreatedBy = ""; p.UpdatedBy = "" }, "created_by"},
	}
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := valid()
				c.edit(p)
				wantInvalid(t, s.CreateProduct(ctx(), p), c.field)
				_, err := s.GetProduct(ctx(), p.ID)
				wantErr(t, err, store.ErrNotFound)
			})
		}
		// The limits themselves are valid.
		p := valid()
		p.SKU, p.Name, p.Description = strings.Repeat("S", 64), strings.Repeat("é", 200), strings.Repeat("d", 2000)
		p.PriceMinor, p.Stock = store.MaxPriceMinor, store.MaxStock
		must(t, s.CreateProduct(ctx(), p))
		_, err := s.UpdateProduct(ctx(), p.ID, store.ProductChange{PriceMinor: ptr(int64(-5))}, bob, t0)
		wantInvalid(t, err, "price_minor")
		_, err = s.UpdateProduct(ctx(), p.ID, store.ProductChange{SKU: ptr("a b")}, bob, t0)
		wantInvalid(t, err, "sku")
		_, err = s.UpdateProduct(ctx(), p.ID, store.ProductChange{Name: ptr("")}, bob, t0)
		wantInvalid(t, err, "name")
		_, err = s.UpdateProduct(ctx(), p.ID, store.ProductChange{Description: ptr(strings.Repeat("d", 2001))}, bob, t0)
		wantInvalid(t, err, "description")
		got, err := s.GetProduct(ctx(), p.ID)
		must(t, err)
		if got.PriceMinor != store.MaxPriceMinor || got.SKU != p.SKU {
			t.Fatalf("a rejected update changed the product: %+v", got)
		}
	})
}

func TestAdjustStock(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		newProduct(t, s, "p1", "P1", "Pen", 100, 5, "EUR")
		t1 := t0.Add(time.Minute)
		p, err := s.AdjustStock(ctx(), "p1", 10, bob, t1)
		must(t, err)
		if p.Stock != 15 {
			t.Fatalf("stock = %d, want 15", p.Stock)
		}
		wantAudit(t, "adjusted product", p.Audit, t0, alice, t1, bob)
		p, err = s.AdjustStock(ctx(), "p1", -15, bob, t1)
		must(t, err)
		if p.Stock != 0 {
			t.Fatalf("stock = %d, want 0", p.Stock)
		}
		noErr[*store.Product](t)(s.AdjustStock(ctx(), "p1", 3, bob, t1))

		_, err = s.AdjustStock(ctx(), "p1", -4, bob, t1.Add(time.Hour))
		wantErr(t, err, store.ErrInsufficientStock)
		var se *store.StockError
		if !errors.As(err, &se) || se.ProductID != "p1" || se.Available != 3 || se.Requested != 4 {
			t.Fatalf("error = %#v, want a StockError for p1 with 3 available", err)
		}
		if !strings.Contains(err.Error(), "p1") || !strings.Contains(err.Error(), "3 available") {
			t.Errorf("message %q names neither the product nor what is available", err)
		}
		p, err = s.GetProduct(ctx(), "p1")
		must(t, err)
		if p.Stock != 3 || !p.UpdatedAt.Equal(t1) {
			t.Fatalf("a refused adjustment changed the product: %+v", p)
		}

		_, err = s.AdjustStock(ctx(), "nope", 1, bob, t1)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.AdjustStock(ctx(), "p1", store.MaxStock, bob, t1)
		wantInvalid(t, err, "delta")
		_, err = s.AdjustStock(ctx(), "p1", store.MaxStock+1, bob, t1)
		wantInvalid(t, err, "delta")
		_, err = s.AdjustStock(ctx(), "p1", -store.MaxStock-1, bob, t1)
		wantInvalid(t, err, "delta")
		_, err = s.AdjustStock(ctx(), "p1", 1, bob, time.Time{})
		wantInvalid(t, err, "now")
		must(t, s.DeleteProduct(ctx(), "p1", bob, t1))
		_, err = s.AdjustStock(ctx(), "p1", 1, bob, t1)
		wantErr(t, err, store.ErrNotFound)
		if got := stockOf(t, s, "p1"); got != 3 {
			t.Fatalf("stock of a deleted product changed to %d", got)
		}
	})
}

// noErr drops the result of a call that must succeed.
func noErr[T any](t *testing.T) func(T, error) {
	return func(_ T, err error) {
		t.Helper()
		must(t, err)
	}
}

func TestAdjustStockConcurrency(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		newProduct(t, s, "p1", "P1", "Pen", 100, 10, "EUR")
		// 40 goroutines take 1 and 10 add 1, interleaved: the stock never
		// goes below zero and ends at 10 + adds - takes that succeeded.
		var took, added, short atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 50 {
			delta := int64(-1)
			if i%5 == 0 {
				delta = 1
			}
			wg.Go(func() {
				<-start
				p, err := s.AdjustStock(ctx(), "p1", delta, bob, t0)
				switch {
				case err == nil && p.Stock < 0:
					t.Errorf("stock went to %d", p.Stock)
				case err == nil && delta < 0:
					took.Add(1)
				case err == nil:
					added.Add(1)
				case errors.Is(err, store.ErrInsufficientStock) && delta < 0:
					short.Add(1)
				default:
					t.Errorf("AdjustStock(%d): %v", delta, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if added.Load() != 10 || took.Load()+short.Load() != 40 {
			t.Fatalf("%d adds, %d takes, %d short", added.Load(), took.Load(), short.Load())
		}
		if got, want := stockOf(t, s, "p1"), 10+added.Load()-took.Load(); got != want || got < 0 {
			t.Fatalf("stock = %d, want %d", got, want)
		}
		if took.Load() < 10 {
			t.Fatalf("only %d of 40 takes succeeded with at least 10 in stock", took.Load())
		}
	})
}

func TestListProducts(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		newProduct(t, s, "p1", "TEA-1", "Green tea", 100, 1, "EUR")
		newProduct(t, s, "p2", "TEA-2", "Black Tea", 100, 1, "EUR")
		newProduct(t, s, "p3", "COF-1", "Coffee 100%", 100, 1, "EUR")
		newProduct(t, s, "p4", "COF_2", "Coffee 1000", 100, 1, "EUR")
		newProduct(t, s, "p5", "MISC", `Back\slash`, 100, 1, "EUR")
		newProduct(t, s, "p6", "OLD", "Old tea", 100, 1, "EUR")
		newProduct(t, s, "p7", "UML", "ÄPFEL", 100, 1, "EUR")
		newProduct(t, s, "p0", "DUP", "Green tea", 100, 1, "EUR")
		must(t, s.DeleteProduct(ctx(), "p6", bob, t0))

		ids := func(ps []store.Product) []string {
			out := make([]string, len(ps))
			for i, p := range ps {
				out[i] = p.ID
			}
			return out
		}
		for _, c := range []struct {
			name string
			f    store.ProductFilter
			want []string
		}{
			// Ordered by name (code point order), then id.
			{"all", store.ProductFilter{}, []string{"p5", "p2", "p3", "p4", "p0", "p1", "p7"}},
			{"with deleted", store.ProductFilter{IncludeDeleted: true}, []string{"p5", "p2", "p3", "p4", "p0", "p1", "p6", "p7"}},
			{"name, any case", store.ProductFilter{Query: "TEA"}, []string{"p2", "p0", "p1"}},
			{"sku, any case", store.ProductFilter{Query: "cof"}, []string{"p3", "p4"}},
			{"deleted match", store.ProductFilter{Query: "old", IncludeDeleted: true}, []string{"p6"}},
			{"deleted hidden", store.ProductFilter{Query: "old"}, nil},
			{"percent is literal", store.ProductFilter{Query: "0%"}, []string{"p3"}},
			{"underscore is literal", store.ProductFilter{Query: "f_"}, []string{"p4"}},
			{"backslash is literal", store.ProductFilter{Query: `k\s`}, []string{"p5"}},
			{"non-ASCII, any case", store.ProductFilter{Query: "äpf"}, []string{"p7"}},
			{"no match", store.ProductFilter{Query: "zzz"}, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				got, next, err := s.ListProducts(ctx(), c.f)
				must(t, err)
				if !slices.Equal(ids(got), c.want) || next != "" {
					t.Fatalf("ListProducts = %v, %q; want %v", ids(got), next, c.want)
				}
			})
		}

		for _, c := range []struct {
			name  string
			f     store.ProductFilter
			field string
		}{
			{"limit too high", store.ProductFilter{Page: store.Page{Limit: 101}}, "limit"},
			{"negative limit", store.ProductFilter{Page: store.Page{Limit: -1}}, "limit"},
			{"cursor not base64", store.ProductFilter{Page: store.Page{Cursor: "!!"}}, "cursor"},
			{"cursor not JSON", store.ProductFilter{Page: store.Page{Cursor: "bm9wZQ"}}, "cursor"},
			{"query too long", store.ProductFilter{Query: strings.Repeat("q", 201)}, "query"},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, _, err := s.ListProducts(ctx(), c.f)
				wantInvalid(t, err, c.field)
			})
		}
		// A cursor of another list is refused.
		_, cur, err := s.ListBookings(ctx(), store.BookingFilter{})
		must(t, err)
		if cur != "" {
			t.Fatalf("cursor %q after an empty list", cur)
		}
		must(t, s.CreateBooking(ctx(), withID(newBooking("r", t0, time.Hour), "b1")))
		must(t, s.CreateBooking(ctx(), withID(newBooking("r", t0.Add(time.Hour), time.Hour), "b2")))
		_, cur, err = s.ListBookings(ctx(), store.BookingFilter{Page: store.Page{Limit: 1}})
		must(t, err)
		_, _, err = s.ListProducts(ctx(), store.ProductFilter{Page: store.Page{Cursor: cur}})
		wantInvalid(t, err, "cursor")
		// Limit 100 is allowed.
		_, _, err = s.ListProducts(ctx(), store.ProductFilter{Page: store.Page{Limit: 100}})
		must(t, err)
	})
}

func withID(b *store.Booking, id string) *store.Booking {
	b.ID = id
	return b
}

// ---- pagination ----

func TestPagination(t *testing.T) {
	const n = 45
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		t.Run("products", func(t *testing.T) {
			var want []store.Product
			for i := range n {
				// Names repeat, so that the id breaks ties.
				p := newProduct(t, s, fmt.Sprintf("p%02d", n-i), fmt.Sprintf("SKU-%d", i), fmt.Sprintf("Item %d", i%7), 1, 1, "EUR")
				want = append(want, *p)
			}
			slices.SortFunc(want, func(a, b store.Product) int {
				return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
			})
			pages := walk(t, 20, func(p store.Page) ([]store.Product, string, error) {
				return s.ListProducts(ctx(), store.ProductFilter{Page: p})
			}, func(p store.Product) string { return p.ID })
			wantPages(t, pages, idsOf(want, func(p store.Product) string { return p.ID }), 20, 20, 5)
			// Listed 15 at a time, the third page is the last.
			pages = walk(t, 15, func(p store.Page) ([]store.Product, string, error) {
				return s.ListProducts(ctx(), store.ProductFilter{Page: p})
			}, func(p store.Product) string { return p.ID })
			wantPages(t, pages, idsOf(want, func(p store.Product) string { return p.ID }), 15, 15, 15)
			// The default limit is 20.
			got, next, err := s.ListProducts(ctx(), store.ProductFilter{})
			must(t, err)
			if len(got) != 20 || next == "" {
				t.Fatalf("default page: %d items, next %q", len(got), next)
			}
		})
		t.Run("bookings", func(t *testing.T) {
			var want []store.Booking
			for i := range n {
				// Several bookings start at once (on different resources).
				b := newBooking(fmt.Sprintf("room-%d", i%3), t0.Add(time.Duration(i/3)*time.Hour), time.Hour)
				b.ID = fmt.Sprintf("b%02d", n-i)
				must(t, s.CreateBooking(ctx(), b))
				want = append(want, *b)
			}
			slices.SortFunc(want, func(a, b store.Booking) int {
				return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.ID, b.ID))
			})
			pages := walk(t, 20, func(p store.Page) ([]store.Booking, string, error) {
				return s.ListBookings(ctx(), store.BookingFilter{Page: p})
			}, func(b store.Booking) string { return b.ID })
			wantPages(t, pages, idsOf(want, func(b store.Booking) string { return b.ID }), 20, 20, 5)
		})
		t.Run("orders", func(t *testing.T) {
			newProduct(t, s, "op", "ORDER-ME", "Thing", 100, 1000, "EUR")
			var want []store.Order
			for i := range n {
				o, err := s.CreateOrder(ctx(), fmt.Sprintf("o%02d", i), "Grace",
					[]store.OrderLine{{ProductID: "op", Quantity: 1}}, alice, t0.Add(time.Duration(i/4)*time.Second))
				must(t, err)
				want = append(want, *o)
			}
			slices.SortFunc(want, func(a, b store.Order) int {
				return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
			})
			pages := walk(t, 20, func(p store.Page) ([]store.Order, string, error) {
				return s.ListOrders(ctx(), store.OrderFilter{Page: p})
			}, func(o store.Order) string { return o.ID })
			wantPages(t, pages, idsOf(want, func(o store.Order) string { return o.ID }), 20, 20, 5)
		})
		t.Run("forms and submissions", func(t *testing.T) {
			var want []string
			for i := range n {
				f := simpleForm(fmt.Sprintf("f%02d", i), t0.Add(time.Duration(i/2)*time.Second))
				must(t, s.CreateForm(ctx(), f))
				want = append(want, f.ID)
			}
			slices.Reverse(want)
			pages := walk(t, 20, func(p store.Page) ([]store.Form, string, error) {
				return s.ListForms(ctx(), p)
			}, func(f store.Form) string { return f.ID })
			wantPages(t, pages, want, 20, 20, 5)

			want = nil
			for i := range n {
				sub := &store.Submission{ID: fmt.Sprintf("s%02d", i), FormID: "f00",
					Values: map[string]any{"name": "Ada"}, Audit: audit(t0.Add(time.Duration(i/5) * time.Second))}
				must(t, s.SubmitForm(ctx(), sub))
				want = append(want, sub.ID)
			}
			// A submission to another form is not listed.
			must(t, s.SubmitForm(ctx(), &store.Submission{ID: "other", FormID: "f01",
				Values: map[string]any{"name": "Bo"}, Audit: audit(t0)}))
			slices.Reverse(want)
			pages = walk(t, 20, func(p store.Page) ([]store.Submission, string, error) {
				return s.ListSubmissions(ctx(), "f00", p)
			}, func(s store.Submission) string { return s.ID })
			wantPages(t, pages, want, 20, 20, 5)
		})
	})
}

func idsOf[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

// ---- bookings ----

func TestBookings(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		paris := time.FixedZone("CET", 3600)
		ten := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		b := &store.Booking{ID: "b1", Resource: "Room A", Customer: "Grace Hopper", Notes: "Projector\nplease",
			Start: ten.In(paris), End: ten.Add(time.Hour).In(paris), Audit: audit(t0)}
		must(t, s.CreateBooking(ctx(), b))
		if b.Status != store.BookingConfirmed {
			t.Fatalf("Status = %q", b.Status)
		}
		got, err := s.GetBooking(ctx(), "b1")
		must(t, err)
		if got.Start.Location() != time.UTC || got.End.Location() != time.UTC {
			t.Fatalf("times not in UTC: %v %v", got.Start, got.End)
		}
		sameTime(t, "Start", got.Start, ten)
		sameTime(t, "End", got.End, ten.Add(time.Hour))
		if !reflect.DeepEqual(got, b) {
			t.Errorf("stored %+v\ncreated %+v", got, b)
		}
		wantAudit(t, "booking", got.Audit, t0, alice, t0, alice)
		_, err = s.GetBooking(ctx(), "nope")
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.CreateBooking(ctx(), withID(newBooking("Room Z", ten, time.Hour), "b1")), store.ErrConflict)

		// Overlap rules, against [10:00, 11:00) of Room A.
		for i, c := range []struct {
			name     string
			resource string
			start    time.Time
			d        time.Duration
			taken    bool
		}{
			{"same slot", "Room A", ten, time.Hour, true},
			{"starts inside", "Room A", ten.Add(30 * time.Minute), time.Hour, true},
			{"ends inside", "Room A", ten.Add(-30 * time.Minute), time.Hour, true},
			{"inside", "Room A", ten.Add(10 * time.Minute), 10 * time.Minute, true},
			{"around", "Room A", ten.Add(-time.Hour), 3 * time.Hour, true},
			{"a microsecond of overlap", "Room A", ten.Add(time.Hour - time.Microsecond), time.Hour, true},
			{"long booking reaching in", "Room A", ten.Add(-30 * 24 * time.Hour), 30*24*time.Hour + time.Minute, true},
			{"other resource", "Room B", ten, time.Hour, false},
			{"resource names are exact", "room a", ten, time.Hour, false},
			{"right after", "Room A", ten.Add(time.Hour), time.Hour, false},
			{"right before", "Room A", ten.Add(-time.Hour), time.Hour, false},
			{"long booking ending at start", "Room A", ten.Add(-31 * 24 * time.Hour), 31*24*time.Hour - 2*time.Hour, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				nb := withID(newBooking(c.resource, c.start, c.d), fmt.Sprintf("o%d", i))
				err := s.CreateBooking(ctx(), nb)
				if c.taken {
					wantErr(t, err, store.ErrSlotTaken)
					if !strings.Contains(err.Error(), "b1") {
						t.Errorf("message %q does not name the booking in the way", err)
					}
					_, err = s.GetBooking(ctx(), nb.ID)
					wantErr(t, err, store.ErrNotFound)
					return
				}
				must(t, err)
				_, err = s.CancelBooking(ctx(), nb.ID, bob, t0)
				must(t, err)
			})
		}

		// Updates.
		t1 := t0.Add(time.Hour)
		must(t, s.CreateBooking(ctx(), withID(newBooking("Room A", ten.Add(2*time.Hour), time.Hour), "b2"))) // [12, 13)
		up, err := s.UpdateBooking(ctx(), "b1", store.BookingChange{End: ptr(ten.Add(2 * time.Hour))}, bob, t1)
		must(t, err) // [10, 12): overlaps only its old self
		sameTime(t, "End", up.End, ten.Add(2*time.Hour))
		wantAudit(t, "updated booking", up.Audit, t0, alice, t1, bob)
		_, err = s.UpdateBooking(ctx(), "b1", store.BookingChange{End: ptr(ten.Add(2*time.Hour + time.Minute))}, bob, t1)
		wantErr(t, err, store.ErrSlotTaken)
		_, err = s.UpdateBooking(ctx(), "b2", store.BookingChange{Start: ptr(ten), End: ptr(ten.Add(time.Hour))}, bob, t1)
		wantErr(t, err, store.ErrSlotTaken)
		must(t, s.CreateBooking(ctx(), withID(newBooking("Room C", ten, time.Hour), "c1")))
		_, err = s.UpdateBooking(ctx(), "b1", store.BookingChange{Resource: ptr("Room C")}, bob, t1)
		wantErr(t, err, store.ErrSlotTaken)
		got, err = s.GetBooking(ctx(), "b1")
		must(t, err)
		if !reflect.DeepEqual(got, up) {
			t.Fatalf("a refused update changed the booking: %+v", got)
		}
		up, err = s.UpdateBooking(ctx(), "b1", store.BookingChange{Resource: ptr("Room D"), Customer: ptr("Ada"),
			Notes: ptr(""), Start: ptr(ten.Add(24 * time.Hour).In(paris)), End: ptr(ten.Add(25 * time.Hour))}, alice, t1)
		must(t, err)
		if up.Resource != "Room D" || up.Customer != "Ada" || up.Notes != "" || !up.Start.Equal(ten.Add(24*time.Hour)) ||
			up.Start.Location() != time.UTC {
			t.Fatalf("UpdateBooking = %+v", up)
		}
		got, err = s.GetBooking(ctx(), "b1")
		must(t, err)
		if !reflect.DeepEqual(got, up) {
			t.Fatalf("stored %+v\nreturned %+v", got, up)
		}
		// The slot b1 left in Room A is free again.
		must(t, s.CreateBooking(ctx(), withID(newBooking("Room A", ten, time.Hour), "b3")))
		same, err := s.UpdateBooking(ctx(), "b1", store.BookingChange{}, bob, t1.Add(time.Hour))
		must(t, err)
		if !reflect.DeepEqual(same, up) {
			t.Errorf("empty change = %+v", same)
		}
		_, err = s.UpdateBooking(ctx(), "b1", store.BookingChange{End: ptr(ten)}, bob, t1)
		wantInvalid(t, err, "end")
		_, err = s.UpdateBooking(ctx(), "b1", store.BookingChange{Customer: ptr("")}, bob, t1)
		wantInvalid(t, err, "customer")
		_, err = s.UpdateBooking(ctx(), "nope", store.BookingChange{Customer: ptr("x")}, bob, t1)
		wantErr(t, err, store.ErrNotFound)

		// Cancelling frees the slot, once.
		t2 := t0.Add(2 * time.Hour)
		c, err := s.CancelBooking(ctx(), "b3", bob, t2)
		must(t, err)
		if c.Status != store.BookingCancelled {
			t.Fatalf("Status = %q", c.Status)
		}
		wantAudit(t, "cancelled booking", c.Audit, t0, alice, t2, bob)
		_, err = s.CancelBooking(ctx(), "b3", bob, t2)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.CancelBooking(ctx(), "nope", bob, t2)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.UpdateBooking(ctx(), "b3", store.BookingChange{Customer: ptr("x")}, bob, t2)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.UpdateBooking(ctx(), "b3", store.BookingChange{}, bob, t2)
		wantErr(t, err, store.ErrNotFound)
		must(t, s.CreateBooking(ctx(), withID(newBooking("Room A", ten, time.Hour), "b4")))
		got, err = s.GetBooking(ctx(), "b3")
		must(t, err)
		if got.Status != store.BookingCancelled {
			t.Fatalf("cancelled booking is %q", got.Status)
		}
	})
}

func TestBookingValidation(t *testing.T) {
	start := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		edit  func(b *store.Booking)
		field string
	}{
		{"no id", func(b *store.Booking) { b.ID = "" }, "id"},
		{"no resource", func(b *store.Booking) { b.Resource = "" }, "resource"},
		{"resource too long", func(b *store.Booking) { b.Resource = strings.Repeat("r", 101) }, "resource"},
		{"no customer", func(b *store.Booking) { b.Customer = " " }, "customer"},
		{"customer too long", func(b *store.Booking) { b.Customer = strings.Repeat("c", 201) }, "customer"},
		{"notes too long", func(b *store.Booking) { b.Notes = strings.Repeat("n", 2001) }, "notes"},
		{"no start", func(b *store.Booking) { b.Start = time.Time{} }, "start"},
		{"no end", func(b *store.Booking) { b.End = time.Time{} }, "end"},
		{"end before start", func(b *store.Booking) { b.End = b.Start.Add(-time.Minute) }, "end"},
		{"empty interval", func(b *store.Booking) { b.End = b.Start }, "end"},
		{"over 31 days", func(b *store.Booking) { b.End = b.Start.Add(31*24*time.Hour + time.Microsecond) }, "end"},
		{"cancelled", func(b *store.Booking) { b.Status = store.BookingCancelled }, "status"},
		{"no creator", func(b *store.Booking) { b.CreatedBy = "" }, "created_by"},
	}
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := withID(newBooking("Room", start, time.Hour), "b")
				c.edit(b)
				wantInvalid(t, s.CreateBooking(ctx(), b), c.field)
			})
		}
		// The limits are valid: 31 days exactly, 100/200/2000 characters.
		b := withID(newBooking(strings.Repeat("r", 100), start, 31*24*time.Hour), "b")
		b.Customer, b.Notes = strings.Repeat("c", 200), strings.Repeat("n", 2000)
		must(t, s.CreateBooking(ctx(), b))
		_, err := s.UpdateBooking(ctx(), "b", store.BookingChange{Start: ptr(start.Add(-time.Minute))}, bob, t0)
		wantInvalid(t, err, "end")
	})
}

func TestListBookings(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		h := func(n int) time.Time { return day.Add(time.Duration(n) * time.Hour) }
		for _, b := range []*store.Booking{
			withID(newBooking("A", h(9), time.Hour), "a09"),  // [9, 10)
			withID(newBooking("A", h(10), time.Hour), "a10"), // [10, 11)
			withID(newBooking("B", h(10), 2*time.Hour), "b10"),
			withID(newBooking("A", h(12), time.Hour), "a12"),
			withID(newBooking("B", h(8), time.Hour), "b08"),
		} {
			must(t, s.CreateBooking(ctx(), b))
		}
		_, err := s.CancelBooking(ctx(), "a12", bob, t0)
		must(t, err)
		ids := func(bs []store.Booking) []string {
			return idsOf(bs, func(b store.Booking) string { return b.ID })
		}
		for _, c := range []struct {
			name string
			f    store.BookingFilter
			want []string
		}{
			{"all, by start then id", store.BookingFilter{}, []string{"b08", "a09", "a10", "b10", "a12"}},
			{"overlapping [10, 11)", store.BookingFilter{From: h(10), To: h(11)}, []string{"a10", "b10"}},
			{"half-open bounds", store.BookingFilter{From: h(10), To: h(10).Add(time.Microsecond)}, []string{"a10", "b10"}},
			{"ending at From is out", store.BookingFilter{From: h(11)}, []string{"b10", "a12"}},
			{"starting at To is out", store.BookingFilter{To: h(9)}, []string{"b08"}},
			{"local times", store.BookingFilter{From: h(9).In(time.FixedZone("X", -7200)), To: h(10)}, []string{"a09"}},
			{"resource", store.BookingFilter{Resource: "A"}, []string{"a09", "a10", "a12"}},
			{"confirmed", store.BookingFilter{Status: store.BookingConfirmed, Resource: "A"}, []string{"a09", "a10"}},
			{"cancelled", store.BookingFilter{Status: store.BookingCancelled}, []string{"a12"}},
			{"nothing", store.BookingFilter{Resource: "C"}, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				got, next, err := s.ListBookings(ctx(), c.f)
				must(t, err)
				if !slices.Equal(ids(got), c.want) || next != "" {
					t.Fatalf("ListBookings = %v %q, want %v", ids(got), next, c.want)
				}
				for _, b := range got {
					if b.Start.Location() != time.UTC {
						t.Fatalf("listed start %v not in UTC", b.Start)
					}
				}
			})
		}
		for _, c := range []struct {
			name  string
			f     store.BookingFilter
			field string
		}{
			{"bad status", store.BookingFilter{Status: "pending"}, "status"},
			{"to before from", store.BookingFilter{From: h(2), To: h(1)}, "to"},
			{"to at from", store.BookingFilter{From: h(2), To: h(2)}, "to"},
			{"limit", store.BookingFilter{Page: store.Page{Limit: 1000}}, "limit"},
			{"cursor", store.BookingFilter{Page: store.Page{Cursor: "WyJib29raW5ncyJd"}}, "cursor"},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, _, err := s.ListBookings(ctx(), c.f)
				wantInvalid(t, err, c.field)
			})
		}
		// Filters hold across pages.
		pages := walk(t, 1, func(p store.Page) ([]store.Booking, string, error) {
			return s.ListBookings(ctx(), store.BookingFilter{Resource: "A", Status: store.BookingConfirmed, Page: p})
		}, func(b store.Booking) string { return b.ID })
		wantPages(t, pages, []string{"a09", "a10"}, 1, 1)
	})
}

func TestBookingConcurrency(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		slot := time.Date(2026, 7, 1, 15, 0, 0, 0, time.UTC)
		run := func(resource func(i int) string, start func(i int) time.Time) (ok, taken int) {
			return race(t, 100, store.ErrSlotTaken, func(i int) error {
				return s.CreateBooking(ctx(), withID(newBooking(resource(i), start(i), time.Hour), fmt.Sprintf("%s-%d", resource(i), i)))
			})
		}
		ok, taken := run(func(int) string { return "same" }, func(int) time.Time { return slot })
		if ok != 1 || taken != 99 {
			t.Fatalf("same slot: %d booked, %d refused; want 1, 99", ok, taken)
		}
		// Overlapping but different intervals: still one per hour.
		ok, taken = run(func(int) string { return "staggered" },
			func(i int) time.Time { return slot.Add(time.Duration(i%4) * 15 * time.Minute) })
		if ok != 1 || taken != 99 {
			t.Fatalf("staggered: %d booked, %d refused; want 1, 99", ok, taken)
		}
		ok, taken = run(func(i int) string { return fmt.Sprintf("room-%d", i) }, func(int) time.Time { return slot })
		if ok != 100 || taken != 0 {
			t.Fatalf("different resources: %d booked, %d refused; want 100, 0", ok, taken)
		}
		list, _, err := s.ListBookings(ctx(), store.BookingFilter{Resource: "same", Page: store.Page{Limit: 100}})
		must(t, err)
		if len(list) != 1 {
			t.Fatalf("%d bookings stored for one slot", len(list))
		}
	})
}

func TestBookingUpdateConcurrency(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		slot := time.Date(2026, 7, 1, 15, 0, 0, 0, time.UTC)
		// 20 bookings on 20 resources all move to one slot of one resource
		// at once: one gets it.
		for i := range 20 {
			must(t, s.CreateBooking(ctx(), withID(newBooking(fmt.Sprintf("r%d", i), slot, time.Hour), fmt.Sprintf("b%d", i))))
		}
		wins, lost := race(t, 20, store.ErrSlotTaken, func(i int) error {
			_, err := s.UpdateBooking(ctx(), fmt.Sprintf("b%d", i), store.BookingChange{Resource: ptr("target")}, bob, t0)
			return err
		})
		if wins != 1 || lost != 19 {
			t.Fatalf("%d moved, %d refused; want 1, 19", wins, lost)
		}
	})
}

// ---- orders ----

func TestOrders(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		newProduct(t, s, "mug", "MUG", "Mug", 1250, 10, "EUR")
		newProduct(t, s, "tea", "TEA", "Tea", 399, 5, "EUR")
		newProduct(t, s, "usd", "USD-1", "Dollar thing", 100, 5, "USD")
		newProduct(t, s, "gone", "GONE", "Gone", 100, 5, "EUR")
		must(t, s.DeleteProduct(ctx(), "gone", alice, t0))

		t1 := t0.Add(time.Hour)
		o, err := s.CreateOrder(ctx(), "o1", "Grace", []store.OrderLine{
			{ProductID: "tea", Quantity: 3}, {ProductID: "mug", Quantity: 2}}, bob, t1)
		must(t, err)
		want := &store.Order{ID: "o1", Customer: "Grace", Status: store.OrderPending, Currency: "EUR",
			TotalMinor: 3*399 + 2*1250, Items: []store.OrderItem{
				{ProductID: "tea", Name: "Tea", Quantity: 3, UnitPriceMinor: 399, LineMinor: 1197},
				{ProductID: "mug", Name: "Mug", Quantity: 2, UnitPriceMinor: 1250, LineMinor: 2500},
			}, Audit: store.Audit{CreatedAt: t1, UpdatedAt: t1, CreatedBy: bob, UpdatedBy: bob}}
		if !reflect.DeepEqual(o, want) {
			t.Fatalf("CreateOrder = %+v\nwant %+v", o, want)
		}
		got, err := s.GetOrder(ctx(), "o1")
		must(t, err)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("GetOrder = %+v\nwant %+v", got, want)
		}
		if stockOf(t, s, "tea") != 2 || stockOf(t, s, "mug") != 8 {
			t.Fatalf("stock not taken: tea %d, mug %d", stockOf(t, s, "tea"), stockOf(t, s, "mug"))
		}
		p, err := s.GetProduct(ctx(), "mug")
		must(t, err)
		wantAudit(t, "ordered product", p.Audit, t0, alice, t1, bob)
		_, err = s.GetOrder(ctx(), "nope")
		wantErr(t, err, store.ErrNotFound)

		// Prices are those of the order's time.
		_, err = s.UpdateProduct(ctx(), "tea", store.ProductChange{PriceMinor: ptr(int64(500))}, alice, t1)
		must(t, err)
		got, err = s.GetOrder(ctx(), "o1")
		must(t, err)
		if got.Items[0].UnitPriceMinor != 399 || got.TotalMinor != want.TotalMinor {
			t.Fatalf("a price change altered a placed order: %+v", got)
		}

		// Not enough of one line: nothing changes.
		_, err = s.CreateOrder(ctx(), "o2", "Grace", []store.OrderLine{
			{ProductID: "mug", Quantity: 1}, {ProductID: "tea", Quantity: 3}}, bob, t1)
		wantErr(t, err, store.ErrInsufficientStock)
		var se *store.StockError
		if !errors.As(err, &se) || se.ProductID != "tea" || se.Available != 2 || se.Requested != 3 {
			t.Fatalf("error = %v, want a StockError for tea with 2 available", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "tea") || !strings.Contains(msg, "2 available") {
			t.Errorf("message %q names neither the product nor what is available", msg)
		}
		if stockOf(t, s, "tea") != 2 || stockOf(t, s, "mug") != 8 {
			t.Fatalf("a failed order changed stock: tea %d, mug %d", stockOf(t, s, "tea"), stockOf(t, s, "mug"))
		}
		_, err = s.GetOrder(ctx(), "o2")
		wantErr(t, err, store.ErrNotFound)

		// A duplicate id leaves the stock alone too.
		_, err = s.CreateOrder(ctx(), "o1", "Grace", []store.OrderLine{{ProductID: "mug", Quantity: 1}}, bob, t1)
		wantErr(t, err, store.ErrConflict)
		if stockOf(t, s, "mug") != 8 {
			t.Fatalf("a duplicate order took stock: mug %d", stockOf(t, s, "mug"))
		}

		lines := func(n int) []store.OrderLine {
			out := make([]store.OrderLine, n)
			for i := range out {
				out[i] = store.OrderLine{ProductID: fmt.Sprintf("x%d", i), Quantity: 1}
			}
			return out
		}
		for _, c := range []struct {
			name     string
			id, cust string
			lines    []store.OrderLine
			field    string
		}{
			{"no id", "", "Grace", []store.OrderLine{{ProductID: "mug", Quantity: 1}}, "id"},
			{"no customer", "ox", "", []store.OrderLine{{ProductID: "mug", Quantity: 1}}, "customer"},
			{"no lines", "ox", "Grace", nil, "items"},
			{"51 lines", "ox", "Grace", lines(51), "items"},
			{"no product", "ox", "Grace", []store.OrderLine{{Quantity: 1}}, "items[0].product_id"},
			{"zero quantity", "ox", "Grace", []store.OrderLine{{ProductID: "mug", Quantity: 1}, {ProductID: "tea", Quantity: 0}}, "items[1].quantity"},
			{"quantity too high", "ox", "Grace", []store.OrderLine{{ProductID: "mug", Quantity: 10001}}, "items[0].quantity"},
			{"product twice", "ox", "Grace", []store.OrderLine{{ProductID: "mug", Quantity: 1}, {ProductID: "mug", Quantity: 1}}, "items"},
			{"unknown product", "ox", "Grace", []store.OrderLine{{ProductID: "mug", Quantity: 1}, {ProductID: "nope", Quantity: 1}}, "items[1].product_id"},
			{"deleted product", "ox", "Grace", []store.OrderLine{{ProductID: "gone", Quantity: 1}}, "items[0].product_id"},
			{"two currencies", "ox", "Grace", []store.OrderLine{{ProductID: "mug", Quantity: 1}, {ProductID: "usd", Quantity: 1}}, "items"},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := s.CreateOrder(ctx(), c.id, c.cust, c.lines, bob, t1)
				wantInvalid(t, err, c.field)
				if stockOf(t, s, "mug") != 8 {
					t.Fatalf("a refused order took stock")
				}
			})
		}
		// 50 lines and 10000 of one are allowed.
		newProduct(t, s, "bulk", "BULK", "Bulk", 1_000_000_000_000, 10000, "EUR")
		o, err = s.CreateOrder(ctx(), "big", "Grace", []store.OrderLine{{ProductID: "bulk", Quantity: 10000}}, bob, t1)
		must(t, err)
		if o.TotalMinor != 10_000_000_000_000_000 {
			t.Fatalf("total = %d", o.TotalMinor)
		}
		var many []store.OrderLine
		for i := range 50 {
			id := fmt.Sprintf("m%02d", i)
			newProduct(t, s, id, "M-"+id, id, int64(i), 1, "EUR")
			many = append(many, store.OrderLine{ProductID: id, Quantity: 1})
		}
		slices.Reverse(many)
		o, err = s.CreateOrder(ctx(), "many", "Grace", many, bob, t1)
		must(t, err)
		if len(o.Items) != 50 || o.Items[0].ProductID != "m49" || o.TotalMinor != 49*50/2 {
			t.Fatalf("50-line order: %d items, first %s, total %d", len(o.Items), o.Items[0].ProductID, o.TotalMinor)
		}
		got, err = s.GetOrder(ctx(), "many")
		must(t, err)
		if !reflect.DeepEqual(got, o) {
			t.Fatalf("stored 50-line order differs")
		}
	})
}

func TestOrderStatus(t *testing.T) {
	all := []string{store.OrderPending, store.OrderPaid, store.OrderShipped, store.OrderDelivered, store.OrderCancelled}
	// How to reach each status from pending.
	path := map[string][]string{
		store.OrderPending:   nil,
		store.OrderPaid:      {store.OrderPaid},
		store.OrderShipped:   {store.OrderPaid, store.OrderShipped},
		store.OrderDelivered: {store.OrderPaid, store.OrderShipped, store.OrderDelivered},
		store.OrderCancelled: {store.OrderCancelled},
	}
	allowed := map[[2]string]bool{
		{store.OrderPending, store.OrderPaid}:      true,
		{store.OrderPaid, store.OrderShipped}:      true,
		{store.OrderShipped, store.OrderDelivered}: true,
		{store.OrderPending, store.OrderCancelled}: true,
		{store.OrderPaid, store.OrderCancelled}:    true,
	}
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		newProduct(t, s, "p", "P", "P", 100, 1000, "EUR")
		n := 0
		for _, from := range all {
			for _, to := range all {
				t.Run(from+" to "+to, func(t *testing.T) {
					n++
					id := fmt.Sprintf("o%d", n)
					_, err := s.CreateOrder(ctx(), id, "Grace", []store.OrderLine{{ProductID: "p", Quantity: 2}}, alice, t0)
					must(t, err)
					for _, st := range path[from] {
						noErr[*store.Order](t)(s.SetOrderStatus(ctx(), id, st, alice, t0))
					}
					before := stockOf(t, s, "p")
					t1 := t0.Add(time.Hour)
					o, err := s.SetOrderStatus(ctx(), id, to, bob, t1)
					if !allowed[[2]string{from, to}] {
						wantErr(t, err, store.ErrInvalidTransition)
						got, err := s.GetOrder(ctx(), id)
						must(t, err)
						if got.Status != from || stockOf(t, s, "p") != before {
							t.Fatalf("a refused transition changed the order (%s) or stock", got.Status)
						}
						return
					}
					must(t, err)
					if o.Status != to || len(o.Items) != 1 {
						t.Fatalf("SetOrderStatus = %+v", o)
					}
					wantAudit(t, "order", o.Audit, t0, alice, t1, bob)
					wantStock := before
					if to == store.OrderCancelled {
						wantStock += 2
					}
					if got := stockOf(t, s, "p"); got != wantStock {
						t.Fatalf("stock %d after %s → %s, want %d", got, from, to, wantStock)
					}
				})
			}
		}
		_, err := s.SetOrderStatus(ctx(), "nope", store.OrderPaid, bob, t0)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.SetOrderStatus(ctx(), "o1", "refunded", bob, t0)
		wantInvalid(t, err, "status")
		_, err = s.SetOrderStatus(ctx(), "o1", store.OrderPaid, "", t0)
		wantInvalid(t, err, "by")
	})
}

func TestCancelOrderRestoresStock(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		newProduct(t, s, "a", "A", "A", 100, 10, "EUR")
		newProduct(t, s, "b", "B", "B", 200, 10, "EUR")
		_, err := s.CreateOrder(ctx(), "o1", "Grace", []store.OrderLine{{ProductID: "b", Quantity: 4}, {ProductID: "a", Quantity: 10}}, alice, t0)
		must(t, err)
		if stockOf(t, s, "a") != 0 || stockOf(t, s, "b") != 6 {
			t.Fatal("stock not taken")
		}
		// The stock comes back even to a product deleted since.
		must(t, s.DeleteProduct(ctx(), "a", alice, t0))
		_, err = s.SetOrderStatus(ctx(), "o1", store.OrderPaid, alice, t0)
		must(t, err)
		o, err := s.SetOrderStatus(ctx(), "o1", store.OrderCancelled, bob, t0.Add(time.Hour))
		must(t, err)
		if o.Status != store.OrderCancelled {
			t.Fatalf("status %q", o.Status)
		}
		if stockOf(t, s, "a") != 10 || stockOf(t, s, "b") != 10 {
			t.Fatalf("stock after cancelling: a %d, b %d; want 10, 10", stockOf(t, s, "a"), stockOf(t, s, "b"))
		}
		// Cancelling twice is refused and restores nothing.
		_, err = s.SetOrderStatus(ctx(), "o1", store.OrderCancelled, bob, t0)
		wantErr(t, err, store.ErrInvalidTransition)
		if stockOf(t, s, "b") != 10 {
			t.Fatal("a second cancel restored stock again")
		}
	})
}

func TestListOrders(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		newProduct(t, s, "p", "P", "P", 100, 100, "EUR")
		for i, id := range []string{"o1", "o2", "o3", "o4"} {
			_, err := s.CreateOrder(ctx(), id, "Grace", []store.OrderLine{{ProductID: "p", Quantity: int64(i + 1)}}, alice,
				t0.Add(time.Duration(i)*time.Minute))
			must(t, err)
		}
		noErr[*store.Order](t)(s.SetOrderStatus(ctx(), "o2", store.OrderPaid, alice, t0))
		noErr[*store.Order](t)(s.SetOrderStatus(ctx(), "o4", store.OrderPaid, alice, t0))
		ids := func(os []store.Order) []string { return idsOf(os, func(o store.Order) string { return o.ID }) }
		list, next, err := s.ListOrders(ctx(), store.OrderFilter{})
		must(t, err)
		if !slices.Equal(ids(list), []string{"o4", "o3", "o2", "o1"}) || next != "" {
			t.Fatalf("ListOrders = %v %q", ids(list), next)
		}
		for _, o := range list {
			if len(o.Items) != 1 || o.Items[0].ProductID != "p" {
				t.Fatalf("listed order %s has items %+v", o.ID, o.Items)
			}
		}
		list, _, err = s.ListOrders(ctx(), store.OrderFilter{Status: store.OrderPaid})
		must(t, err)
		if !slices.Equal(ids(list), []string{"o4", "o2"}) {
			t.Fatalf("paid orders = %v", ids(list))
		}
		list, _, err = s.ListOrders(ctx(), store.OrderFilter{Status: store.OrderDelivered})
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("delivered orders = %v", ids(list))
		}
		pages := walk(t, 1, func(p store.Page) ([]store.Order, string, error) {
			return s.ListOrders(ctx(), store.OrderFilter{Status: store.OrderPending, Page: p})
		}, func(o store.Order) string { return o.ID })
		wantPages(t, pages, []string{"o3", "o1"}, 1, 1)
		_, _, err = s.ListOrders(ctx(), store.OrderFilter{Status: "lost"})
		wantInvalid(t, err, "status")
		_, _, err = s.ListOrders(ctx(), store.OrderFilter{Page: store.Page{Limit: 101}})
		wantInvalid(t, err, "limit")
		_, _, err = s.ListOrders(ctx(), store.OrderFilter{Page: store.Page{Cursor: "WyJvcmRlcnMiLCJ4IiwiaWQiXQ"}}) // ["orders","x","id"]
		wantInvalid(t, err, "cursor")
	})
}

func TestOrderConcurrency(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		newProduct(t, s, "hot", "HOT", "Hot item", 100, 20, "EUR")
		ok, short := race(t, 50, store.ErrInsufficientStock, func(i int) error {
			_, err := s.CreateOrder(ctx(), fmt.Sprintf("o%d", i), "Grace", []store.OrderLine{{ProductID: "hot", Quantity: 1}}, alice, t0)
			return err
		})
		if ok != 20 || short != 30 {
			t.Fatalf("%d orders placed, %d short; want 20, 30", ok, short)
		}
		if got := stockOf(t, s, "hot"); got != 0 {
			t.Fatalf("stock = %d, want 0", got)
		}
		list, _, err := s.ListOrders(ctx(), store.OrderFilter{Page: store.Page{Limit: 100}})
		must(t, err)
		if len(list) != 20 {
			t.Fatalf("%d orders stored, want 20", len(list))
		}

		// Orders naming two products in either order never deadlock.
		newProduct(t, s, "x", "X", "X", 100, 1000, "EUR")
		newProduct(t, s, "y", "Y", "Y", 100, 1000, "EUR")
		race(t, 30, nil, func(i int) error {
			lines := []store.OrderLine{{ProductID: "x", Quantity: 1}, {ProductID: "y", Quantity: 1}}
			if i%2 == 1 {
				lines[0], lines[1] = lines[1], lines[0]
			}
			if _, err := s.CreateOrder(ctx(), fmt.Sprintf("xy%d", i), "Grace", lines, alice, t0); err != nil {
				return err
			}
			if i%3 == 0 {
				if _, err := s.SetOrderStatus(ctx(), fmt.Sprintf("xy%d", i), store.OrderCancelled, alice, t0); err != nil {
					return fmt.Errorf("cancelling: %w", err)
				}
			}
			return nil
		})
		if x, y := stockOf(t, s, "x"), stockOf(t, s, "y"); x != 1000-20 || y != 1000-20 {
			t.Fatalf("stock x %d, y %d; want 980 each", x, y)
		}
	})
}

// ---- forms ----

func simpleForm(id string, at time.Time) *store.Form {
	return &store.Form{ID: id, Title: "Contact", Fields: []store.FormField{
		{Name: "name", Label: "Your name", Type: store.FieldText, Required: true},
	}, Audit: audit(at)}
}

func contactForm() *store.Form {
	return &store.Form{ID: "contact", Title: "Contact us", Description: "We answer\nwithin a day.",
		Fields: []store.FormField{
			{Name: "name", Label: "Name", Type: store.FieldText, Required: true, MinLength: 2, MaxLength: 5},
			{Name: "email", Label: "Email", Type: store.FieldEmail, Required: true},
			{Name: "age", Label: "Age", Type: store.FieldNumber, Min: ptr(18.0), Max: ptr(120.5)},
			{Name: "day", Label: "Preferred day", Type: store.FieldDate},
			{Name: "topic", Label: "Topic", Type: store.FieldChoice, Choices: []string{"sales", "support"}},
			{Name: "message", Label: "Message", Type: store.FieldText},
			{Name: "score", Label: "Score", Type: store.FieldNumber},
		}, Audit: audit(t0)}
}

func TestForms(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		f := contactForm()
		must(t, s.CreateForm(ctx(), f))
		got, err := s.GetForm(ctx(), "contact")
		must(t, err)
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("GetForm = %+v\nwant %+v", got, f)
		}
		wantAudit(t, "form", got.Audit, t0, alice, t0, alice)
		_, err = s.GetForm(ctx(), "nope")
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.CreateForm(ctx(), contactForm()), store.ErrConflict)

		must(t, s.CreateForm(ctx(), simpleForm("later", t0.Add(time.Hour))))
		list, next, err := s.ListForms(ctx(), store.Page{})
		must(t, err)
		if ids := idsOf(list, func(f store.Form) string { return f.ID }); !slices.Equal(ids, []string{"later", "contact"}) || next != "" {
			t.Fatalf("ListForms = %v %q", ids, next)
		}
		if !reflect.DeepEqual(&list[1], f) {
			t.Fatalf("listed form differs: %+v", list[1])
		}
		_, _, err = s.ListForms(ctx(), store.Page{Limit: 101})
		wantInvalid(t, err, "limit")
		_, _, err = s.ListForms(ctx(), store.Page{Cursor: "x"})
		wantInvalid(t, err, "cursor")
	})
}

func TestFormValidation(t *testing.T) {
	field := func(edit func(*store.FormField)) func(*store.Form) {
		return func(f *store.Form) { edit(&f.Fields[0]) }
	}
	fields := func(n int) []store.FormField {
		out := make([]store.FormField, n)
		for i := range out {
			out[i] = store.FormField{Name: fmt.Sprintf("f%d", i), Label: "F", Type: store.FieldText}
		}
		return out
	}
	choices := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint(i)
		}
		return out
	}
	cases := []struct {
		name  string
		edit  func(*store.Form)
		field string
	}{
		{"no id", func(f *store.Form) { f.ID = "" }, "id"},
		{"no title", func(f *store.Form) { f.Title = "" }, "title"},
		{"title too long", func(f *store.Form) { f.Title = strings.Repeat("t", 201) }, "title"},
		{"description too long", func(f *store.Form) { f.Description = strings.Repeat("d", 2001) }, "description"},
		{"no fields", func(f *store.Form) { f.Fields = nil }, "fields"},
		{"51 fields", func(f *store.Form) { f.Fields = fields(51) }, "fields"},
		{"no name", field(func(fd *store.FormField) { fd.Name = "" }), "fields[0].name"},
		{"name with capital", field(func(fd *store.FormField) { fd.Name = "Name" }), "fields[0].name"},
		{"name starting with digit", field(func(fd *store.FormField) { fd.Name = "1a" }), "fields[0].name"},
		{"name starting with underscore", field(func(fd *store.FormField) { fd.Name = "_a" }), "fields[0].name"},
		{"name with dash", field(func(fd *store.FormField) { fd.Name = "a-b" }), "fields[0].name"},
		{"name too long", field(func(fd *store.FormField) { fd.Name = "a" + strings.Repeat("b", 40) }), "fields[0].name"},
		{"duplicate name", func(f *store.Form) { f.Fields[2].Name = "name" }, "fields[2].name"},
		{"no label", field(func(fd *store.FormField) { fd.Label = "" }), "fields[0].label"},
		{"label too long", field(func(fd *store.FormField) { fd.Label = strings.Repeat("l", 201) }), "fields[0].label"},
		{"bad type", field(func(fd *store.FormField) { fd.Type = "file" }), "fields[0].type"},
		{"no type", field(func(fd *store.FormField) { fd.Type = "" }), "fields[0].type"},
		{"negative min length", field(func(fd *store.FormField) { fd.MinLength = -1 }), "fields[0].max_length"},
		{"negative max length", field(func(fd *store.FormField) { fd.MaxLength = -1 }), "fields[0].max_length"},
		{"max length too high", field(func(fd *store.FormField) { fd.MaxLength = 10001 }), "fields[0].max_length"},
		{"min length above max", field(func(fd *store.FormField) { fd.MinLength = 3; fd.MaxLength = 2 }), "fields[0].min_length"},
		{"length on a number", func(f *store.Form) { f.Fields[2].MaxLength = 3 }, "fields[2].max_length"},
		{"min above max", func(f *store.Form) { f.Fields[2].Min, f.Fields[2].Max = ptr(5.0), ptr(4.0) }, "fields[2].min"},
		{"bounds on text", field(func(fd *store.FormField) { fd.Max = ptr(1.0) }), "fields[0].min"},
		{"no choices", func(f *store.Form) { f.Fields[4].Choices = nil }, "fields[4].choices"},
		{"51 choices", func(f *store.Form) { f.Fields[4].Choices = choices(51) }, "fields[4].choices"},
		{"empty choice", func(f *store.Form) { f.Fields[4].Choices = []string{"a", ""} }, "fields[4].choices[1]"},
		{"duplicate choice", func(f *store.Form) { f.Fields[4].Choices = []string{"a", "b", "a"} }, "fields[4].choices[2]"},
		{"choices on text", field(func(fd *store.FormField) { fd.Choices = []string{"a"} }), "fields[0].choices"},
	}
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f := contactForm()
				c.edit(f)
				wantInvalid(t, s.CreateForm(ctx(), f), c.field)
			})
		}
		// The limits are valid.
		f := contactForm()
		f.ID, f.Fields = "limits", fields(50)
		f.Fields[0].Name, f.Fields[0].MaxLength, f.Fields[0].MinLength = "a"+strings.Repeat("b", 39), 10000, 10000
		f.Fields[1] = store.FormField{Name: "c", Label: "C", Type: store.FieldChoice, Choices: choices(50)}
		f.Fields[2] = store.FormField{Name: "n", Label: "N", Type: store.FieldNumber, Min: ptr(-1.5), Max: ptr(-1.5)}
		must(t, s.CreateForm(ctx(), f))
	})
}

func TestSubmissions(t *testing.T) {
	forEach(t, func(t *testing.T, s store.Store, _ func() store.Store) {
		must(t, s.CreateForm(ctx(), contactForm()))
		n := 0
		submit := func(values map[string]any) (*store.Submission, error) {
			n++
			sub := &store.Submission{ID: fmt.Sprintf("s%d", n), FormID: "contact", Values: values, Audit: audit(t0)}
			return sub, s.SubmitForm(ctx(), sub)
		}
		base := func() map[string]any { return map[string]any{"name": "Ada", "email": "ada@example.com"} }
		with := func(k string, v any) map[string]any {
			m := base()
			m[k] = v
			return m
		}
		without := func(k string) map[string]any {
			m := base()
			delete(m, k)
			return m
		}

		sub, err := submit(map[string]any{"name": "Ünïç", "email": "a.b+c@mail.example.org", "age": 42.5,
			"day": "2026-02-28", "topic": "support", "message": "", "score": int64(-3)})
		must(t, err)
		want := map[string]any{"name": "Ünïç", "email": "a.b+c@mail.example.org", "age": 42.5,
			"day": "2026-02-28", "topic": "support", "score": -3.0}
		if !reflect.DeepEqual(sub.Values, want) {
			t.Fatalf("stored values %#v, want %#v", sub.Values, want)
		}
		list, next, err := s.ListSubmissions(ctx(), "contact", store.Page{})
		must(t, err)
		if len(list) != 1 || next != "" || !reflect.DeepEqual(&list[0], sub) {
			t.Fatalf("ListSubmissions = %+v %q\nwant %+v", list, next, sub)
		}
		wantAudit(t, "submission", list[0].Audit, t0, alice, t0, alice)

		for _, c := range []struct {
			name   string
			values map[string]any
			field  string
		}{
			{"unknown key", with("phone", "123"), "phone"},
			{"missing required", without("email"), "email"},
			{"empty required", with("name", ""), "name"},
			{"null required", with("name", nil), "name"},
			{"no values", nil, "name"},
			{"text too short", with("name", "A"), "name"},
			{"text too long in characters", with("name", "ééééée"), "name"},
			{"text not a string", with("name", 12.0), "name"},
			{"default max length", with("message", strings.Repeat("m", 10001)), "message"},
			{"email without at", with("email", "ada.example.com"), "email"},
			{"email with two ats", with("email", "a@b@example.com"), "email"},
			{"email without local part", with("email", "@example.com"), "email"},
			{"email without dot in domain", with("email", "ada@localhost"), "email"},
			{"email with empty label", with("email", "ada@example..com"), "email"},
			{"email ending in dot", with("email", "ada@example."), "email"},
			{"email with space", with("email", "ada lovelace@example.com"), "email"},
			{"email too long", with("email", strings.Repeat("a", 250)+"@x.io"), "email"},
			{"number as string", with("age", "42"), "age"},
			{"number as bool", with("age", true), "age"},
			{"number below min", with("age", 17.9), "age"},
			{"number above max", with("age", 120.6), "age"},
			{"date with slashes", with("day", "2026/02/28"), "day"},
			{"date without zero padding", with("day", "2026-2-28"), "day"},
			{"impossible date", with("day", "2026-02-30"), "day"},
			{"date with time", with("day", "2026-02-28T10:00:00Z"), "day"},
			{"date not a string", with("day", 20260228.0), "day"},
			{"choice not listed", with("topic", "billing"), "topic"},
			{"choice in other case", with("topic", "Sales"), "topic"},
			{"choice not a string", with("topic", []any{"sales"}), "topic"},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := submit(c.values)
				wantInvalid(t, err, c.field)
			})
		}
		// Bounds are inclusive; a numeric string in a text field is text.
		_, err = submit(map[string]any{"name": "Abcde", "email": "x@y.zz", "age": 18.0, "message": "42",
			"score": 1e300})
		must(t, err)
		_, err = submit(with("age", 120.5))
		must(t, err)
		// Empty optional answers are left out.
		sub, err = submit(map[string]any{"name": "Ab", "email": "x@y.zz", "day": "", "topic": nil})
		must(t, err)
		if len(sub.Values) != 2 {
			t.Fatalf("stored %v", sub.Values)
		}

		list, _, err = s.ListSubmissions(ctx(), "contact", store.Page{Limit: 100})
		must(t, err)
		if len(list) != 4 {
			t.Fatalf("%d submissions stored, want 4 (refused ones must not be)", len(list))
		}
		wantErr(t, s.SubmitForm(ctx(), &store.Submission{ID: "s1", FormID: "contact", Values: base(), Audit: audit(t0)}), store.ErrConflict)
		wantErr(t, s.SubmitForm(ctx(), &store.Submission{ID: "z", FormID: "nope", Values: base(), Audit: audit(t0)}), store.ErrNotFound)
		wantInvalid(t, s.SubmitForm(ctx(), &store.Submission{FormID: "contact", Values: base(), Audit: audit(t0)}), "id")
		_, _, err = s.ListSubmissions(ctx(), "nope", store.Page{})
		wantErr(t, err, store.ErrNotFound)
		_, _, err = s.ListSubmissions(ctx(), "contact", store.Page{Limit: -5})
		wantInvalid(t, err, "limit")
		_, _, err = s.ListSubmissions(ctx(), "contact", store.Page{Cursor: "WyJmb3JtcyIsIjEiLCJ4Il0"}) // ["forms","1","x"]
		wantInvalid(t, err, "cursor")
	})
}
