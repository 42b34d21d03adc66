package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/caddymcp/caddymcp/caddymcp/bearer"
	"github.com/caddymcp/caddymcp/caddymcp/store"
)

// Tool describes one tool: its MCP name, its place in the REST view
// (family and action), and the scope that calling it needs.
type Tool struct {
	// Name is the MCP tool name, e.g. "products_list".
	Name string `json:"name"`
	// Family is "product", "booking", "order" or "form".
	Family string `json:"family"`
	// Action is the REST action, e.g. "list".
	Action string `json:"action"`
	// Scope is the scope a token needs to call the tool.
	Scope string `json:"scope"`
	// Description says what the tool does.
	Description string `json:"description"`
	// ReadOnly, Destructive and Idempotent are the tool's annotations.
	ReadOnly    bool `json:"read_only"`
	Destructive bool `json:"destructive"`
	Idempotent  bool `json:"idempotent"`
	// InputSchema is the JSON Schema of the arguments.
	InputSchema json.RawMessage `json:"input_schema"`

	// run decodes raw arguments, runs the tool and returns its result.
	run func(ctx context.Context, p *bearer.Principal, args json.RawMessage) (any, error)
	mcp mcp.Tool
}

// toolSpec is what a tool family declares.
type toolSpec struct {
	name, family, action, scope, title, description string
	readOnly, destructive, idempotent               bool
}

// add registers a tool whose arguments decode into In and whose result is
// Out.
func add[In, Out any](s *Server, spec toolSpec, run func(ctx context.Context, p *bearer.Principal, in *In) (Out, error)) {
	t := mcp.NewTool(spec.name,
		mcp.WithToolTitle(spec.title),
		mcp.WithDescription(spec.description+" Needs the "+spec.scope+" scope."),
		mcp.WithInputSchema[In](),
		mcp.WithOutputSchema[Out](),
		mcp.WithReadOnlyHintAnnotation(spec.readOnly),
		mcp.WithDestructiveHintAnnotation(spec.destructive),
		mcp.WithIdempotentHintAnnotation(spec.idempotent),
		mcp.WithOpenWorldHintAnnotation(false),
	)
	t.Meta = &mcp.Meta{AdditionalFields: map[string]any{"scope": spec.scope}}
	s.tools = append(s.tools, &Tool{
		Name: spec.name, Family: spec.family, Action: spec.action, Scope: spec.scope, Description: spec.description,
		ReadOnly: spec.readOnly, Destructive: spec.destructive, Idempotent: spec.idempotent, InputSchema: t.RawInputSchema,
		mcp: t,
		run: func(ctx context.Context, p *bearer.Principal, raw json.RawMessage) (any, error) {
			in := new(In)
			if err := decodeArgs(raw, in); err != nil {
				return nil, err
			}
			return run(ctx, p, in)
		},
	})
}

// decodeArgs decodes tool arguments strictly: unknown fields and wrong
// types are validation errors naming the field.
func decodeArgs(raw json.RawMessage, dst any) error {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return nil // no arguments: every field keeps its zero value
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "arguments"
			}
			return store.Invalid(field, "expected %s", jsonKind(te.Type.Kind().String()))
		case errors.As(err, &se):
			return store.Invalid("arguments", "not valid JSON")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return store.Invalid(name, "unknown argument")
		default:
			return store.Invalid("arguments", "must be a JSON object")
		}
	}
	// Nothing but white space may follow: dec.More misses a stray ']'
	// or '}'.
	if _, err := dec.Token(); err != io.EOF {
		return store.Invalid("arguments", "must be one JSON object")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "float64", "float32":
		return "a number"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "another type"
}

// getByID is the run function of a "get" tool: it fetches one record by
// its id argument and returns its view.
func getByID[R, V any](get func(context.Context, string) (*R, error), view func(*R) V) func(context.Context, *bearer.Principal, *idIn) (V, error) {
	return func(ctx context.Context, _ *bearer.Principal, in *idIn) (V, error) {
		if err := required("id", in.ID); err != nil {
			var zero V
			return zero, err
		}
		r, err := get(ctx, in.ID)
		return viewOf(view, r, err)
	}
}

// viewOf ends a tool that returns one record: the record's view, or the
// error of the store call that fetched, created or changed it. The view
// is taken only after that call, so viewOf(view, r, create(ctx, r))
// shows what create wrote into r.
func viewOf[R, V any](view func(*R) V, r *R, err error) (V, error) {
	if err != nil {
		var zero V
		return zero, err
	}
	return view(r), nil
}

// required checks that a string argument is present.
func required(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return store.Invalid(field, "is required")
	}
	return nil
}

// toolError turns a store error into the message of a tool error result,
// or reports false for errors that are not the caller's (outages, bugs).
func toolError(err error) (string, bool) {
	var ve *store.ValidationError
	switch {
	case errors.As(err, &ve):
		return "invalid argument " + ve.Field + ": " + ve.Message, true
	case errors.Is(err, store.ErrNotFound):
		return "not found", true
	case errors.Is(err, store.ErrSlotTaken), errors.Is(err, store.ErrInsufficientStock),
		errors.Is(err, store.ErrInvalidTransition):
		return err.Error(), true
	case errors.Is(err, store.ErrConflict):
		return "conflict: a record with the same unique key already exists", true
	}
	return "", false
}

// views returns the view of every record of a list, never nil (an empty
// list is [] in JSON).
func views[R, V any](list []R, view func(*R) V) []V {
	out := make([]V, len(list))
	for i := range list {
		out[i] = view(&list[i])
	}
	return out
}

// idIn is the argument of a tool that acts on one record.
type idIn struct {
	ID string `json:"id" jsonschema:"the id"`
}

// pageIn is the paging part of a list tool's arguments. It is embedded
// last, so that its properties keep their place at the end of the schema.
type pageIn struct {
	Cursor string `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page"`
	Limit  int    `json:"limit,omitempty" jsonschema:"page size, 1 to 100 (default 20)"`
}

// page is the store's form of the paging arguments.
func (in pageIn) page() store.Page {
	return store.Page{Cursor: in.Cursor, Limit: in.Limit}
}

// nextPage ends every list result: where the next page starts.
type nextPage struct {
	NextCursor string `json:"next_cursor" jsonschema:"pass as cursor to get the next page; empty at the end"`
}
