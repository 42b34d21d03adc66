package audit

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
)

func TestLogAndBoth(t *testing.T) {
	var buf bytes.Buffer
	var rec Recorder
	h := Both(Log(slog.New(slog.NewJSONHandler(&buf, nil))), nil, rec.Hook)
	h(Event{Kind: "token_issued", Attrs: []any{"client_id", "c1"}})
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	if line["msg"] != "token_issued" || line["audit"] != true || line["client_id"] != "c1" || line["level"] != "INFO" {
		t.Fatalf("log line: %v", line)
	}
	if got := rec.Kinds(); !slices.Equal(got, []Kind{"token_issued"}) {
		t.Fatalf("recorded %v", got)
	}
	Log(nil)(Event{Kind: "x"}) // no logger: dropped, no panic
}
