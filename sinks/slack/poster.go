package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	goslack "github.com/slack-go/slack"
	"golang.org/x/time/rate"
)

// Poster posts to Slack's Web API with medic's delivery rules: a rate limit
// of its own, Slack's 429 Retry-After honoured (waiting within the
// context, up to MaxRetryAfter, then giving up with an error so the
// consumer retries later), and every other failure returned as it is so the
// consumer retries with back-off and finally dead-letters. It never logs or
// returns the token.
type Poster struct {
	Client *goslack.Client
	// Limiter spaces calls; nil means no limit.
	Limiter *rate.Limiter
	// MaxRetryAfter is the longest Retry-After honoured inside one call.
	MaxRetryAfter time.Duration
	// MaxRateLimitRetries bounds the 429 retries of one call.
	MaxRateLimitRetries int
	Logger              *slog.Logger

	mu          sync.Mutex
	pausedUntil time.Time
	// sleep waits d or until ctx ends; tests replace it to see the waits.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewClient returns a Slack Web API client for token at apiURL (empty:
// Slack itself).
func NewClient(token, apiURL string, hc *http.Client) *goslack.Client {
	opts := []goslack.Option{}
	if apiURL != "" {
		if !strings.HasSuffix(apiURL, "/") {
			apiURL += "/"
		}
		opts = append(opts, goslack.OptionAPIURL(apiURL))
	}
	if hc != nil {
		opts = append(opts, goslack.OptionHTTPClient(hc))
	}
	return goslack.New(token, opts...)
}

// call runs fn, waiting out the rate limit and any Retry-After first.
func (p *Poster) call(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	maxRetries := p.MaxRateLimitRetries
	if maxRetries <= 0 {
		maxRetries = 3
	}
	waited := false
	for attempt := 0; ; attempt++ {
		if err := p.wait(ctx, waited); err != nil {
			return err
		}
		err := fn(ctx)
		var rl *goslack.RateLimitedError
		if !errors.As(err, &rl) {
			if err != nil {
				return fmt.Errorf("slack %s: %w", what, err)
			}
			return nil
		}
		wait := max(rl.RetryAfter, time.Second)
		if wait > p.MaxRetryAfter || attempt >= maxRetries {
			return fmt.Errorf("slack %s: rate limited (Retry-After %s); delivery will be retried: %w", what, wait, err)
		}
		p.pause(wait)
		if p.Logger != nil {
			p.Logger.Warn("Slack rate limit; waiting as Slack asks", "method", what, "retry_after", wait)
		}
		if err := p.doSleep(ctx, wait); err != nil {
			return err
		}
		waited = true
	}
}

// pause holds every call of this poster until Retry-After has passed.
func (p *Poster) pause(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(d); until.After(p.pausedUntil) {
		p.pausedUntil = until
	}
}

// wait holds a call while another one's Retry-After runs (unless this
// call just waited it out itself), then for the rate limiter.
func (p *Poster) wait(ctx context.Context, waited bool) error {
	p.mu.Lock()
	until := p.pausedUntil
	p.mu.Unlock()
	if d := time.Until(until); d > 0 && !waited {
		if err := p.doSleep(ctx, d); err != nil {
			return err
		}
	}
	if p.Limiter != nil {
		return p.Limiter.Wait(ctx)
	}
	return nil
}

func (p *Poster) doSleep(ctx context.Context, d time.Duration) error {
	if p.sleep != nil {
		return p.sleep(ctx, d)
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

// fallbackText is the text of a message rendered from a finding as
// notifications and screen readers show it: plain, not HTML-escaped ("A & B",
// not "A &amp; B"). Angle brackets, which Slack would read as a link or a
// <!channel> mention in an alert's title, become ‹ ›. It is applied where a
// message is rendered from a finding, not when posting: medic's own replies
// (TextMessage) carry mentions such as <@U123> on purpose.
func fallbackText(s string) string {
	return strings.NewReplacer("<", "‹", ">", "›").Replace(s)
}

func msgOptions(m Message) []goslack.MsgOption {
	return []goslack.MsgOption{
		goslack.MsgOptionText(m.Text, false),
		goslack.MsgOptionBlocks(m.Blocks...),
		goslack.MsgOptionDisableLinkUnfurl(),
		goslack.MsgOptionDisableMediaUnfurl(),
	}
}

// Post posts m to channel (a name or an ID), in threadTS's thread when set,
// and returns the channel ID and the message's ts.
func (p *Poster) Post(ctx context.Context, channel string, m Message, threadTS string) (channelID, ts string, err error) {
	opts := msgOptions(m)
	if threadTS != "" {
		opts = append(opts, goslack.MsgOptionTS(threadTS))
	}
	err = p.call(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		channelID, ts, err = p.Client.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return channelID, ts, err
}

// Update replaces the message at channelID/ts with m.
func (p *Poster) Update(ctx context.Context, channelID, ts string, m Message) error {
	return p.call(ctx, "chat.update", func(ctx context.Context) error {
		_, _, _, err := p.Client.UpdateMessageContext(ctx, channelID, ts, msgOptions(m)...)
		return err
	})
}

// Ephemeral shows m to one user in a channel (or thread).
func (p *Poster) Ephemeral(ctx context.Context, channelID, user, threadTS string, m Message) error {
	opts := []goslack.MsgOption{goslack.MsgOptionText(m.Text, false), goslack.MsgOptionBlocks(m.Blocks...)}
	if threadTS != "" {
		opts = append(opts, goslack.MsgOptionTS(threadTS))
	}
	return p.call(ctx, "chat.postEphemeral", func(ctx context.Context) error {
		_, err := p.Client.PostEphemeralContext(ctx, channelID, user, opts...)
		return err
	})
}

// Upload attaches a file in a thread (files upload v2: getUploadURLExternal,
// the upload, completeUploadExternal).
func (p *Poster) Upload(ctx context.Context, channelID, threadTS string, u Upload) error {
	return p.call(ctx, "files upload", func(ctx context.Context) error {
		_, err := p.Client.UploadFileContext(ctx, goslack.UploadFileParameters{
			Reader:          bytes.NewReader(u.Content),
			Filename:        u.Name,
			FileSize:        len(u.Content),
			Title:           u.Title,
			Channel:         channelID,
			ThreadTimestamp: threadTS,
		})
		return err
	})
}

// ErrorCode is Slack's error code (invalid_blocks, channel_not_found, …)
// when Slack answered ok:false, or "".
func ErrorCode(err error) string {
	var e goslack.SlackErrorResponse
	if errors.As(err, &e) {
		return e.Err
	}
	return ""
}

// rejected reports whether Slack refused the content itself, so posting
// the same again cannot succeed.
func rejected(err error) bool {
	switch ErrorCode(err) {
	case "invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_attachments", "invalid_attachments", "no_text":
		return true
	}
	return false
}
