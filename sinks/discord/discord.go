// Package discord is the `discord` sink: each finding is posted through a
// channel webhook as embeds — the first with the title (linking to medic's
// finding page), a colour by severity, the description and links, and the
// subject as inline fields; then one embed per piece of evidence — within
// Discord's limits (10 embeds, 6000 characters across them, 4096 per
// description, 25 fields of 1024). What does not fit is shortened, then
// left out with a note in the message content pointing at the finding page.
//
// Mentions are never parsed (allowed_mentions is empty): a pod logging
// "@everyone" does not ping the channel.
package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	"github.com/medichq/medic/sinks/internal/chatparams"
	"github.com/medichq/medic/sinks/internal/chattext"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "discord"

// Discord's limits on a webhook message.
const (
	maxContent     = 2000
	maxEmbeds      = 10
	maxEmbedsTotal = 6000
	maxTitle       = 256
	maxDescription = 4096
	maxFields      = 25
	maxFieldName   = 256
	maxFieldValue  = 1024
	maxFooter      = 2048
)

// Params are the parameters of the discord sink.
type Params struct {
	// WebhookURL is the channel webhook's URL
	// (https://discord.com/api/webhooks/<id>/<token>); a secret.
	WebhookURL     string `yaml:"webhook_url"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	WebhookURLEnv  string `yaml:"webhook_url_env"`
	// Username and AvatarURL override the webhook's name and avatar.
	Username  string `yaml:"username"`
	AvatarURL string `yaml:"avatar_url"`
	// Common: inline_log_lines, max_retry_after.
	chatparams.Common `yaml:",inline"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params { return &Params{Common: chatparams.Defaults(10)} }

func (p *Params) webhook() secretparam.Param {
	return secretparam.Param{Key: "webhook_url", Inline: p.WebhookURL, File: p.WebhookURLFile, Env: p.WebhookURLEnv}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	if err := p.webhook().Validate(true); err != nil {
		return err
	}
	switch {
	case p.WebhookURL != "" && !chatfmt.IsWebURL(strings.TrimSpace(p.WebhookURL)):
		return errors.New("webhook_url: not an http(s) URL") // never echo it
	case p.AvatarURL != "" && !chatfmt.IsWebURL(strings.TrimSpace(p.AvatarURL)):
		return errors.New("avatar_url: not an http(s) URL")
	case utf8.RuneCountInString(p.Username) > 80:
		return errors.New("username: at most 80 characters")
	}
	return p.Common.Check(50)
}

// Register adds the discord sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Posts each finding to a Discord channel webhook as embeds coloured by severity, within Discord's size limits.",
		Defaults, New)
}

// Sink posts findings. It is safe for concurrent use.
type Sink struct {
	p       Params
	target  string
	poster  *httpdeliver.Poster
	cluster string
	pageURL func(string) string
}

// Deps is what a discord sink uses of sinks.Deps: the chat sinks' set.
type Deps = chatparams.Deps

// New starts a Discord sink, reading the webhook URL now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	target, err := p.webhook().Read()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(target)
	if err != nil || !chatfmt.IsWebURL(strings.TrimSpace(target)) {
		return nil, errors.New("webhook_url: not an http(s) URL")
	}
	// wait=true makes Discord answer once the message exists, so an
	// error (a limit, a deleted webhook) comes back to be retried.
	q := u.Query()
	q.Set("wait", "true")
	u.RawQuery = q.Encode()
	return &Sink{
		p: p, target: u.String(), cluster: deps.ClusterName(), pageURL: deps.FindingURL,
		poster: p.Poster(name, "the Discord webhook", deps),
	}, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// Message is a webhook message.
type Message struct {
	Content         string          `json:"content,omitempty"`
	Username        string          `json:"username,omitempty"`
	AvatarURL       string          `json:"avatar_url,omitempty"`
	Embeds          []Embed         `json:"embeds"`
	AllowedMentions AllowedMentions `json:"allowed_mentions"`
}

// AllowedMentions says which mentions Discord acts on: none.
type AllowedMentions struct {
	Parse []string `json:"parse"`
}

// Embed is a rich embed.
type Embed struct {
	Title       string  `json:"title,omitempty"`
	URL         string  `json:"url,omitempty"`
	Description string  `json:"description,omitempty"`
	Color       int     `json:"color"`
	Fields      []Field `json:"fields,omitempty"`
	Footer      *Footer `json:"footer,omitempty"`
	Timestamp   string  `json:"timestamp,omitempty"`
}

// Field is an embed field.
type Field struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// Footer is an embed's footer.
type Footer struct {
	Text string `json:"text"`
}

func (e *Embed) size() int {
	n := utf8.RuneCountInString(e.Title) + utf8.RuneCountInString(e.Description)
	for _, f := range e.Fields {
		n += utf8.RuneCountInString(f.Name) + utf8.RuneCountInString(f.Value)
	}
	if e.Footer != nil {
		n += utf8.RuneCountInString(e.Footer.Text)
	}
	return n
}

// Render is the message for f.
func Render(f *event.Finding, o chattext.Options) Message {
	d := chattext.Markdown
	color := chattext.Color(f)
	head := Embed{
		Title:  chattext.Title(f, maxTitle-40) + " · " + chattext.Headline(f),
		URL:    o.PageURL,
		Color:  color,
		Footer: &Footer{Text: chattext.Truncate(chattext.Footer(f, chattext.Plain), 300)},
	}
	if !f.Event.StartsAt.IsZero() {
		head.Timestamp = f.Event.StartsAt.UTC().Format(time.RFC3339)
	}
	// The head embed keeps within 4000 of the 6000 characters all embeds
	// share: long labels and descriptions are cut shorter until it does.
	for _, lim := range []struct{ fields, value, desc, links int }{{12, 200, 1000, 2000}, {8, 100, 300, 800}, {4, 60, 0, 300}} {
		head.Fields = nil
		for i, fact := range chattext.Facts(f, o.Cluster) {
			if i == lim.fields { // the rest are on the finding page
				break
			}
			value := d.Text(chattext.Truncate(chattext.OneLine(fact.Value), lim.value))
			if value == "" {
				value = "—" // Discord refuses an empty field
			}
			head.Fields = append(head.Fields, Field{Name: chattext.Truncate(chattext.OneLine(fact.Name), 100), Value: value, Inline: true})
		}
		head.Description = chattext.Lines(d, chattext.Description(f, d, lim.desc), chattext.LinkLine(f, d, o.PageURL, lim.links))
		if head.size() <= 4000 {
			break
		}
	}
	m := Message{Embeds: []Embed{head}, AllowedMentions: AllowedMentions{Parse: []string{}}}
	used := head.size()
	sections, pins := chattext.SplitPinned(chattext.Sections(f, d, o))
	// What was redacted gets the last embed whatever else is cut.
	var pinned []Embed
	for _, sec := range pins {
		e := Embed{Title: chattext.Truncate(sec.Title, maxTitle), Description: chattext.Truncate(sec.Short, maxDescription), Color: color}
		if len(pinned) < maxEmbeds-1 && used+e.size() <= maxEmbedsTotal {
			pinned = append(pinned, e)
			used += e.size()
		}
	}
	for i, sec := range sections {
		added := false
		if len(m.Embeds)+len(pinned) < maxEmbeds {
			for _, body := range []string{sec.Full, sec.Short} {
				e := Embed{Title: chattext.Truncate(sec.Title, maxTitle), Description: body, Color: color}
				if body == "" || utf8.RuneCountInString(body) > maxDescription || used+e.size() > maxEmbedsTotal {
					continue
				}
				m.Embeds = append(m.Embeds, e)
				used += e.size()
				added = true
				break
			}
		}
		if !added {
			n := len(sections) - i
			note := fmt.Sprintf("…truncated: %d more %s did not fit in Discord", n, plural(n))
			if o.PageURL != "" {
				note += " — " + d.Link("see the finding page", o.PageURL)
			}
			m.Content = chattext.Truncate(note, maxContent)
			break
		}
	}
	m.Embeds = append(m.Embeds, pinned...)
	return m
}

func plural(n int) string {
	if n == 1 {
		return "section"
	}
	return "sections"
}

// Send posts f.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("discord sink: nil finding")
	}
	o := chattext.Options{Cluster: s.cluster, InlineLogLines: s.p.InlineLogLines}
	if s.pageURL != nil {
		o.PageURL = s.pageURL(f.ID)
	}
	m := Render(f, o)
	m.Username, m.AvatarURL = s.p.Username, s.p.AvatarURL
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode message for finding %s: %w", f.ID, err)
	}
	if _, err := s.poster.Post(ctx, s.target, body, nil); err != nil {
		return fmt.Errorf("post finding %s: %w", f.ID, err)
	}
	return nil
}
