package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// GetJSON fetches the JSON document at u with client into v: a 200
// answer of at most max bytes that decodes as JSON.
func GetJSON(ctx context.Context, client *http.Client, u string, max int64, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	if int64(len(body)) > max {
		return fmt.Errorf("the document is larger than %d bytes", max)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("not a JSON document: %w", err)
	}
	return nil
}
