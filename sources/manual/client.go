package manual

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client sends manual triggers to a running medic (`medic trigger …`).
type Client struct {
	// BaseURL is medic's address, e.g. http://localhost:8080.
	BaseURL string
	// Token, when set, is sent as a bearer token.
	Token string
	// HTTP defaults to http.DefaultClient; the context bounds each call.
	HTTP *http.Client
}

// APIError is an answer other than 200, with the server's own message.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("medic answered %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// maxAnswerBytes bounds what is read of an answer; a 200 carries a few IDs.
const maxAnswerBytes = 1 << 20

// Trigger asks medic to publish the named trigger's event. A non-200 answer
// is returned as an *APIError.
func (c *Client) Trigger(ctx context.Context, trigger string, params map[string]string) (Result, error) {
	endpoint, err := url.JoinPath(c.BaseURL, "/api/trigger")
	if err != nil {
		return Result{}, fmt.Errorf("building the trigger URL from %q: %w", c.BaseURL, err)
	}
	body, err := json.Marshal(Request{Trigger: trigger, Params: params})
	if err != nil {
		return Result{}, fmt.Errorf("encoding the trigger request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("creating the trigger request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("sending trigger %q to %s: %w", trigger, endpoint, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return Result{}, fmt.Errorf("reading medic's answer (%d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Result{}, &APIError{StatusCode: resp.StatusCode, Message: errorMessage(answer)}
	}
	var res Result
	if err := json.Unmarshal(answer, &res); err != nil {
		return Result{}, fmt.Errorf("decoding medic's answer %q: %w", truncate(string(answer), 200), err)
	}
	return res, nil
}

// errorMessage takes the message out of {"error": "..."}, or shows the text
// as it came when something else (a proxy) answered.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		return truncate(s, 500)
	}
	return "(no message)"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
