package store

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of the back-office data.
const (
	// MaxPriceMinor is the highest price, in minor units.
	MaxPriceMinor int64 = 1_000_000_000_000
	// MaxStock is the highest stock a product can be given by creating
	// it or adjusting its stock (cancelled orders may restore past it).
	MaxStock int64 = 1_000_000_000_000
	// MaxBookingDuration is the longest booking.
	MaxBookingDuration = 31 * 24 * time.Hour
	// MaxOrderLines is the most lines an order can have.
	MaxOrderLines = 50
	// MaxOrderQuantity is the largest quantity of one line.
	MaxOrderQuantity int64 = 10_000
	// MaxFormFields is the most fields a form can have.
	MaxFormFields = 50
	// MaxFieldChoices is the most choices a choice field can have.
	MaxFieldChoices = 50
	// MaxTextAnswer is the longest answer to a text field, in characters,
	// and the highest MaxLength a field can set.
	MaxTextAnswer = 10_000
	// DefaultPageLimit is the page size when Page.Limit is 0.
	DefaultPageLimit = 20
	// MaxPageLimit is the highest Page.Limit.
	MaxPageLimit = 100
)

const (
	maxIDLen          = 128
	maxSKULen         = 64
	maxNameLen        = 200
	maxDescriptionLen = 2000
	maxResourceLen    = 100
	maxCustomerLen    = 200
	maxQueryLen       = 200
	maxEmailLen       = 254
	maxFieldNameLen   = 40
)

// ---- text ----

// checkText checks that s is valid UTF-8 without NUL, of min to max
// characters, and, unless multiline, without control characters. A
// required value (min > 0) must not be blank.
func checkText(field, s string, min, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8 text")
	}
	n := utf8.RuneCountInString(s)
	switch {
	case min > 0 && strings.TrimSpace(s) == "":
		return Invalid(field, "is required")
	case n < min:
		return Invalid(field, "must be at least %d characters long", min)
	case n > max:
		return Invalid(field, "must be at most %d characters long (it has %d)", max, n)
	}
	for _, r := range s {
		if r == 0 || (unicode.IsControl(r) && (!multiline || (r != '\n' && r != '\r' && r != '\t'))) {
			return Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// checkID checks a caller-chosen record id.
func checkID(field, id string) error {
	if id == "" {
		return Invalid(field, "is required")
	}
	if len(id) > maxIDLen {
		return Invalid(field, "must be at most %d bytes long", maxIDLen)
	}
	if !utf8.ValidString(id) {
		return Invalid(field, "must be valid UTF-8 text")
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return Invalid(field, "must not contain spaces or control characters")
		}
	}
	return nil
}

// checkAudit checks the creation stamps of a new row and fills in the
// update stamps from them when they are unset. Times become UTC with
// microsecond precision, as stored.
func checkAudit(a *Audit) error {
	if a.CreatedAt.IsZero() {
		return Invalid("created_at", "is required")
	}
	if err := checkID("created_by", a.CreatedBy); err != nil {
		return err
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	if a.UpdatedBy == "" {
		a.UpdatedBy = a.CreatedBy
	}
	if err := checkID("updated_by", a.UpdatedBy); err != nil {
		return err
	}
	a.CreatedAt, a.UpdatedAt = utcMicro(a.CreatedAt), utcMicro(a.UpdatedAt)
	return nil
}

// checkChange checks who changes a row, and when.
func checkChange(by string, now time.Time) error {
	if err := checkID("by", by); err != nil {
		return err
	}
	if now.IsZero() {
		return Invalid("now", "is required")
	}
	return nil
}

// utcMicro is t as the stores keep it: UTC, microsecond precision.
func utcMicro(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// pageLimit returns the effective limit of p.
func pageLimit(p Page) (int, error) {
	switch {
	case p.Limit == 0:
		return DefaultPageLimit, nil
	case p.Limit < 0 || p.Limit > MaxPageLimit:
		return 0, Invalid("limit", "must be between 1 and %d", MaxPageLimit)
	}
	return p.Limit, nil
}

// ---- products ----

func checkSKU(sku string) error {
	if sku == "" {
		return Invalid("sku", "is required")
	}
	if len(sku) > maxSKULen {
		return Invalid("sku", "must be at most %d characters long", maxSKULen)
	}
	for i := 0; i < len(sku); i++ {
		c := sku[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return Invalid("sku", "may contain only letters A-Z and a-z, digits, '.', '_' and '-'")
		}
	}
	return nil
}

func checkCurrency(field, c string) error {
	if len(c) != 3 || !isUpper(c[0]) || !isUpper(c[1]) || !isUpper(c[2]) {
		return Invalid(field, "must be an ISO 4217 code of three capital letters, such as EUR")
	}
	return nil
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

func checkPrice(p int64) error {
	if p < 0 || p > MaxPriceMinor {
		return Invalid("price_minor", "must be between 0 and %d minor units", MaxPriceMinor)
	}
	return nil
}

// validateProduct checks a new product and normalises its times.
func validateProduct(p *Product) error {
	if err := checkID("id", p.ID); err != nil {
		return err
	}
	if err := checkSKU(p.SKU); err != nil {
		return err
	}
	if err := checkText("name", p.Name, 1, maxNameLen, false); err != nil {
		return err
	}
	if err := checkText("description", p.Description, 0, maxDescriptionLen, true); err != nil {
		return err
	}
	if err := checkPrice(p.PriceMinor); err != nil {
		return err
	}
	if err := checkCurrency("currency", p.Currency); err != nil {
		return err
	}
	if p.Stock < 0 || p.Stock > MaxStock {
		return Invalid("stock", "must be between 0 and %d", MaxStock)
	}
	if !p.DeletedAt.IsZero() {
		return Invalid("deleted_at", "must be empty on a new product")
	}
	return checkAudit(&p.Audit)
}

// validateProductChange checks the fields a change sets.
func validateProductChange(ch ProductChange) error {
	if ch.SKU != nil {
		if err := checkSKU(*ch.SKU); err != nil {
			return err
		}
	}
	if ch.Name != nil {
		if err := checkText("name", *ch.Name, 1, maxNameLen, false); err != nil {
			return err
		}
	}
	if ch.Description != nil {
		if err := checkText("description", *ch.Description, 0, maxDescriptionLen, true); err != nil {
			return err
		}
	}
	if ch.PriceMinor != nil {
		if err := checkPrice(*ch.PriceMinor); err != nil {
			return err
		}
	}
	if ch.Currency != nil {
		if err := checkCurrency("currency", *ch.Currency); err != nil {
			return err
		}
	}
	return nil
}

// checkStockDelta bounds a stock adjustment, so that stock arithmetic
// cannot overflow.
func checkStockDelta(delta int64) error {
	if delta < -MaxStock || delta > MaxStock {
		return Invalid("delta", "must be between %d and %d", -MaxStock, MaxStock)
	}
	return nil
}

// ---- bookings ----

// validateBookingFields checks a booking's fields and makes its times
// UTC with microsecond precision, as stored.
func validateBookingFields(b *Booking) error {
	if err := checkText("resource", b.Resource, 1, maxResourceLen, false); err != nil {
		return err
	}
	if err := checkText("customer", b.Customer, 1, maxCustomerLen, false); err != nil {
		return err
	}
	if err := checkText("notes", b.Notes, 0, maxDescriptionLen, true); err != nil {
		return err
	}
	return checkBookingTimes(&b.Start, &b.End)
}

// checkBookingTimes checks a booking's interval and normalises it.
func checkBookingTimes(start, end *time.Time) error {
	if start.IsZero() {
		return Invalid("start", "is required")
	}
	if end.IsZero() {
		return Invalid("end", "is required")
	}
	*start, *end = utcMicro(*start), utcMicro(*end)
	if !end.After(*start) {
		return Invalid("end", "must be after start")
	}
	if end.Sub(*start) > MaxBookingDuration {
		return Invalid("end", "a booking lasts at most %d days", int(MaxBookingDuration/(24*time.Hour)))
	}
	return nil
}

// validateBooking checks a new booking.
func validateBooking(b *Booking) error {
	if err := checkID("id", b.ID); err != nil {
		return err
	}
	if b.Status != "" && b.Status != BookingConfirmed {
		return Invalid("status", "a new booking is %s", BookingConfirmed)
	}
	if err := validateBookingFields(b); err != nil {
		return err
	}
	return checkAudit(&b.Audit)
}

// ---- orders ----

// validateOrder checks a new order's arguments.
func validateOrder(id, customer string, lines []OrderLine) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	if err := checkText("customer", customer, 1, maxCustomerLen, false); err != nil {
		return err
	}
	if len(lines) == 0 || len(lines) > MaxOrderLines {
		return Invalid("items", "an order has between 1 and %d lines", MaxOrderLines)
	}
	seen := make(map[string]int, len(lines))
	for i, l := range lines {
		if l.ProductID == "" {
			return Invalid(fmt.Sprintf("items[%d].product_id", i), "is required")
		}
		if l.Quantity < 1 || l.Quantity > MaxOrderQuantity {
			return Invalid(fmt.Sprintf("items[%d].quantity", i), "must be between 1 and %d", MaxOrderQuantity)
		}
		if j, dup := seen[l.ProductID]; dup {
			return Invalid("items", "product %q appears in lines %d and %d; order it once with the total quantity", l.ProductID, j, i)
		}
		seen[l.ProductID] = i
	}
	return nil
}

// orderTransitions lists the statuses each status can move to.
var orderTransitions = map[string][]string{
	OrderPending: {OrderPaid, OrderCancelled},
	OrderPaid:    {OrderShipped, OrderCancelled},
	OrderShipped: {OrderDelivered},
}

func canTransition(from, to string) bool {
	for _, s := range orderTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

func checkOrderStatus(field, s string) error {
	switch s {
	case OrderPending, OrderPaid, OrderShipped, OrderDelivered, OrderCancelled:
		return nil
	}
	return Invalid(field, "must be one of %s, %s, %s, %s, %s", OrderPending, OrderPaid, OrderShipped, OrderDelivered, OrderCancelled)
}

// ---- forms ----

// validateForm checks a new form's definition and normalises it: empty
// choice lists become nil.
func validateForm(f *Form) error {
	if err := checkID("id", f.ID); err != nil {
		return err
	}
	if err := checkText("title", f.Title, 1, maxNameLen, false); err != nil {
		return err
	}
	if err := checkText("description", f.Description, 0, maxDescriptionLen, true); err != nil {
		return err
	}
	if len(f.Fields) == 0 || len(f.Fields) > MaxFormFields {
		return Invalid("fields", "a form has between 1 and %d fields", MaxFormFields)
	}
	names := make(map[string]bool, len(f.Fields))
	for i := range f.Fields {
		fd := &f.Fields[i]
		if err := validateField(fmt.Sprintf("fields[%d]", i), fd); err != nil {
			return err
		}
		if names[fd.Name] {
			return Invalid(fmt.Sprintf("fields[%d].name", i), "%q is the name of another field", fd.Name)
		}
		names[fd.Name] = true
	}
	return checkAudit(&f.Audit)
}

func validFieldName(s string) bool {
	if s == "" || len(s) > maxFieldNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validateField(at string, fd *FormField) error {
	if !validFieldName(fd.Name) {
		return Invalid(at+".name", "must start with a letter a-z and have at most %d characters a-z, 0-9 and '_'", maxFieldNameLen)
	}
	if err := checkText(at+".label", fd.Label, 1, maxNameLen, false); err != nil {
		return err
	}
	isText := fd.Type == FieldText || fd.Type == FieldEmail
	switch fd.Type {
	case FieldText, FieldEmail, FieldNumber, FieldDate, FieldChoice:
	default:
		return Invalid(at+".type", "must be one of %s, %s, %s, %s, %s", FieldText, FieldEmail, FieldNumber, FieldDate, FieldChoice)
	}
	if fd.MinLength < 0 || fd.MaxLength < 0 || fd.MinLength > MaxTextAnswer || fd.MaxLength > MaxTextAnswer {
		return Invalid(at+".max_length", "lengths must be between 0 and %d", MaxTextAnswer)
	}
	if (fd.MinLength != 0 || fd.MaxLength != 0) && !isText {
		return Invalid(at+".max_length", "lengths apply only to %s and %s fields", FieldText, FieldEmail)
	}
	if fd.MaxLength != 0 && fd.MinLength > fd.MaxLength {
		return Invalid(at+".min_length", "must not exceed max_length")
	}
	if (fd.Min != nil || fd.Max != nil) && fd.Type != FieldNumber {
		return Invalid(at+".min", "bounds apply only to %s fields", FieldNumber)
	}
	for _, b := range []struct {
		name string
		v    *float64
	}{{"min", fd.Min}, {"max", fd.Max}} {
		if b.v != nil && (math.IsNaN(*b.v) || math.IsInf(*b.v, 0)) {
			return Invalid(at+"."+b.name, "must be a finite number")
		}
	}
	if fd.Min != nil && fd.Max != nil && *fd.Min > *fd.Max {
		return Invalid(at+".min", "must not exceed max")
	}
	if fd.Type != FieldChoice {
		if len(fd.Choices) > 0 {
			return Invalid(at+".choices", "apply only to %s fields", FieldChoice)
		}
		fd.Choices = nil
		return nil
	}
	if len(fd.Choices) == 0 || len(fd.Choices) > MaxFieldChoices {
		return Invalid(at+".choices", "a choice field has between 1 and %d choices", MaxFieldChoices)
	}
	seen := make(map[string]bool, len(fd.Choices))
	for j, c := range fd.Choices {
		if err := checkText(fmt.Sprintf("%s.choices[%d]", at, j), c, 1, maxNameLen, false); err != nil {
			return err
		}
		if seen[c] {
			return Invalid(fmt.Sprintf("%s.choices[%d]", at, j), "%q is listed twice", c)
		}
		seen[c] = true
	}
	return nil
}

// validateSubmission checks values against fields and returns them as
// stored: numbers as float64, other values as strings, and empty
// optional answers (nil or "") left out. A ValidationError names the
// field (or the unknown key) at fault.
func validateSubmission(fields []FormField, values map[string]any) (map[string]any, error) {
	byName := make(map[string]*FormField, len(fields))
	for i := range fields {
		byName[fields[i].Name] = &fields[i]
	}
	var unknown []string
	for k := range values {
		if byName[k] == nil {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, Invalid(unknown[0], "is not a field of this form")
	}
	out := make(map[string]any, len(values))
	for i := range fields {
		fd := &fields[i]
		v, ok := values[fd.Name]
		if !ok || v == nil || v == "" {
			if fd.Required {
				return nil, Invalid(fd.Name, "is required")
			}
			continue
		}
		norm, err := checkAnswer(fd, v)
		if err != nil {
			return nil, err
		}
		out[fd.Name] = norm
	}
	return out, nil
}

func checkAnswer(fd *FormField, v any) (any, error) {
	if fd.Type == FieldNumber {
		return checkNumber(fd, v)
	}
	s, ok := v.(string)
	if !ok {
		return nil, Invalid(fd.Name, "must be a string, not %s", jsonKind(v))
	}
	switch fd.Type {
	case FieldText, FieldEmail:
		max := fd.MaxLength
		if max == 0 {
			max = MaxTextAnswer
		}
		if fd.Type == FieldEmail && max > maxEmailLen {
			max = maxEmailLen
		}
		if err := checkText(fd.Name, s, fd.MinLength, max, fd.Type == FieldText); err != nil {
			return nil, err
		}
		if fd.Type == FieldEmail && !plausibleEmail(s) {
			return nil, Invalid(fd.Name, "must be an email address such as name@example.com")
		}
	case FieldDate:
		if _, err := time.Parse(time.DateOnly, s); err != nil || len(s) != len(time.DateOnly) {
			return nil, Invalid(fd.Name, "must be a date written YYYY-MM-DD")
		}
	case FieldChoice:
		found := false
		for _, c := range fd.Choices {
			if c == s {
				found = true
				break
			}
		}
		if !found {
			return nil, Invalid(fd.Name, "must be one of %s", quoteList(fd.Choices))
		}
	}
	return s, nil
}

func checkNumber(fd *FormField, v any) (any, error) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case float32:
		f = float64(n)
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return nil, Invalid(fd.Name, "must be a number")
		}
	case string:
		return nil, Invalid(fd.Name, "must be a JSON number, not a string (write 42, not \"42\")")
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f = float64(rv.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f = float64(rv.Uint())
		default:
			return nil, Invalid(fd.Name, "must be a number, not %s", jsonKind(v))
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, Invalid(fd.Name, "must be a finite number")
	}
	if fd.Min != nil && f < *fd.Min {
		return nil, Invalid(fd.Name, "must be at least %g", *fd.Min)
	}
	if fd.Max != nil && f > *fd.Max {
		return nil, Invalid(fd.Name, "must be at most %g", *fd.Max)
	}
	return f, nil
}

// plausibleEmail accepts local@domain with one '@', a non-empty local
// part and a domain of at least two non-empty dot-separated labels, with
// no spaces.
func plausibleEmail(s string) bool {
	if len(s) > maxEmailLen || strings.Count(s, "@") != 1 || strings.ContainsFunc(s, unicode.IsSpace) {
		return false
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || !strings.Contains(domain, ".") {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" {
			return false
		}
	}
	return true
}

// jsonKind names the JSON type of a decoded value, for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case bool:
		return "true or false"
	case string:
		return "a string"
	case float64, float32, json.Number, int, int64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
