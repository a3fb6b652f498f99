package interact

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// RunSocketMode receives interactions and mentions over Socket Mode until
// ctx ends: medic opens a websocket to Slack with the app-level token, so a
// cluster without ingress gets the buttons too. Each envelope is queued as
// a job and acknowledged at once.
func (s *Service) RunSocketMode(ctx context.Context) {
	opts := []goslack.Option{goslack.OptionAppLevelToken(s.o.Slack.AppToken), goslack.OptionHTTPClient(s.o.HTTPClient)}
	if s.o.Slack.APIURL != "" {
		u := s.o.Slack.APIURL
		if u[len(u)-1] != '/' {
			u += "/"
		}
		opts = append(opts, goslack.OptionAPIURL(u))
	}
	api := goslack.New(s.o.Slack.BotToken, opts...)
	client := socketmode.New(api, socketmode.OptionLog(slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug)))
	go func() {
		for ctx.Err() == nil {
			if err := client.RunContext(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("Slack Socket Mode connection ended; reconnecting", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case evt, ok := <-client.Events:
			if !ok {
				return
			}
			s.socketEvent(ctx, client, evt)
		}
	}
}

func (s *Service) socketEvent(ctx context.Context, client *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		s.logger.Info("Slack Socket Mode connected")
	case socketmode.EventTypeInvalidAuth:
		s.logger.Error("Slack Socket Mode: invalid app-level token (slack.app_token)")
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(goslack.InteractionCallback)
		if ok {
			if err := s.dispatchInteraction(ctx, &cb); err != nil {
				s.logger.Error("could not queue a Slack interaction", "err", err)
			}
		}
		if evt.Request != nil {
			_ = client.Ack(*evt.Request)
		}
	case socketmode.EventTypeEventsAPI:
		if evt.Request != nil {
			var p eventsPayload
			if err := json.Unmarshal(evt.Request.Payload, &p); err == nil {
				if err := s.dispatchEvent(ctx, &p); err != nil {
					s.logger.Error("could not queue a Slack event", "err", err)
				}
			}
			_ = client.Ack(*evt.Request)
		}
	case socketmode.EventTypeSlashCommand:
		if evt.Request != nil {
			_ = client.Ack(*evt.Request)
		}
	}
}
