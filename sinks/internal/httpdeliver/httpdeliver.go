// Package httpdeliver posts a sink's payload over HTTP with medic's
// delivery rules: 429 Retry-After is honoured within the delivery (up to a
// bound, then the delivery fails and the consumer retries later), any other
// failure is returned so the consumer retries with back-off and finally
// dead-letters, and the URL never appears in an error or a log line — a
// Teams or Slack webhook URL is itself the secret.
package httpdeliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Deps is what a poster is built from, the part of sinks.Deps every sink
// that posts over HTTP uses (sinks.Deps satisfies it).
type Deps interface {
	Logger() *slog.Logger
	HTTPClient() *http.Client
}

// Poster posts payloads.
type Poster struct {
	Client *http.Client
	// MaxRetryAfter is the longest Retry-After waited out in one delivery.
	MaxRetryAfter time.Duration
	// MaxRetries bounds the 429 retries of one delivery (default 3).
	MaxRetries int
	Logger     *slog.Logger
	// Sleep waits d or until ctx ends; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// What names the receiver in errors ("Teams webhook").
	What string
	// RetryAfterBody reads the wait from a 429's body, for a vendor that
	// says it there instead of in a Retry-After header (Telegram's
	// parameters.retry_after). It is asked only when the header is
	// missing; ok false leaves the default wait of a second.
	RetryAfterBody func(body []byte) (wait time.Duration, ok bool)
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	What   string
	Status int
	Body   string // the start of the answer, for the operator
}

func (e *StatusError) Error() string {
	if e.Body != "" {
		return fmt.Sprintf("%s answered %d: %s", e.What, e.Status, e.Body)
	}
	return fmt.Sprintf("%s answered %d", e.What, e.Status)
}

// Post sends body to target with the given headers and returns the answer's
// status when it is 2xx.
func (p *Poster) Post(ctx context.Context, target string, body []byte, header http.Header) (int, error) {
	status, _, err := p.Do(ctx, http.MethodPost, target, body, header)
	if status >= 200 && status < 300 {
		return status, nil // delivered, whatever became of the answer
	}
	return status, err
}

// maxAnswer bounds the answer Do reads (a Jira search result, an API's
// JSON reply); what is beyond it is dropped.
const maxAnswer = 4 << 20

// Do sends one request (a body of nil sends none) under the same rules as
// Post and returns the status and, when it is 2xx, the answer's body, for
// APIs whose answer matters (a created issue's key, a search result).
func (p *Poster) Do(ctx context.Context, method, target string, body []byte, header http.Header) (int, []byte, error) {
	maxRetries := p.MaxRetries
	if maxRetries <= 0 {
		maxRetries = 3
	}
	what := p.What
	if what == "" {
		what = "the receiver"
	}
	hc := p.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, rd)
		if err != nil {
			return 0, nil, fmt.Errorf("%s: invalid URL", what) // never echo the URL
		}
		for k, vs := range header {
			req.Header[k] = vs
		}
		if req.Header.Get("Content-Type") == "" && body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, fmt.Errorf("%s to %s: %w", strings.ToLower(method), what, redact(err))
		}
		answer, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		_ = resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if rerr != nil {
				return resp.StatusCode, nil, fmt.Errorf("read the answer of %s: %w", what, redact(rerr))
			}
			return resp.StatusCode, answer, nil
		}
		se := &StatusError{What: what, Status: resp.StatusCode, Body: string(bytes.TrimSpace(answer[:min(len(answer), 512)]))}
		if resp.StatusCode != http.StatusTooManyRequests {
			return resp.StatusCode, nil, se
		}
		wait := RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if resp.Header.Get("Retry-After") == "" && p.RetryAfterBody != nil {
			if w, ok := p.RetryAfterBody(answer); ok {
				wait = max(w, time.Second)
			}
		}
		if wait > p.MaxRetryAfter || attempt >= maxRetries {
			return resp.StatusCode, nil, fmt.Errorf("rate limited (Retry-After %s); delivery will be retried: %w", wait, se)
		}
		if p.Logger != nil {
			p.Logger.Warn("rate limited; waiting as the receiver asks", "receiver", what, "retry_after", wait)
		}
		if err := p.sleep(ctx, wait); err != nil {
			return 0, nil, err
		}
	}
}

func (p *Poster) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date); a
// missing or odd one means one second.
func RetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return time.Second
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return max(time.Duration(n)*time.Second, time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), time.Second)
	}
	return time.Second
}

// redact drops the URL from a client error, keeping what went wrong.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
