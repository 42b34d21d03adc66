package tools

import (
	"context"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// BookingView is a booking as tools return it.
type BookingView struct {
	ID       string `json:"id"`
	Resource string `json:"resource" jsonschema:"the room, staff member, table… booked"`
	Customer string `json:"customer"`
	Notes    string `json:"notes"`
	Start    string `json:"start" jsonschema:"RFC 3339 time"`
	End      string `json:"end" jsonschema:"RFC 3339 time"`
	Status   string `json:"status" jsonschema:"confirmed or cancelled"`
	auditView
}

func viewBooking(b *store.Booking) BookingView {
	return BookingView{ID: b.ID, Resource: b.Resource, Customer: b.Customer, Notes: b.Notes,
		Start: b.Start.UTC().Format(time.RFC3339), End: b.End.UTC().Format(time.RFC3339), Status: b.Status,
		auditView: viewAudit(b.Audit)}
}

// BookingList is a page of bookings.
type BookingList struct {
	Bookings []BookingView `json:"bookings"`
	nextPage
}

type bookingsListIn struct {
	From     string `json:"from,omitempty" jsonschema:"RFC 3339 time: only bookings ending after it"`
	To       string `json:"to,omitempty" jsonschema:"RFC 3339 time: only bookings starting before it"`
	Status   string `json:"status,omitempty" jsonschema:"confirmed or cancelled"`
	Resource string `json:"resource,omitempty" jsonschema:"only this resource"`
	pageIn
}

type bookingCreateIn struct {
	Resource string `json:"resource" jsonschema:"what is booked: a room, a staff member, a table…"`
	Customer string `json:"customer" jsonschema:"who the booking is for"`
	Start    string `json:"start" jsonschema:"RFC 3339 time with a zone, e.g. 2026-12-01T10:00:00+01:00"`
	End      string `json:"end" jsonschema:"RFC 3339 time with a zone, after start"`
	Notes    string `json:"notes,omitempty" jsonschema:"notes"`
}

type bookingUpdateIn struct {
	ID       string  `json:"id" jsonschema:"the booking's id"`
	Resource *string `json:"resource,omitempty" jsonschema:"new resource"`
	Customer *string `json:"customer,omitempty" jsonschema:"new customer"`
	Start    *string `json:"start,omitempty" jsonschema:"new RFC 3339 start"`
	End      *string `json:"end,omitempty" jsonschema:"new RFC 3339 end"`
	Notes    *string `json:"notes,omitempty" jsonschema:"new notes"`
}

// parseTime reads an RFC 3339 time (which always carries a zone).
func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, store.Invalid(field, "must be an RFC 3339 time with a zone, e.g. 2026-12-01T10:00:00+01:00")
	}
	return t, nil
}

// optTime parses an optional time argument.
func optTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	return parseTime(field, v)
}

// parseRange parses the two ends of a time range with parse (parseTime or
// optTime); an error names the first bad end.
func parseRange(parse func(field, v string) (time.Time, error), startField, start, endField, end string) (time.Time, time.Time, error) {
	s, err := parse(startField, start)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	e, err := parse(endField, end)
	return s, e, err
}

func (s *Server) addBookings() {
	shop := s.cfg.Shop
	add(s, toolSpec{name: "bookings_list", family: "booking", action: "list", scope: "booking:read", title: "List bookings",
		description: "Lists bookings in a time range, by status and resource, a page at a time.", readOnly: true, idempotent: true},
		func(ctx context.Context, p *bearer.Principal, in *bookingsListIn) (BookingList, error) {
			from, to, err := parseRange(optTime, "from", in.From, "to", in.To)
			if err != nil {
				return BookingList{}, err
			}
			list, next, err := shop.ListBookings(ctx, store.BookingFilter{From: from, To: to, Status: in.Status,
				Resource: in.Resource, Page: in.page()})
			return BookingList{Bookings: views(list, viewBooking), nextPage: nextPage{next}}, err
		})
	add(s, toolSpec{name: "bookings_get", family: "booking", action: "get", scope: "booking:read", title: "Get a booking",
		description: "Returns one booking by id.", readOnly: true, idempotent: true},
		getByID(shop.GetBooking, viewBooking))
	add(s, toolSpec{name: "bookings_create", family: "booking", action: "create", scope: "booking:write", title: "Create a booking",
		description: "Books a resource for a time range; a resource is never double-booked."},
		func(ctx context.Context, p *bearer.Principal, in *bookingCreateIn) (BookingView, error) {
			start, end, err := parseRange(parseTime, "start", in.Start, "end", in.End)
			if err != nil {
				return BookingView{}, err
			}
			b := &store.Booking{ID: newID("bkg"), Resource: in.Resource, Customer: in.Customer, Notes: in.Notes,
				Start: start, End: end, Status: store.BookingConfirmed, Audit: audit(p, s.cfg.Now())}
			return viewOf(viewBooking, b, shop.CreateBooking(ctx, b))
		})
	add(s, toolSpec{name: "bookings_update", family: "booking", action: "update", scope: "booking:write", title: "Update a booking",
		description: "Changes a confirmed booking; a new time or resource must be free.", idempotent: true},
		func(ctx context.Context, p *bearer.Principal, in *bookingUpdateIn) (BookingView, error) {
			if err := required("id", in.ID); err != nil {
				return BookingView{}, err
			}
			ch := store.BookingChange{Resource: in.Resource, Customer: in.Customer, Notes: in.Notes}
			for field, v := range map[string]*string{"start": in.Start, "end": in.End} {
				if v == nil {
					continue
				}
				t, err := parseTime(field, *v)
				if err != nil {
					return BookingView{}, err
				}
				if field == "start" {
					ch.Start = &t
				} else {
					ch.End = &t
				}
			}
			b, err := shop.UpdateBooking(ctx, in.ID, ch, p.Subject, s.cfg.Now())
			return viewOf(viewBooking, b, err)
		})
	add(s, toolSpec{name: "bookings_cancel", family: "booking", action: "cancel", scope: "booking:write", title: "Cancel a booking",
		description: "Cancels a booking and frees its time slot.", destructive: true},
		func(ctx context.Context, p *bearer.Principal, in *idIn) (BookingView, error) {
			if err := required("id", in.ID); err != nil {
				return BookingView{}, err
			}
			b, err := shop.CancelBooking(ctx, in.ID, p.Subject, s.cfg.Now())
			return viewOf(viewBooking, b, err)
		})
}
