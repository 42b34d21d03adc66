package tools

import (
	"context"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// FieldView describes one form field.
type FieldView struct {
	Name      string   `json:"name" jsonschema:"key of the value in a submission: lowercase letters, digits and _"`
	Label     string   `json:"label" jsonschema:"what the field asks"`
	Type      string   `json:"type" jsonschema:"text, email, number, date or choice"`
	Required  bool     `json:"required,omitempty" jsonschema:"whether a value is needed"`
	MinLength int      `json:"min_length,omitempty" jsonschema:"shortest text or email"`
	MaxLength int      `json:"max_length,omitempty" jsonschema:"longest text or email"`
	Min       *float64 `json:"min,omitempty" jsonschema:"smallest number"`
	Max       *float64 `json:"max,omitempty" jsonschema:"largest number"`
	Choices   []string `json:"choices,omitempty" jsonschema:"allowed values of a choice field"`
}

// FormView is a form as tools return it.
type FormView struct {
	ID          string      `json:"id"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Fields      []FieldView `json:"fields"`
	auditView
}

func viewForm(f *store.Form) FormView {
	v := FormView{ID: f.ID, Title: f.Title, Description: f.Description, Fields: []FieldView{}, auditView: viewAudit(f.Audit)}
	for _, fl := range f.Fields {
		v.Fields = append(v.Fields, FieldView{Name: fl.Name, Label: fl.Label, Type: fl.Type, Required: fl.Required,
			MinLength: fl.MinLength, MaxLength: fl.MaxLength, Min: fl.Min, Max: fl.Max, Choices: fl.Choices})
	}
	return v
}

// FormList is a page of forms.
type FormList struct {
	Forms []FormView `json:"forms"`
	nextPage
}

// SubmissionView is one submission.
type SubmissionView struct {
	ID     string         `json:"id"`
	FormID string         `json:"form_id"`
	Values map[string]any `json:"values"`
	auditView
}

func viewSubmission(s *store.Submission) SubmissionView {
	return SubmissionView{ID: s.ID, FormID: s.FormID, Values: s.Values, auditView: viewAudit(s.Audit)}
}

// SubmissionList is a page of submissions.
type SubmissionList struct {
	Submissions []SubmissionView `json:"submissions"`
	nextPage
}

type formCreateIn struct {
	Title       string      `json:"title" jsonschema:"the form's title"`
	Description string      `json:"description,omitempty" jsonschema:"what the form is for"`
	Fields      []FieldView `json:"fields" jsonschema:"the fields, 1 to 50"`
}

type formSubmitIn struct {
	FormID string         `json:"form_id" jsonschema:"the form's id"`
	Values map[string]any `json:"values" jsonschema:"one value per field name: strings, numbers for number fields, YYYY-MM-DD for dates"`
}

type submissionsIn struct {
	FormID string `json:"form_id" jsonschema:"the form's id"`
	pageIn
}

func (s *Server) addForms() {
	shop := s.cfg.Shop
	add(s, toolSpec{name: "forms_list", family: "form", action: "list", scope: "form:read", title: "List forms",
		description: "Lists forms, newest first.", readOnly: true, idempotent: true},
		func(ctx context.Context, p *bearer.Principal, in *pageIn) (FormList, error) {
			list, next, err := shop.ListForms(ctx, in.page())
			return FormList{Forms: views(list, viewForm), nextPage: nextPage{next}}, err
		})
	add(s, toolSpec{name: "forms_get", family: "form", action: "get", scope: "form:read", title: "Get a form",
		description: "Returns one form with its fields.", readOnly: true, idempotent: true},
		getByID(shop.GetForm, viewForm))
	add(s, toolSpec{name: "forms_create", family: "form", action: "create", scope: "form:write", title: "Create a form",
		description: "Creates a form with text, email, number, date and choice fields."},
		func(ctx context.Context, p *bearer.Principal, in *formCreateIn) (FormView, error) {
			f := &store.Form{ID: newID("frm"), Title: in.Title, Description: in.Description, Audit: audit(p, s.cfg.Now())}
			for _, fl := range in.Fields {
				f.Fields = append(f.Fields, store.FormField{Name: fl.Name, Label: fl.Label, Type: fl.Type, Required: fl.Required,
					MinLength: fl.MinLength, MaxLength: fl.MaxLength, Min: fl.Min, Max: fl.Max, Choices: fl.Choices})
			}
			return viewOf(viewForm, f, shop.CreateForm(ctx, f))
		})
	add(s, toolSpec{name: "forms_submit", family: "form", action: "submit", scope: "form:write", title: "Submit a form",
		description: "Submits answers to a form; they are checked against its fields."},
		func(ctx context.Context, p *bearer.Principal, in *formSubmitIn) (SubmissionView, error) {
			if err := required("form_id", in.FormID); err != nil {
				return SubmissionView{}, err
			}
			sub := &store.Submission{ID: newID("sub"), FormID: in.FormID, Values: in.Values, Audit: audit(p, s.cfg.Now())}
			return viewOf(viewSubmission, sub, shop.SubmitForm(ctx, sub))
		})
	add(s, toolSpec{name: "forms_list_submissions", family: "form", action: "list_submissions", scope: "form:read",
		title: "List a form's submissions", description: "Lists a form's submissions, newest first.", readOnly: true, idempotent: true},
		func(ctx context.Context, p *bearer.Principal, in *submissionsIn) (SubmissionList, error) {
			if err := required("form_id", in.FormID); err != nil {
				return SubmissionList{}, err
			}
			list, next, err := shop.ListSubmissions(ctx, in.FormID, in.page())
			return SubmissionList{Submissions: views(list, viewSubmission), nextPage: nextPage{next}}, err
		})
}
