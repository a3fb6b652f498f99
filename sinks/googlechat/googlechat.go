// Package googlechat is the `google_chat` sink: each finding is posted to a
// Google Chat space through its incoming webhook, as a card (cardsV2: a
// header with the title and status, the subject as labelled lines, the
// description, buttons for the finding page and the alert's links, one
// section per piece of evidence) or, with format: text, as a text message.
//
// The firing and the resolved finding of one alert share a thread
// (thread.threadKey, chattext.ThreadKey), and every message carries a
// client-assigned messageId derived from medic's idempotency key, so Google
// Chat itself refuses a second copy (409 ALREADY_EXISTS, which the sink
// counts as delivered) if a crash makes medic send one again.
package googlechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	"github.com/medichq/medic/sinks/internal/chatparams"
	"github.com/medichq/medic/sinks/internal/chattext"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "google_chat"

// Formats of a message.
const (
	FormatCard = "card"
	FormatText = "text"
)

// Params are the parameters of the google_chat sink.
type Params struct {
	// WebhookURL is the space's incoming webhook URL (its key and token
	// are the credential: a secret).
	WebhookURL     string `yaml:"webhook_url"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	WebhookURLEnv  string `yaml:"webhook_url_env"`
	// Format is card (cardsV2) or text.
	Format string `yaml:"format"`
	// Threads puts an alert's firing and resolved messages in one thread.
	Threads bool `yaml:"threads"`
	// MaxMessageBytes bounds the message's JSON (Google Chat refuses a
	// message over 32,000 bytes).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// Common: inline_log_lines, max_retry_after.
	chatparams.Common `yaml:",inline"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{Format: FormatCard, Threads: true, MaxMessageBytes: 30000, Common: chatparams.Defaults(15)}
}

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
	case p.Format != FormatCard && p.Format != FormatText:
		return fmt.Errorf("format: %q is not card or text", p.Format)
	case p.MaxMessageBytes < 4000 || p.MaxMessageBytes > 32000:
		return errors.New("max_message_bytes: must be between 4000 and 32000")
	}
	return p.Common.Check(100)
}

// Register adds the googlechat sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Posts each finding to a Google Chat space's incoming webhook as a card (or text), firing and resolved in one thread.",
		Defaults, New)
}

// Sink posts findings. It is safe for concurrent use.
type Sink struct {
	name    string
	p       Params
	target  *url.URL // holds the key and token: never logged
	poster  *httpdeliver.Poster
	cluster string
	pageURL func(string) string
}

// Deps is what a googlechat sink uses of sinks.Deps: the chat sinks' set.
type Deps = chatparams.Deps

// New starts a Google Chat sink, reading the webhook URL now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	raw, err := p.webhook().Read()
	if err != nil {
		return nil, err
	}
	target, err := url.Parse(raw)
	if err != nil || !chatfmt.IsWebURL(strings.TrimSpace(raw)) {
		return nil, errors.New("webhook_url: not an http(s) URL")
	}
	return &Sink{
		name: name, p: p, target: target, cluster: deps.ClusterName(), pageURL: deps.FindingURL,
		poster: p.Poster(name, "the Google Chat webhook", deps),
	}, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// Message is the message resource Google Chat's webhook takes.
type Message struct {
	Text    string   `json:"text,omitempty"`
	CardsV2 []CardV2 `json:"cardsV2,omitempty"`
	Thread  *Thread  `json:"thread,omitempty"`
}

// Thread names the thread a message goes to.
type Thread struct {
	ThreadKey string `json:"threadKey"`
}

// CardV2 is a card with its ID.
type CardV2 struct {
	CardID string `json:"cardId"`
	Card   Card   `json:"card"`
}

// Card is a card: a header and sections of widgets.
type Card struct {
	Header   Header    `json:"header"`
	Sections []Section `json:"sections"`
}

// Header is a card's header (plain text).
type Header struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle,omitempty"`
}

// Section is a card section.
type Section struct {
	Header                    string   `json:"header,omitempty"`
	Collapsible               bool     `json:"collapsible,omitempty"`
	UncollapsibleWidgetsCount int      `json:"uncollapsibleWidgetsCount,omitempty"`
	Widgets                   []Widget `json:"widgets"`
}

// Widget is one of the widgets medic uses.
type Widget struct {
	DecoratedText *DecoratedText `json:"decoratedText,omitempty"`
	TextParagraph *TextParagraph `json:"textParagraph,omitempty"`
	ButtonList    *ButtonList    `json:"buttonList,omitempty"`
}

// DecoratedText is a labelled line.
type DecoratedText struct {
	TopLabel string `json:"topLabel"`
	Text     string `json:"text"`
}

// TextParagraph is text in the card HTML subset.
type TextParagraph struct {
	Text string `json:"text"`
}

// ButtonList is a row of buttons.
type ButtonList struct {
	Buttons []Button `json:"buttons"`
}

// Button opens a link.
type Button struct {
	Text    string  `json:"text"`
	OnClick OnClick `json:"onClick"`
}

// OnClick opens a link.
type OnClick struct {
	OpenLink OpenLink `json:"openLink"`
}

// OpenLink is a URL to open.
type OpenLink struct {
	URL string `json:"url"`
}

// Text is Google Chat's text formatting: *bold*, `code`, ```block```,
// <url|label>. It has no escape, so text from the cluster is shown as
// written, with the characters that would start a link or code replaced.
var Text = chattext.Dialect{
	Text: func(s string) string { return gcNeutral.Replace(s) },
	Bold: func(s string) string {
		return "*" + strings.ReplaceAll(gcNeutral.Replace(chattext.OneLine(s)), "*", "∗") + "*"
	},
	Code: func(s string) string { return "`" + gcNeutral.Replace(chattext.OneLine(s)) + "`" },
	Pre: func(s string) string {
		return "```\n" + strings.ReplaceAll(s, "```", "`\u200b``") + "\n```"
	},
	Link: func(label, u string) string {
		return "<" + strings.NewReplacer("|", "%7C", ">", "%3E").Replace(u) + "|" + gcNeutral.Replace(chattext.OneLine(label)) + ">"
	},
	Markdown: func(s string) string {
		s = chattext.Markdown.Markdown(s) // web links only, no mentions
		s = mdLinkRE.ReplaceAllString(s, "<$2|$1>")
		return strings.ReplaceAll(s, "**", "*")
	},
	Newline: "\n",
}

var mdLinkRE = regexp.MustCompile(`\[([^\]\n]*)\]\((https?://[^)\s|>]*)\)`)

var gcNeutral = strings.NewReplacer("<", "‹", ">", "›", "`", "'")

// MaxTextChars is how much of a text message medic fills: Google Chat
// shows 4,096 characters of a message's text.
const MaxTextChars = 4096

// Render is the message for f, its JSON within maxBytes: the subject,
// description and links are cut shorter until they take at most half, then
// the evidence fills the rest, shortened, then left out with a note.
func Render(f *event.Finding, format string, o chattext.Options, maxBytes int) Message {
	if format == FormatText {
		var m Message
		for max := MaxTextChars; max >= 500; max = max * 3 / 4 {
			if m = (Message{Text: chattext.Message(f, Text, o, max)}); size(m) <= maxBytes {
				break
			}
		}
		return m
	}
	d := chattext.CardHTML
	title := chattext.Title(f, 200)
	subtitle := chattext.Headline(f)
	m := Message{
		// The text is the notification's preview; the card says the rest.
		Text:    chattext.Plain.Text(subtitle + ": " + title),
		CardsV2: []CardV2{{CardID: "finding", Card: Card{Header: Header{Title: title, Subtitle: subtitle}}}},
	}
	card := &m.CardsV2[0].Card
	footer := Section{Widgets: []Widget{{TextParagraph: &TextParagraph{Text: `<font color="#80868b">` + chattext.Footer(f, d) + "</font>"}}}}
	for _, lim := range []struct{ facts, value, desc, url int }{{30, 300, 3000, 4000}, {12, 120, 800, 1500}, {6, 60, 0, 300}} {
		card.Sections = head(f, d, o, lim.facts, lim.value, lim.desc, lim.url)
		if size(m) <= maxBytes/2 {
			break
		}
	}
	sections, pins := chattext.SplitPinned(chattext.Sections(f, d, o))
	// What was redacted follows the rest, or the note that cut it.
	var pinned []Section
	for _, sec := range pins {
		pinned = append(pinned, Section{Header: d.Text(sec.Title), Widgets: []Widget{{TextParagraph: &TextParagraph{Text: sec.Short}}}})
	}
	reserved := size(footer)
	if len(pinned) > 0 {
		reserved += size(pinned)
	}
	for i, sec := range sections {
		added := false
		for _, body := range []string{sec.Full, sec.Short} {
			card.Sections = append(card.Sections, Section{Header: d.Text(sec.Title), Widgets: []Widget{{TextParagraph: &TextParagraph{Text: body}}}})
			if size(m)+reserved <= maxBytes-400 {
				added = true
				break
			}
			card.Sections = card.Sections[:len(card.Sections)-1]
		}
		if !added {
			n := len(sections) - i
			note := d.Text(fmt.Sprintf("…truncated: %d more sections did not fit in Google Chat", n))
			if o.PageURL != "" {
				note += d.Text(" — ") + d.Link("see the finding page", o.PageURL)
			}
			card.Sections = append(card.Sections, Section{Widgets: []Widget{{TextParagraph: &TextParagraph{Text: note}}}})
			break
		}
	}
	card.Sections = append(card.Sections, pinned...)
	card.Sections = append(card.Sections, footer)
	return m
}

// head is the card's first sections: the subject and labels as labelled
// lines (the first six shown, the rest behind "show more"), the
// description, and buttons for the finding page and the alert's links
// (a link longer than maxURL, a silence with many labels, is left out).
func head(f *event.Finding, d chattext.Dialect, o chattext.Options, maxFacts, maxValue, maxDesc, maxURL int) []Section {
	var out []Section
	var widgets []Widget
	for i, fact := range chattext.Facts(f, o.Cluster) {
		if i == maxFacts {
			break // the rest are on the finding page
		}
		widgets = append(widgets, Widget{DecoratedText: &DecoratedText{
			TopLabel: chattext.Truncate(chattext.OneLine(fact.Name), 100), Text: d.Text(chattext.Truncate(chattext.OneLine(fact.Value), maxValue)),
		}})
	}
	sec := Section{Widgets: widgets}
	if len(widgets) > 6 {
		sec.Collapsible, sec.UncollapsibleWidgetsCount = true, 6
	}
	if desc := chattext.Description(f, d, maxDesc); desc != "" {
		sec.Widgets = append(sec.Widgets, Widget{TextParagraph: &TextParagraph{Text: desc}})
	}
	if len(sec.Widgets) > 0 {
		out = append(out, sec)
	}
	var buttons []Button
	for _, l := range chattext.Links(f, o.PageURL) {
		if len(l.URL) <= maxURL {
			buttons = append(buttons, Button{Text: l.Label, OnClick: OnClick{OpenLink: OpenLink{URL: l.URL}}})
		}
	}
	if len(buttons) > 0 {
		out = append(out, Section{Widgets: []Widget{{ButtonList: &ButtonList{Buttons: buttons}}}})
	}
	return out
}

func size(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

// MessageID is the client-assigned message ID of f's message in this
// sink: "client-" and medic's idempotency key, which Google Chat keeps
// unique in the space.
func MessageID(sink string, f *event.Finding) string {
	return "client-" + sinks.IdempotencyKey(sink, f.ID)
}

// Send posts f.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("google_chat sink: nil finding")
	}
	o := chattext.Options{Cluster: s.cluster, InlineLogLines: s.p.InlineLogLines}
	if s.pageURL != nil {
		o.PageURL = s.pageURL(f.ID)
	}
	m := Render(f, s.p.Format, o, s.p.MaxMessageBytes)
	u := *s.target
	q := u.Query()
	q.Set("messageId", MessageID(s.name, f))
	if s.p.Threads {
		m.Thread = &Thread{ThreadKey: chattext.ThreadKey(f)}
		q.Set("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD")
	}
	u.RawQuery = q.Encode()
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode message for finding %s: %w", f.ID, err)
	}
	status, err := s.poster.Post(ctx, u.String(), body, http.Header{"Content-Type": {"application/json; charset=UTF-8"}})
	if status == http.StatusConflict {
		return nil // ALREADY_EXISTS: this messageId was posted before a crash
	}
	if err != nil {
		return fmt.Errorf("post finding %s: %w", f.ID, err)
	}
	return nil
}
