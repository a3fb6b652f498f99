// Package webex is the `webex` sink: each finding is posted to a Webex
// space by a bot (POST /v1/messages with the bot's access token) as
// Markdown, within Webex's limit of 7439 bytes on a message.
package webex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/medichq/medic/sinks/chatfmt"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/chatparams"
	"github.com/medichq/medic/sinks/internal/chattext"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "webex"

// MaxMessageBytes is Webex's limit on a message's markdown (and text).
const MaxMessageBytes = 7439

// Params are the parameters of the webex sink.
type Params struct {
	// BotToken is the bot's access token (a secret).
	BotToken     string `yaml:"bot_token"`
	BotTokenFile string `yaml:"bot_token_file"`
	BotTokenEnv  string `yaml:"bot_token_env"`
	// RoomID is the space the bot posts to (the bot must be a member).
	RoomID string `yaml:"room_id"`
	// APIURL is the Webex API's base URL.
	APIURL string `yaml:"api_url"`
	// Common: inline_log_lines, max_retry_after.
	chatparams.Common `yaml:",inline"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{APIURL: "https://webexapis.com", Common: chatparams.Defaults(10)}
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
	case strings.TrimSpace(p.RoomID) == "":
		return errors.New("room_id: required (the space's ID, from GET /v1/rooms)")
	case !chatfmt.IsWebURL(p.APIURL):
		return errors.New("api_url: must be an http(s) URL")
	}
	return p.Common.Check(50)
}

// Register adds the webex sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Posts each finding to a Webex space as a bot (POST /v1/messages, Markdown within 7439 bytes).",
		Defaults, New)
}

// Sink posts findings. It is safe for concurrent use.
type Sink struct {
	p       Params
	target  string
	header  http.Header // holds the token: never logged
	poster  *httpdeliver.Poster
	cluster string
	pageURL func(string) string
}

// Deps is what a webex sink uses of sinks.Deps: the chat sinks' set.
type Deps = chatparams.Deps

// New starts a Webex sink, reading the bot token now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	token, err := p.token().Read()
	if err != nil {
		return nil, err
	}
	return &Sink{
		p: p, target: strings.TrimSuffix(p.APIURL, "/") + "/v1/messages",
		header:  http.Header{"Authorization": {"Bearer " + token}},
		cluster: deps.ClusterName(), pageURL: deps.FindingURL,
		poster: p.Poster(name, "the Webex API", deps),
	}, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// Message is the POST /v1/messages request.
type Message struct {
	RoomID   string `json:"roomId"`
	Text     string `json:"text"`
	Markdown string `json:"markdown"`
}

// Markdown renders f within Webex's byte limit: the limit is in bytes and
// the renderer counts characters, so a text with many multi-byte
// characters is rendered again with less room.
func Markdown(f *event.Finding, o chattext.Options) string {
	var text string
	for max := MaxMessageBytes - 200; max >= 500; max = max * 3 / 4 {
		if text = chattext.Message(f, chattext.Markdown, o, max); len(text) <= MaxMessageBytes {
			return text
		}
	}
	return chattext.Truncate(text, MaxMessageBytes/4) // all 4-byte characters: still within
}

// Send posts f.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("webex sink: nil finding")
	}
	o := chattext.Options{Cluster: s.cluster, InlineLogLines: s.p.InlineLogLines}
	if s.pageURL != nil {
		o.PageURL = s.pageURL(f.ID)
	}
	body, err := json.Marshal(Message{
		RoomID: s.p.RoomID, Markdown: Markdown(f, o),
		// The text is what clients that cannot show Markdown (and
		// notifications) show.
		Text: chattext.Truncate(chattext.Headline(f)+": "+chattext.Title(f, 250)+" (finding "+f.ID+")", 1000),
	})
	if err != nil {
		return fmt.Errorf("encode message for finding %s: %w", f.ID, err)
	}
	if _, err := s.poster.Post(ctx, s.target, body, s.header); err != nil {
		return fmt.Errorf("post finding %s: %w", f.ID, err)
	}
	return nil
}
