// Package telegram is the `telegram` sink: each finding is sent to a chat
// (a group, a channel or a forum topic) by a bot through the Bot API's
// sendMessage, in parse_mode HTML with every piece of text from the cluster
// escaped, within Telegram's 4096-character limit on a message.
//
// The bot token is part of the request URL (…/bot<token>/sendMessage), so
// the URL is never logged or put in an error.
package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/medichq/medic/sinks/chatfmt"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/chatparams"
	"github.com/medichq/medic/sinks/internal/chattext"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "telegram"

// MaxMessageChars is Telegram's limit on a message's text once its HTML
// tags are parsed. medic counts the tags too, so it stays under it.
const MaxMessageChars = 4096

// Params are the parameters of the telegram sink.
type Params struct {
	// BotToken is the token @BotFather gave the bot (a secret).
	BotToken     string `yaml:"bot_token"`
	BotTokenFile string `yaml:"bot_token_file"`
	BotTokenEnv  string `yaml:"bot_token_env"`
	// ChatID is the chat's numeric ID (-100… for groups and channels) or a
	// channel's @username.
	ChatID string `yaml:"chat_id"`
	// MessageThreadID sends to a forum topic of a supergroup (0: none).
	MessageThreadID int64 `yaml:"message_thread_id"`
	// APIURL is the Bot API's base URL (a self-hosted Bot API server).
	APIURL string `yaml:"api_url"`
	// DisableNotification sends silently.
	DisableNotification bool `yaml:"disable_notification"`
	// Common: inline_log_lines, max_retry_after.
	chatparams.Common `yaml:",inline"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{APIURL: "https://api.telegram.org", Common: chatparams.Defaults(10)}
}

func (p *Params) token() secretparam.Param {
	return secretparam.Param{Key: "bot_token", Inline: p.BotToken, File: p.BotTokenFile, Env: p.BotTokenEnv}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	if err := p.token().Validate(true); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(p.ChatID) == "":
		return errors.New("chat_id: required (the chat's numeric ID, or @channelusername)")
	case !validChatID(p.ChatID):
		return fmt.Errorf("chat_id: %q is neither a numeric ID nor an @username", p.ChatID)
	case p.MessageThreadID < 0:
		return errors.New("message_thread_id: must not be negative")
	case !chatfmt.IsWebURL(p.APIURL):
		return errors.New("api_url: must be an http(s) URL")
	}
	return p.Common.Check(50)
}

func validChatID(s string) bool {
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return true
	}
	return strings.HasPrefix(s, "@") && len(s) > 1 && !strings.ContainsAny(s, " /?#")
}

// Register adds the telegram sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Sends each finding to a Telegram chat or forum topic through a bot's sendMessage, as escaped HTML within 4096 characters.",
		Defaults, New)
}

// Sink sends findings. It is safe for concurrent use.
type Sink struct {
	p       Params
	target  string // holds the token: never logged
	poster  *httpdeliver.Poster
	cluster string
	pageURL func(string) string
}

// Deps is what a telegram sink uses of sinks.Deps: the chat sinks' set.
type Deps = chatparams.Deps

// New starts a Telegram sink, reading the bot token now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	token, err := p.token().Read()
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(token, "/?# ") {
		return nil, errors.New("bot_token: not a bot token (it has /, ?, # or a space)")
	}
	poster := p.Poster(name, "the Telegram Bot API", deps)
	poster.RetryAfterBody = RetryAfter
	return &Sink{
		p: p, target: strings.TrimSuffix(p.APIURL, "/") + "/bot" + token + "/sendMessage",
		cluster: deps.ClusterName(), pageURL: deps.FindingURL, poster: poster,
	}, nil
}

// RetryAfter reads the wait the Bot API asks for from a 429's body: Telegram
// says it in parameters.retry_after (seconds) and does not promise a
// Retry-After header, so without this a flood-limited bot would retry after
// a second, be refused again and spend its tries.
func RetryAfter(body []byte) (time.Duration, bool) {
	var answer struct {
		Parameters struct {
			RetryAfter *int64 `json:"retry_after"`
		} `json:"parameters"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Parameters.RetryAfter == nil || *answer.Parameters.RetryAfter < 0 {
		return 0, false
	}
	// A day is past any max_retry_after; the bound keeps a huge number from
	// overflowing the Duration into a negative wait.
	return time.Duration(min(*answer.Parameters.RetryAfter, 86400)) * time.Second, true
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// SendMessage is the sendMessage request.
type SendMessage struct {
	ChatID              string             `json:"chat_id"`
	MessageThreadID     int64              `json:"message_thread_id,omitempty"`
	Text                string             `json:"text"`
	ParseMode           string             `json:"parse_mode"`
	LinkPreviewOptions  LinkPreviewOptions `json:"link_preview_options"`
	DisableNotification bool               `json:"disable_notification,omitempty"`
}

// LinkPreviewOptions turns off link previews: the message's links (graph,
// silence) would otherwise fill the chat with previews.
type LinkPreviewOptions struct {
	IsDisabled bool `json:"is_disabled"`
}

// Text renders f as the message's HTML.
func Text(f *event.Finding, o chattext.Options) string {
	return chattext.Message(f, chattext.HTML, o, MaxMessageChars)
}

// Send sends f.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("telegram sink: nil finding")
	}
	o := chattext.Options{Cluster: s.cluster, InlineLogLines: s.p.InlineLogLines}
	if s.pageURL != nil {
		o.PageURL = s.pageURL(f.ID)
	}
	body, err := json.Marshal(SendMessage{
		ChatID: s.p.ChatID, MessageThreadID: s.p.MessageThreadID, Text: Text(f, o), ParseMode: "HTML",
		LinkPreviewOptions: LinkPreviewOptions{IsDisabled: true}, DisableNotification: s.p.DisableNotification,
	})
	if err != nil {
		return fmt.Errorf("encode message for finding %s: %w", f.ID, err)
	}
	if _, err := s.poster.Post(ctx, s.target, body, nil); err != nil {
		return fmt.Errorf("send finding %s: %w", f.ID, err)
	}
	return nil
}
