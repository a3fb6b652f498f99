package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/remediate"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/interact"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/sinks"
)

// chatSide is what the chat sinks share with the interactive side: the
// stored findings, the signed finding-page links, and the service behind
// the Slack endpoints, the buttons' workers and the page (package interact).
type chatSide struct {
	kv       interact.KVFunc
	findings *interact.FindingStore
	links    *interact.Links
	svc      *interact.Service
}

// initChat opens what the chat sinks need and fills deps with it; called
// before the sinks start.
func (a *App) initChat(ctx context.Context, deps *sinks.Deps) error {
	c := &a.chat
	c.kv = interact.KVOpener(a.bus.JetStream(), a.cfg.Bus.Replicas)
	var err error
	// Whole findings (up to 900 KiB each) of every chat delivery and every
	// silenced finding, kept for finding_page.retention: bounded on disk by
	// bus.max_bytes like the bus's buckets, which a storm would otherwise
	// fill, and in keys (memory); the oldest go first (bus/kvbucket.go).
	boundedFindings := func(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
		return a.bus.BoundedKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: bucket, TTL: ttl, Storage: jetstream.FileStorage, MaxBytes: a.cfg.Bus.MaxBytes,
		}, config.DefaultBucketRecords)
	}
	if c.findings, err = interact.NewFindingStore(ctx, boundedFindings, a.cfg.FindingPage.Retention); err != nil {
		return err
	}
	if c.links, err = interact.NewLinks(ctx, c.kv, a.cfg.FindingPage.KeyFile, a.cfg.PublicURL, a.cfg.FindingPage.TTL); err != nil {
		return err
	}
	deps.Cluster = a.cfg.ClusterName
	deps.OpenKV = c.kv
	deps.FindingStore = c.findings
	deps.PageURL = c.links.URL
	deps.SlackSettings = sinks.SlackSettings{BotToken: a.cfg.Slack.BotToken, APIURL: a.cfg.Slack.APIURL}
	return nil
}

// newChatService builds the interactive side once the AI is known; called
// before the routes are built.
func (a *App) newChatService(ctx context.Context, env *actions.Env) error {
	var answerer rag.Answerer
	if a.kb != nil && a.kb.Answerer != nil {
		answerer = a.kb.Answerer // the investigation, or the one-shot answer
	}
	am := a.cfg.Alertmanager
	amToken := fileToken("alertmanager.bearer_token_file", am.BearerTokenFile)
	s := a.cfg.Slack
	opts := interact.Options{
		Bus: a.bus, Replicas: a.cfg.Bus.Replicas,
		Logger:     a.logger.With("component", "interact"),
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
		KV:         a.chat.kv, Findings: a.chat.findings, Links: a.chat.links,
		Answerer: answerer,
		Slack: interact.SlackOptions{
			BotToken: s.BotToken, SigningSecret: s.SigningSecret, AppToken: s.AppToken,
			SocketMode: s.SocketMode, APIURL: s.APIURL,
		},
		AlertmanagerURL: am.URL, AlertmanagerAllowed: am.AllowedURLs,
		AlertmanagerToken: amToken, AlertmanagerTimeout: am.Timeout,
		AskTimeout: 2*a.cfg.AI.Timeout + time.Minute,
		Approvers:  a.cfg.Remediation.Approvers,
	}
	if a.cfg.Remediation.Enabled {
		opts.Remediator = &remediate.Executor{Env: env, Redactor: a.redactor}
	}
	svc, err := interact.New(ctx, opts)
	if err != nil {
		return fmt.Errorf("interactions: %w", err)
	}
	a.chat.svc = svc
	switch {
	case s.SocketMode:
		a.logger.Info("Slack interactivity over Socket Mode")
	case s.SigningSecret != "":
		a.logger.Info("Slack interactivity on POST /slack/interactions and /slack/events")
	case s.BotToken != "":
		a.logger.Info("Slack buttons are shown but nothing receives their clicks: set slack.signing_secret (or slack.socket_mode with slack.app_token)")
	}
	if a.cfg.PublicURL == "" {
		a.logger.Info("public_url is not set: Teams cards and Slack messages carry no link to the finding page")
	}
	return nil
}

// startChat runs the interaction workers and, when configured, Socket Mode.
func (a *App) startChat(ctx context.Context) error {
	if a.chat.svc == nil {
		return nil
	}
	if err := a.chat.svc.Start(ctx, a.deadLetters.Counter); err != nil {
		return err
	}
	a.onClose("interactions", a.chat.svc) // its workers, before the AI and the bus
	if a.chat.svc.SocketMode() {
		a.wg.Go(func() { a.chat.svc.RunSocketMode(ctx) })
	}
	return nil
}

// chatRoutes adds POST /slack/interactions, POST /slack/events and the
// finding page (GET /findings/{id}, POST …/ask, GET …/answer).
func (a *App) chatRoutes(mux *http.ServeMux) {
	if a.chat.svc != nil {
		a.chat.svc.RegisterRoutes(mux)
	}
}
