// Package chatparams holds the parameters every chat sink that posts over
// HTTP has (mattermost, discord, telegram, google_chat, webex) and the
// poster built from them, so each sink declares only its own.
package chatparams

import (
	"errors"
	"fmt"
	"time"

	"github.com/medichq/medic/sinks/internal/httpdeliver"
)

// Common are the parameters every chat sink has; embed them with
// `yaml:",inline"` so they are keys of the sink like its own.
type Common struct {
	// InlineLogLines is how many last lines of a log are shown.
	InlineLogLines int `yaml:"inline_log_lines"`
	// MaxRetryAfter is the longest 429 Retry-After waited out in one delivery.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// Defaults are Common's defaults, showing inlineLogLines lines of a log.
func Defaults(inlineLogLines int) Common {
	return Common{InlineLogLines: inlineLogLines, MaxRetryAfter: time.Minute}
}

// Check validates the parameters; maxLogLines is the most lines of a log
// the sink's messages have room for.
func (c Common) Check(maxLogLines int) error {
	switch {
	case c.InlineLogLines < 1 || c.InlineLogLines > maxLogLines:
		return fmt.Errorf("inline_log_lines: must be between 1 and %d", maxLogLines)
	case c.MaxRetryAfter < 0:
		return errors.New("max_retry_after: must not be negative")
	}
	return nil
}

// Deps is what a chat sink that posts over HTTP uses of sinks.Deps: the
// poster's logger and client, the cluster's name and the finding page's
// link its messages show.
type Deps interface {
	httpdeliver.Deps
	ClusterName() string
	FindingURL(id string) string
}

// Poster is the sink's poster: deps' HTTP client, the longest Retry-After
// waited, a logger naming the sink, and what names the receiver in errors
// ("the Discord webhook").
func (c Common) Poster(name, what string, deps httpdeliver.Deps) *httpdeliver.Poster {
	return &httpdeliver.Poster{Client: deps.HTTPClient(), MaxRetryAfter: c.MaxRetryAfter, Logger: deps.Logger().With("sink", name), What: what}
}
