// Package slack is the `slack` sink: each finding becomes a Block Kit
// message (header, subject, description, labels, one section per
// enrichment, links and buttons) within Slack's limits, whole logs and
// graphs are attached in its thread, and the resolved alert updates the
// message and says in the thread how long it lasted.
//
// What must survive a restart — which message belongs to which alert, group
// threads, the thread index for mentions — lives in the JetStream KV bucket
// medic_slack, so a finding redelivered after a crash updates its message
// instead of posting a second one, and a resolve after a restart still
// finds the original message.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	"github.com/medichq/medic/sinks/internal/chatparams"
	"github.com/nats-io/nats.go/jetstream"
)

// Type is the sink type name used in configuration.
const Type = "slack"

// Params are the parameters of the slack sink. The bot token is not one of
// them: it is medic's slack.bot_token (or bot_token_file), shared with the
// interaction handler.
type Params struct {
	// Channel is the channel name (#alerts) or ID messages go to.
	Channel string `yaml:"channel"`
	// APIURL overrides Slack's Web API URL (an air-gapped forwarder, a test
	// server); empty means slack.api_url, else https://slack.com/api/.
	APIURL string `yaml:"api_url"`
	// ChannelOverride picks the channel from the finding: "labels.team"
	// (the label's value), or a pattern like "#team-$labels.team" with
	// $labels.X, $annotations.X and $cluster_name. When a value it names
	// is missing, Channel is used.
	ChannelOverride string `yaml:"channel_override"`
	// GroupBy, when set, groups findings: the first of a group posts a
	// summary message, the findings go in its thread. Keys: namespace,
	// alertname, workload, severity, cluster, labels (all of them) or
	// labels.X.
	GroupBy []string `yaml:"group_by"`
	// Interval is how long a group stays open after its first finding.
	Interval time.Duration `yaml:"interval"`
	// Grouping is Robusta's grouping block, an alternative to group_by
	// and interval (see grouping.go).
	Grouping *Grouping `yaml:"grouping"`
	// RateLimit is this sink's calls per second to Slack (0: unlimited).
	RateLimit float64 `yaml:"rate_limit"`
	// MaxRetryAfter is the longest 429 Retry-After waited out inside one
	// delivery; a longer one fails the delivery, which is retried later.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// Buttons offered on a finding: ask_ai, silence, more_logs.
	Buttons []string `yaml:"buttons"`
	// InlineLogLines is how many last lines of a log the message shows.
	InlineLogLines int `yaml:"inline_log_lines"`
	// UploadFiles attaches whole logs and graphs in the thread.
	UploadFiles bool `yaml:"upload_files"`
	// MaxThreadMessages bounds the thread messages continuing a finding too
	// long for one message.
	MaxThreadMessages int `yaml:"max_thread_messages"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{
		Interval:          15 * time.Minute,
		RateLimit:         1,
		MaxRetryAfter:     time.Minute,
		Buttons:           []string{ButtonAskAI, ButtonSilence, ButtonMoreLogs},
		InlineLogLines:    15,
		UploadFiles:       true,
		MaxThreadMessages: 4,
	}
}

var groupKeys = []string{"namespace", "alertname", "workload", "severity", "cluster", "labels"}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	if strings.TrimSpace(p.Channel) == "" {
		return errors.New("channel: required (a channel name like #alerts or an ID)")
	}
	if p.APIURL != "" {
		u, err := url.Parse(p.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("api_url: %q is not an http(s) URL", p.APIURL)
		}
	}
	if p.Grouping != nil {
		if err := p.Grouping.apply(p); err != nil {
			return err
		}
		p.Grouping = nil // applied: a second Validate must not apply it again
	}
	if _, err := parseOverride(p.ChannelOverride); err != nil {
		return fmt.Errorf("channel_override: %w", err)
	}
	for i, k := range p.GroupBy {
		if k == "identifier" { // Robusta's name for the alert name
			p.GroupBy[i], k = "alertname", "alertname"
		}
		if !slices.Contains(groupKeys, k) && !(strings.HasPrefix(k, "labels.") && len(k) > len("labels.")) {
			return fmt.Errorf("group_by: %q is not one of %s", k, groupingKeysDoc())
		}
	}
	if len(p.GroupBy) > 0 && p.Interval <= 0 {
		return errors.New("interval: must be positive when group_by is set")
	}
	switch {
	case p.RateLimit < 0:
		return errors.New("rate_limit: must not be negative (0: unlimited)")
	case p.MaxRetryAfter < 0:
		return errors.New("max_retry_after: must not be negative")
	case p.InlineLogLines < 1 || p.InlineLogLines > 200:
		return errors.New("inline_log_lines: must be between 1 and 200")
	case p.MaxThreadMessages < 0 || p.MaxThreadMessages > 20:
		return errors.New("max_thread_messages: must be between 0 and 20")
	}
	for _, b := range p.Buttons {
		switch b {
		case ButtonAskAI, ButtonSilence, ButtonMoreLogs:
		default:
			return fmt.Errorf("buttons: %q is not ask_ai, silence or more_logs", b)
		}
	}
	return nil
}

// Register adds the slack sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Posts each finding to a Slack channel as Block Kit (enrichments, logs attached in the thread, Ask AI / Silence / Show more logs buttons), updates it when the alert resolves, and can group findings into threads.",
		Defaults, New)
}

// Sink posts findings to Slack. It is safe for concurrent use.
type Sink struct {
	name     string
	p        Params
	poster   *Poster
	logger   *slog.Logger
	store    store
	findings sinks.FindingStore
	pageURL  func(string) string
	cluster  string
	override *override
	now      func() time.Time
}

// Deps is what a slack sink uses of sinks.Deps.
type Deps interface {
	chatparams.Deps
	Findings() sinks.FindingStore
	KV(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error)
	Slack() sinks.SlackSettings
}

// New starts a Slack sink.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if deps.Slack().BotToken == "" {
		return nil, errors.New("slack.bot_token (or slack.bot_token_file, MEDIC_SLACK_BOT_TOKEN) is required by slack sinks")
	}
	ov, _ := parseOverride(p.ChannelOverride)
	logger := deps.Logger().With("sink", name)
	apiURL := p.APIURL
	if apiURL == "" {
		apiURL = deps.Slack().APIURL
	}
	s := &Sink{
		name: name, p: p, logger: logger,
		findings: deps.Findings(), pageURL: deps.FindingURL, cluster: deps.ClusterName(),
		override: ov, now: time.Now,
		poster: &Poster{
			Client:        NewClient(deps.Slack().BotToken, apiURL, deps.HTTPClient()),
			MaxRetryAfter: p.MaxRetryAfter,
			Logger:        logger,
		},
	}
	if p.RateLimit > 0 {
		s.poster.Limiter = rate.NewLimiter(rate.Limit(p.RateLimit), max(1, int(p.RateLimit*3)))
	}
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch kv, err := deps.KV(kctx, Bucket, BucketTTL); {
	case errors.Is(err, sinks.ErrNoKV):
		logger.Warn("no KV store: Slack message references are kept in memory and lost on restart")
		s.store = newMemStore()
	case err != nil:
		return nil, fmt.Errorf("open KV bucket %s: %w", Bucket, err)
	default:
		s.store = kvStore{kv}
	}
	return s, nil
}

// Close releases nothing: the client holds no connection of its own.
func (s *Sink) Close() error { return nil }

func (s *Sink) renderOptions(f *event.Finding) RenderOptions {
	o := RenderOptions{
		Cluster: s.cluster, Buttons: s.p.Buttons, InlineLogLines: s.p.InlineLogLines,
		Uploads: s.p.UploadFiles, MaxThreadMessages: s.p.MaxThreadMessages,
	}
	if s.pageURL != nil {
		o.PageURL = s.pageURL(f.ID)
	}
	return o
}

// Send delivers f. A finding whose alert already has a message updates it
// (a redelivery, or the alert's resolve) instead of posting again.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("slack sink: nil finding")
	}
	if s.findings != nil {
		if err := s.findings.Put(ctx, f); err != nil {
			// Buttons will say the finding is gone; the message still goes out.
			s.logger.Warn("could not store the finding for its buttons", "finding", f.ID, "err", err)
		}
	}
	key := refKey(s.name, f)
	ref, rev, err := getJSON[Ref](ctx, s.store, key)
	if err == nil && ref == nil && f.Event.Fingerprint != "" {
		// A message posted before the key included the labels: its alert
		// still finds it (until BucketTTL forgets it).
		old := legacyRefKey(s.name, f)
		if ref, rev, err = getJSON[Ref](ctx, s.store, old); ref != nil {
			key = old
		}
	}
	if err != nil {
		return fmt.Errorf("read message reference: %w", err)
	}
	if ref != nil {
		if chatfmt.Resolved(f) && ref.FindingID != f.ID {
			return s.resolve(ctx, f, key, ref, rev)
		}
		return s.resume(ctx, f, key, ref)
	}
	return s.post(ctx, f, key)
}

// post posts a new message for f and finishes its thread.
func (s *Sink) post(ctx context.Context, f *event.Finding, key string) error {
	r := Render(f, s.renderOptions(f))
	channel := s.channelFor(f)
	ref := &Ref{FindingID: f.ID, PostedAt: s.now().UTC()}
	var g *groupJoin
	if len(s.p.GroupBy) > 0 && !chatfmt.Resolved(f) {
		var err error
		if g, err = s.joinGroup(ctx, f, channel); err != nil {
			return err
		}
		channel, ref.ThreadTS, ref.Group = g.channel, g.ts, g.key
	}
	chID, ts, err := s.postMain(ctx, channel, f, r.Main, ref.ThreadTS)
	if err != nil {
		return err
	}
	ref.Channel, ref.TS = chID, ts
	if err := s.store.put(ctx, key, mustJSON(ref)); err != nil {
		// The message is out; a redelivery would post it again, which is
		// better than losing the reference silently.
		return fmt.Errorf("save message reference (the finding may be posted again): %w", err)
	}
	if err := s.store.put(ctx, threadKey(chID, ref.Thread()), mustJSON(ThreadEntry{FindingID: f.ID, Sink: s.name})); err != nil {
		s.logger.Warn("could not index the thread for mentions", "err", err)
	}
	if g != nil {
		if err := s.addToGroup(ctx, g.key, f); err != nil {
			s.logger.Warn("could not update the group summary", "group", g.key, "err", err)
		}
	}
	return s.finish(ctx, key, ref, r)
}

// postMain posts the main message, falling back to a plain one when Slack
// rejects the blocks anyway (they are checked first), so the finding is
// never lost to a rendering problem.
func (s *Sink) postMain(ctx context.Context, channel string, f *event.Finding, m Message, threadTS string) (string, string, error) {
	if err := CheckLimits(m); err != nil {
		s.logger.Error("rendered message breaks a Slack limit; posting a plain message instead", "finding", f.ID, "err", err)
		m = s.fallback(f, err.Error())
	}
	chID, ts, err := s.poster.Post(ctx, channel, m, threadTS)
	if err != nil && rejected(err) {
		s.logger.Error("Slack rejected the message; posting a plain message instead", "finding", f.ID, "err", err)
		return s.poster.Post(ctx, channel, s.fallback(f, ErrorCode(err)), threadTS)
	}
	return chID, ts, err
}

// fallback is a minimal message that Slack accepts whatever the finding.
func (s *Sink) fallback(f *event.Finding, why string) Message {
	text := fmt.Sprintf("%s *%s* · %s · %s", statusEmoji(f), chatfmt.Status(f), escape(oneLine(chatfmt.Severity(f))), escape(truncate(oneLine(f.Title), 500)))
	if d := strings.TrimSpace(f.Description); d != "" {
		text += "\n" + escape(truncate(clean(d), 1500))
	}
	text += fmt.Sprintf("\n_finding `%s`: the full message could not be shown in Slack (%s)_", escape(f.ID), escape(why))
	if s.pageURL != nil {
		if u := s.pageURL(f.ID); u != "" {
			text += " · " + link(u, "open it in medic")
		}
	}
	return TextMessage(text)
}

// resume finishes a message that was posted before: a redelivery after a
// crash or a failed step. The message is updated (harmless when nothing
// changed) and the thread messages and files not yet posted are posted.
func (s *Sink) resume(ctx context.Context, f *event.Finding, key string, ref *Ref) error {
	r := Render(f, s.renderOptions(f))
	m := r.Main
	if err := CheckLimits(m); err != nil {
		m = s.fallback(f, err.Error())
	}
	if err := s.poster.Update(ctx, ref.Channel, ref.TS, m); err != nil && !rejected(err) {
		return err
	}
	return s.finish(ctx, key, ref, r)
}

// finish posts the thread messages and the files a message still lacks,
// saving progress after each so a redelivery does not repeat them.
func (s *Sink) finish(ctx context.Context, key string, ref *Ref, r Rendered) error {
	for i := ref.Continued; i < len(r.Thread); i++ {
		if _, _, err := s.poster.Post(ctx, ref.Channel, r.Thread[i], ref.Thread()); err != nil {
			if !rejected(err) {
				return err
			}
			s.logger.Error("Slack rejected a continuation message; skipped", "finding", ref.FindingID, "err", err)
		}
		ref.Continued = i + 1
		if err := s.store.put(ctx, key, mustJSON(ref)); err != nil {
			return fmt.Errorf("save message reference: %w", err)
		}
	}
	for i := ref.Uploaded; i < len(r.Uploads); i++ {
		u := r.Uploads[i]
		if err := s.poster.Upload(ctx, ref.Channel, ref.Thread(), u); err != nil {
			if ErrorCode(err) == "" {
				return err // 5xx, network, rate limit: retried
			}
			// Slack refused it (missing files:write, file too large, …):
			// retrying will not help; say so in the thread instead.
			s.logger.Warn("could not attach a file to the finding's thread", "file", u.Name, "err", err)
			note := TextMessage(fmt.Sprintf("⚠ could not attach %s: Slack answered %s", escape(u.Name), escape(ErrorCode(err))))
			if _, _, perr := s.poster.Post(ctx, ref.Channel, note, ref.Thread()); perr != nil {
				return perr
			}
		}
		ref.Uploaded = i + 1
		if err := s.store.put(ctx, key, mustJSON(ref)); err != nil {
			return fmt.Errorf("save message reference: %w", err)
		}
	}
	return nil
}

// resolve updates the alert's message to resolved and replies in its
// thread how long it lasted.
func (s *Sink) resolve(ctx context.Context, f *event.Finding, key string, ref *Ref, rev uint64) error {
	if ref.ResolvedID == f.ID && ref.ResolvedNoted {
		return nil // a redelivery of a resolve already done
	}
	shown := s.resolvedView(ctx, f, ref)
	r := Render(shown, s.renderOptions(shown))
	m := r.Main
	if err := CheckLimits(m); err != nil {
		m = s.fallback(shown, err.Error())
	}
	if err := s.poster.Update(ctx, ref.Channel, ref.TS, m); err != nil {
		if !rejected(err) && ErrorCode(err) != "message_not_found" && ErrorCode(err) != "cant_update_message" {
			return err
		}
		s.logger.Warn("could not update the original message; replying in its thread only", "finding", f.ID, "err", err)
	}
	ref.ResolvedID = f.ID
	if _, _, err := s.poster.Post(ctx, ref.Channel, ResolvedReply(f, ref.ThreadTS != ""), ref.Thread()); err != nil {
		return err
	}
	ref.ResolvedNoted = true
	if _, err := s.store.update(ctx, key, mustJSON(ref), rev); err != nil {
		// Someone else wrote it meanwhile; a plain write keeps what we did.
		if err := s.store.put(ctx, key, mustJSON(ref)); err != nil {
			return fmt.Errorf("save message reference: %w", err)
		}
	}
	if ref.Group != "" {
		if err := s.resolveInGroup(ctx, ref.Group, ref.FindingID); err != nil {
			s.logger.Warn("could not update the group summary", "group", ref.Group, "err", err)
		}
	}
	return nil
}

// resolvedView is what the updated message shows: the original firing
// finding (its evidence) marked resolved, or the resolved finding itself
// when the original is no longer stored.
func (s *Sink) resolvedView(ctx context.Context, f *event.Finding, ref *Ref) *event.Finding {
	if s.findings == nil {
		return f
	}
	orig, err := s.findings.Get(ctx, ref.FindingID)
	if err != nil {
		if !errors.Is(err, sinks.ErrFindingNotFound) {
			s.logger.Warn("could not read the original finding; showing the resolved one", "finding", ref.FindingID, "err", err)
		}
		return f
	}
	v := *orig
	v.Event.Status = event.StatusResolved
	v.Event.EndsAt = f.Event.EndsAt
	v.Event.ReceivedAt = f.Event.ReceivedAt
	return &v
}

// channelFor applies channel_override.
func (s *Sink) channelFor(f *event.Finding) string {
	if s.override != nil {
		if c, ok := s.override.apply(f, s.cluster); ok {
			return c
		}
	}
	return s.p.Channel
}

// override is a parsed channel_override.
type override struct {
	direct  string // labels.X or annotations.X: the value itself
	pattern string // with $labels.X, $annotations.X, $cluster_name
}

var overrideVar = regexp.MustCompile(`\$(labels|annotations)\.([A-Za-z0-9_]+)|\$cluster_name`)

func parseOverride(s string) (*override, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, nil
	case strings.Contains(s, "$"):
		rest := overrideVar.ReplaceAllString(s, "")
		if strings.Contains(rest, "$") {
			return nil, fmt.Errorf("%q: only $labels.<name>, $annotations.<name> and $cluster_name are understood", s)
		}
		return &override{pattern: s}, nil
	case strings.HasPrefix(s, "labels.") || strings.HasPrefix(s, "annotations."):
		if !overrideVar.MatchString("$" + s) {
			return nil, fmt.Errorf("%q: expected labels.<name> or annotations.<name>", s)
		}
		return &override{direct: s}, nil
	case s == "cluster_name":
		return &override{direct: s}, nil
	}
	return nil, fmt.Errorf("%q: expected labels.<name>, annotations.<name>, cluster_name or a pattern such as \"#team-$labels.team\"", s)
}

func (o *override) apply(f *event.Finding, cluster string) (string, bool) {
	lookup := func(ref string) string {
		switch {
		case ref == "cluster_name":
			return cluster
		case strings.HasPrefix(ref, "labels."):
			return f.Event.Labels[strings.TrimPrefix(ref, "labels.")]
		case strings.HasPrefix(ref, "annotations."):
			return f.Event.Annotations[strings.TrimPrefix(ref, "annotations.")]
		}
		return ""
	}
	if o.direct != "" {
		v := strings.TrimSpace(lookup(o.direct))
		return v, v != ""
	}
	ok := true
	out := overrideVar.ReplaceAllStringFunc(o.pattern, func(m string) string {
		v := strings.TrimSpace(lookup(strings.TrimPrefix(m, "$")))
		if v == "" {
			ok = false
		}
		return v
	})
	return out, ok
}
