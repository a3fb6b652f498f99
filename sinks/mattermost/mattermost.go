// Package mattermost is the `mattermost` sink: each finding becomes a post
// with a message attachment (a colour bar by severity, the title linking to
// medic's finding page, the subject as short fields, the description and
// the evidence in Markdown), the shape Robusta's Mattermost sink posts.
//
// It posts either through an incoming webhook (webhook_url, a secret: the
// URL is the credential) or as a bot through the REST API (url, token and
// channel_id: POST /api/v4/posts with the bot's access token). A bot may
// name its channel as Robusta's sink does, channel and team by name; medic
// looks the channel's ID up once, on the first delivery.
package mattermost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	"github.com/medichq/medic/sinks/internal/chatparams"
	"github.com/medichq/medic/sinks/internal/chattext"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "mattermost"

// MaxMessageChars is Mattermost's limit on a post's message, which medic
// also keeps the attachment's text under (the server refuses longer posts).
const MaxMessageChars = 16383

// Params are the parameters of the mattermost sink.
type Params struct {
	// WebhookURL is an incoming webhook's URL (a secret: prefer
	// webhook_url_file or webhook_url_env).
	WebhookURL     string `yaml:"webhook_url"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	WebhookURLEnv  string `yaml:"webhook_url_env"`
	// Channel is a channel's name: for a webhook it overrides the
	// webhook's channel (where the webhook allows it); for a bot, with
	// team, it names the channel instead of channel_id.
	Channel string `yaml:"channel"`
	// Team is the team (its name, as in the team's URL) of a bot's channel.
	Team string `yaml:"team"`

	// URL is the Mattermost server's base URL, for posting as a bot.
	URL string `yaml:"url"`
	// Token is the bot's personal access token (a secret).
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// ChannelID is the ID of the channel the bot posts to.
	ChannelID string `yaml:"channel_id"`

	// Username and IconURL override the poster's name and icon (webhooks
	// only, where the server allows overrides).
	Username string `yaml:"username"`
	IconURL  string `yaml:"icon_url"`
	// MaxMessageChars bounds the attachment's text.
	MaxMessageChars int `yaml:"max_message_chars"`
	// Common: inline_log_lines, max_retry_after.
	chatparams.Common `yaml:",inline"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{MaxMessageChars: 12000, Common: chatparams.Defaults(15)}
}

func (p *Params) webhook() secretparam.Param {
	return secretparam.Param{Key: "webhook_url", Inline: p.WebhookURL, File: p.WebhookURLFile, Env: p.WebhookURLEnv}
}

func (p *Params) token() secretparam.Param {
	return secretparam.Param{Key: "token", Inline: p.Token, File: p.TokenFile, Env: p.TokenEnv}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	hook, tok := p.webhook(), p.token()
	switch {
	case hook.Set() && (tok.Set() || p.URL != "" || p.ChannelID != "" || p.Team != ""):
		return errors.New("webhook_url and url/token/channel_id/team: set the webhook or the bot API, not both")
	case hook.Set():
		if err := hook.Validate(true); err != nil {
			return err
		}
		if p.WebhookURL != "" && !chatfmt.IsWebURL(strings.TrimSpace(p.WebhookURL)) {
			return errors.New("webhook_url: not an http(s) URL") // never echo it
		}
	case p.URL == "" && !tok.Set() && p.ChannelID == "":
		return errors.New("webhook_url (an incoming webhook) or url, token and channel_id (a bot): required")
	default:
		if !chatfmt.IsWebURL(strings.TrimSpace(p.URL)) {
			return errors.New("url: required for the bot API, the server's http(s) base URL")
		}
		if err := tok.Validate(true); err != nil {
			return err
		}
		switch {
		case p.ChannelID != "" && (p.Channel != "" || p.Team != ""):
			return errors.New("channel_id, or channel and team: set one")
		case p.ChannelID == "" && (p.Channel == "" || p.Team == ""):
			return errors.New("channel_id (or channel and team, by name): required for the bot API")
		case p.Username != "" || p.IconURL != "":
			return errors.New("username and icon_url: only for an incoming webhook (the bot posts as itself)")
		}
	}
	switch {
	case p.MaxMessageChars < 1000 || p.MaxMessageChars > MaxMessageChars:
		return fmt.Errorf("max_message_chars: must be between 1000 and %d", MaxMessageChars)
	}
	return p.Common.Check(100)
}

// Register adds the mattermost sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Posts each finding to Mattermost as a message attachment, through an incoming webhook (webhook_url) or as a bot (url, token, channel_id).",
		Defaults, New)
}

// Sink posts findings. It is safe for concurrent use.
type Sink struct {
	p       Params
	target  string
	header  http.Header
	poster  *httpdeliver.Poster
	client  *http.Client
	cluster string
	pageURL func(string) string

	mu        sync.Mutex
	channelID string // the bot's channel, once known
}

// Deps is what a mattermost sink uses of sinks.Deps: the chat sinks' set.
type Deps = chatparams.Deps

// New starts a Mattermost sink, reading its secret now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{p: p, header: http.Header{}, cluster: deps.ClusterName(), pageURL: deps.FindingURL, channelID: p.ChannelID, client: deps.HTTPClient()}
	if s.client == nil {
		s.client = &http.Client{Timeout: 30 * time.Second}
	}
	what := "the Mattermost webhook"
	if hook := p.webhook(); hook.Set() {
		target, err := hook.Read()
		if err != nil {
			return nil, err
		}
		if !chatfmt.IsWebURL(strings.TrimSpace(target)) {
			return nil, errors.New("webhook_url: not an http(s) URL")
		}
		s.target = target
	} else {
		token, err := p.token().Read()
		if err != nil {
			return nil, err
		}
		s.target = strings.TrimSuffix(strings.TrimSpace(p.URL), "/") + "/api/v4/posts"
		s.header.Set("Authorization", "Bearer "+token)
		what = "the Mattermost API"
	}
	s.poster = p.Poster(name, what, deps)
	return s, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// Attachment is a Mattermost message attachment (Slack's legacy format,
// which Mattermost renders).
type Attachment struct {
	Fallback  string  `json:"fallback"`
	Color     string  `json:"color"`
	Pretext   string  `json:"pretext,omitempty"`
	Title     string  `json:"title"`
	TitleLink string  `json:"title_link,omitempty"`
	Text      string  `json:"text,omitempty"`
	Fields    []Field `json:"fields,omitempty"`
	Footer    string  `json:"footer,omitempty"`
}

// Field is one attachment field; short ones sit side by side.
type Field struct {
	Short bool   `json:"short"`
	Title string `json:"title"`
	Value string `json:"value"`
}

// WebhookPayload is what an incoming webhook takes.
type WebhookPayload struct {
	Text        string       `json:"text,omitempty"`
	Channel     string       `json:"channel,omitempty"`
	Username    string       `json:"username,omitempty"`
	IconURL     string       `json:"icon_url,omitempty"`
	Attachments []Attachment `json:"attachments"`
}

// Post is what POST /api/v4/posts takes.
type Post struct {
	ChannelID string         `json:"channel_id"`
	Message   string         `json:"message"`
	Props     map[string]any `json:"props"`
}

// AttachmentFor renders f as the post's attachment.
func (s *Sink) AttachmentFor(f *event.Finding) Attachment {
	o := chattext.Options{Cluster: s.cluster, InlineLogLines: s.p.InlineLogLines}
	if s.pageURL != nil {
		o.PageURL = s.pageURL(f.ID)
	}
	return Render(f, o, s.p.MaxMessageChars)
}

// Render is the attachment for f within maxChars of text.
func Render(f *event.Finding, o chattext.Options, maxChars int) Attachment {
	d := chattext.Markdown
	a := Attachment{
		Fallback:  chattext.Headline(f) + ": " + chattext.Title(f, 250),
		Color:     chattext.HexColor(f),
		Pretext:   d.Bold(chattext.Headline(f)),
		Title:     chattext.Title(f, 250),
		TitleLink: o.PageURL,
		Footer:    chattext.Footer(f, chattext.Plain),
	}
	for i, fact := range chattext.Facts(f, o.Cluster) {
		if i == 30 {
			break // the rest are in the finding page's labels
		}
		a.Fields = append(a.Fields, Field{Short: true, Title: chattext.Truncate(fact.Name, 100), Value: d.Text(chattext.Truncate(chattext.OneLine(fact.Value), 300))})
	}
	a.Text = chattext.Body(f, d, o, maxChars)
	return a
}

// Send posts f.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("mattermost sink: nil finding")
	}
	a := s.AttachmentFor(f)
	var payload any = WebhookPayload{Channel: s.p.Channel, Username: s.p.Username, IconURL: s.p.IconURL, Attachments: []Attachment{a}}
	if s.p.URL != "" {
		channelID, err := s.channel(ctx)
		if err != nil {
			return err
		}
		payload = Post{ChannelID: channelID, Props: map[string]any{"attachments": []Attachment{a}}}
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode post for finding %s: %w", f.ID, err)
	}
	if _, err := s.poster.Post(ctx, s.target, body, s.header); err != nil {
		return fmt.Errorf("post finding %s: %w", f.ID, err)
	}
	return nil
}

// channel returns the bot's channel ID, looking it up by team and channel
// name the first time (GET /api/v4/teams/name/{team}/channels/name/{channel}).
// A failed lookup fails the delivery, which medic retries.
func (s *Sink) channel(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.channelID != "" {
		return s.channelID, nil
	}
	u := strings.TrimSuffix(strings.TrimSpace(s.p.URL), "/") + "/api/v4/teams/name/" + url.PathEscape(s.p.Team) + "/channels/name/" + url.PathEscape(s.p.Channel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("find channel %q of team %q: %w", s.p.Channel, s.p.Team, err)
	}
	req.Header = s.header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("find channel %q of team %q: %w", s.p.Channel, s.p.Team, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	var ch struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ch); err != nil || resp.StatusCode != http.StatusOK || ch.ID == "" {
		return "", fmt.Errorf("find channel %q of team %q: Mattermost answered %d %s", s.p.Channel, s.p.Team, resp.StatusCode, ch.Message)
	}
	s.channelID = ch.ID
	return ch.ID, nil
}
