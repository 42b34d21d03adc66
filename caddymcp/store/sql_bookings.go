// SQL of the back office's bookings, whose slots never overlap.

package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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
	o, err := queryOne(ctx, q, scanBooking, `SELECT `+bookingCols+` FROM bookings
		WHERE resource = $1 AND status = 'confirmed' AND start_at < $3 AND start_at > $4 AND end_at > $2
		AND id <> $5 ORDER BY start_at, id LIMIT 1`,
		b.Resource, ts(b.Start), ts(b.End), ts(b.Start.Add(-MaxBookingDuration)), b.ID)
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
	b, err := queryOne(ctx, s.db, scanBooking, `SELECT `+bookingCols+` FROM bookings WHERE id = $1`, id)
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
	list, next, err := queryPage(ctx, s.db, scanBooking, limit,
		func(b *Booking) string { return encodeCursor("bookings", timeKey(b.Start), b.ID) },
		`SELECT `+bookingCols+` FROM bookings`+where(conds)+` ORDER BY start_at, id`, a)
	if err != nil {
		return nil, "", fmt.Errorf("listing bookings: %w", err)
	}
	return list, next, nil
}

func (s *sqlStore) UpdateBooking(ctx context.Context, id string, ch BookingChange, by string, now time.Time) (*Booking, error) {
	if err := checkChange(by, now); err != nil {
		return nil, fmt.Errorf("updating booking: %w", err)
	}
	var out *Booking
	err := s.db.inTx(ctx, false, func(q querier) error {
		cur, err := queryOne(ctx, q, scanBooking, `SELECT `+bookingCols+` FROM bookings WHERE id = $1`+s.forUpdate(), id)
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
	b, err := queryOne(ctx, s.db, scanBooking, `UPDATE bookings SET status = 'cancelled', updated_at = $2, updated_by = $3
		WHERE id = $1 AND status = 'confirmed' RETURNING `+bookingCols, id, ts(now), by)
	if err != nil {
		return nil, fmt.Errorf("cancelling booking %s: %w", id, err)
	}
	return b, nil
}
