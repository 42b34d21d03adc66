// SQL of the back office's forms and their submissions.

package store

import (
	"context"
	"encoding/json"
	"fmt"
)

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
	f, err := queryOne(ctx, s.db, scanForm, `SELECT `+formCols+` FROM forms WHERE id = $1`, id)
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
	list, next, err := queryPage(ctx, s.db, scanForm, limit,
		func(f *Form) string { return encodeCursor("forms", timeKey(f.CreatedAt), f.ID) },
		`SELECT `+formCols+` FROM forms`+where(conds)+` ORDER BY created_at DESC, id DESC`, a)
	if err != nil {
		return nil, "", fmt.Errorf("listing forms: %w", err)
	}
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
		f, err := queryOne(ctx, q, scanForm, `SELECT `+formCols+` FROM forms WHERE id = $1`, sub.FormID)
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
	list, next, err := queryPage(ctx, s.db, scanSubmission, limit,
		func(sub *Submission) string { return encodeCursor("submissions", timeKey(sub.CreatedAt), sub.ID) },
		`SELECT `+submissionCols+` FROM form_submissions`+where(conds)+` ORDER BY created_at DESC, id DESC`, a)
	if err != nil {
		return nil, "", fmt.Errorf("listing submissions: %w", err)
	}
	return list, next, nil
}
