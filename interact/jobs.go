package interact

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The stream behind the buttons: a click is published here and answered
// at once; workers do the work from their durable consumers, with the bus'
// retries and dead-lettering.
const (
	Stream = "MEDIC_INTERACTIONS"
	// AISubject carries Ask AI requests (buttons, the page, mentions).
	AISubject = "medic.ai.requests"
	// ActionsPrefix carries the other buttons: medic.interactions.<kind>.
	ActionsPrefix = "medic.interactions."
)

// Job kinds.
const (
	KindAskAI    = "ask_ai"
	KindMention  = "mention"
	KindSilence  = "silence"
	KindMoreLogs = "more_logs"
)

// Origins of a job.
const (
	OriginSlack = "slack"
	OriginPage  = "page"
)

// Job is one piece of interactive work. It carries references only: the
// finding is looked up by ID, secrets stay in medic's configuration.
type Job struct {
	Kind      string `json:"kind"`
	FindingID string `json:"findingId,omitempty"`
	// RequestID identifies the click (Slack's action_ts, an event ID, a
	// page request); a redelivered job keeps it.
	RequestID string        `json:"requestId"`
	Origin    string        `json:"origin"`
	Duration  time.Duration `json:"duration,omitempty"` // silences
	Question  string        `json:"question,omitempty"` // mentions
	Proposal  string        `json:"proposal,omitempty"` // approvals: the proposed action's ID
	Slack     *SlackTarget  `json:"slack,omitempty"`
	At        time.Time     `json:"at"`
}

// SlackTarget is where in Slack a job came from and answers go.
type SlackTarget struct {
	Channel   string `json:"channel"`
	MessageTS string `json:"messageTs,omitempty"`
	// ThreadTS is the thread replies go in.
	ThreadTS string `json:"threadTs"`
	User     string `json:"user,omitempty"`
	UserName string `json:"userName,omitempty"`
}

func (j *Job) subject() string {
	switch j.Kind {
	case KindAskAI, KindMention:
		return AISubject
	default:
		return ActionsPrefix + j.Kind
	}
}

// ensureStream creates or updates the interactions stream.
func ensureStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "medic interactions: Ask AI requests and button clicks, worked off asynchronously",
		Subjects:    []string{AISubject, ActionsPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		// A work stream: were a limit ever reached, refuse the click (Slack
		// shows the error and the user clicks again) rather than drop a
		// job not yet done. It has no size limit; jobs age out after a day.
		Discard:    jetstream.DiscardNew,
		MaxAge:     24 * time.Hour,
		Duplicates: 2 * time.Minute,
		Replicas:   max(replicas, 1),
	})
	if err != nil {
		return fmt.Errorf("create or update stream %s: %w", Stream, err)
	}
	return nil
}

// publish stores a job; the request ID deduplicates a double publish.
func publish(ctx context.Context, js jetstream.JetStream, j Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second) // Slack waits 3s
	defer cancel()
	msg := &nats.Msg{Subject: j.subject(), Data: data}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(j.Kind+"."+j.FindingID+"."+j.RequestID)); err != nil {
		return fmt.Errorf("publish %s request: %w", j.Kind, err)
	}
	return nil
}
