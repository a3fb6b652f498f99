package slack

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/slack/slackrec"
)

const testToken = "xoxb-test-secret-token-123"

// openBus opens an embedded JetStream whose files live in dir, so a second
// call with the same dir is medic after a restart.
func openBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{
		StoreDir: dir, Replicas: 1, DedupWindow: time.Minute, MaxDeliver: 3,
		AckWait: 5 * time.Second, PublishTimeout: 5 * time.Second, Compression: "s2",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kvOpener(js jetstream.JetStream) func(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	return func(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, TTL: ttl})
	}
}

// memFindings is a FindingStore for tests.
type memFindings struct {
	mu sync.Mutex
	m  map[string]event.Finding
}

func (m *memFindings) Put(_ context.Context, f *event.Finding) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]event.Finding{}
	}
	m.m[f.ID] = *f
	return nil
}

func (m *memFindings) Get(_ context.Context, id string) (*event.Finding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.m[id]
	if !ok {
		return nil, sinks.ErrFindingNotFound
	}
	return &f, nil
}

type fixture struct {
	t     *testing.T
	slack *slackrec.Server
	dir   string
	bus   *bus.Bus
	found *memFindings
	sink  *Sink
	waits []time.Duration
}

func newFixture(t *testing.T, p func(*Params)) *fixture {
	fx := &fixture{t: t, slack: slackrec.New(t), dir: filepath.Join(t.TempDir(), "js"), found: &memFindings{}}
	fx.start(p)
	return fx
}

// start (re)starts the bus and the sink, as medic does at start-up.
func (fx *fixture) start(p func(*Params)) {
	fx.t.Helper()
	fx.bus = openBus(fx.t, fx.dir)
	b := fx.bus
	fx.t.Cleanup(b.Close)
	params := *Defaults()
	params.Channel = "#alerts"
	params.RateLimit = 0
	if p != nil {
		p(&params)
	}
	s, err := New(fx.t.Context(), "oncall", params, sinks.Deps{
		Log:           slog.New(slog.DiscardHandler),
		HTTP:          &http.Client{Timeout: 10 * time.Second},
		Cluster:       "default",
		OpenKV:        kvOpener(fx.bus.JetStream()),
		FindingStore:  fx.found,
		SlackSettings: sinks.SlackSettings{BotToken: testToken, APIURL: fx.slack.APIURL()},
	})
	if err != nil {
		fx.t.Fatal(err)
	}
	s.poster.sleep = func(_ context.Context, d time.Duration) error {
		fx.waits = append(fx.waits, d)
		return nil
	}
	fx.sink = s
}

// restart closes the bus and the sink and starts new ones on the same
// JetStream files.
func (fx *fixture) restart(p func(*Params)) {
	fx.sink.Close()
	fx.bus.Close()
	fx.start(p)
}

func (fx *fixture) send(f *event.Finding) {
	fx.t.Helper()
	if err := fx.sink.Send(context.Background(), f); err != nil {
		fx.t.Fatalf("send %s: %v", f.ID, err)
	}
}

func actionIDs(t *testing.T, blocks json.RawMessage) []string {
	t.Helper()
	var bs []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(blocks, &bs); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	var ids []string
	for _, b := range bs {
		if b.Type == "actions" {
			for _, e := range b.Elements {
				ids = append(ids, e.ActionID+"="+e.Value)
			}
		}
	}
	return ids
}

func TestFindingBecomesMessageWithButtons(t *testing.T) {
	fx := newFixture(t, nil)
	f := withEnrichments(event.Enrichment{Title: "Logs", Source: "logs_enricher", Blocks: []event.Block{
		event.LogTextBlock("shop/cart-7d9 container app", logLines(300, "app"), false),
	}})
	fx.send(f)

	posts := fx.slack.Calls(slackrec.PostMessage)
	if len(posts) != 1 {
		t.Fatalf("%d messages posted, want 1", len(posts))
	}
	p := posts[0]
	if p.Channel != "#alerts" || p.ThreadTS != "" {
		t.Errorf("posted to %q thread %q", p.Channel, p.ThreadTS)
	}
	want := "medic_ask_ai=" + f.ID + ",medic_silence_1h=" + f.ID + ",medic_silence_4h=" + f.ID + ",medic_more_logs=" + f.ID
	if got := strings.Join(actionIDs(t, p.Blocks), ","); got != want {
		t.Errorf("buttons\n got %s\nwant %s", got, want)
	}
	// The whole log is attached in the message's thread (files upload v2).
	if n := len(fx.slack.Calls(slackrec.GetUploadURL)); n != 1 {
		t.Fatalf("%d upload URLs asked for", n)
	}
	up := fx.slack.Calls(slackrec.UploadFile)
	if len(up) != 1 || string(up[0].File) != strings.TrimRight(logLines(300, "app"), "\n")+"\n" {
		t.Fatalf("uploaded file is not the whole log (%d uploads)", len(up))
	}
	done := fx.slack.Calls(slackrec.CompleteFiles)
	if len(done) != 1 || done[0].Form.Get("thread_ts") != p.TS || done[0].Channel != fx.slack.ChannelID("#alerts") {
		t.Fatalf("file not shared in the message's thread: %+v", done)
	}
	// No secret anywhere in what Slack received but the Authorization.
	for _, c := range fx.slack.Calls("") {
		if strings.Contains(c.BlocksJSON(), testToken) || strings.Contains(c.Text, testToken) {
			t.Errorf("%s carries the token in its content", c.Method)
		}
	}
	if _, err := fx.found.Get(context.Background(), f.ID); err != nil {
		t.Errorf("finding not stored for its buttons: %v", err)
	}
}

func TestRedeliveryUpdatesInsteadOfPostingTwice(t *testing.T) {
	fx := newFixture(t, nil)
	f := alertFinding(event.StatusFiring)
	fx.send(f)
	fx.send(f) // the consumer redelivers after a crash before the ack
	if n := len(fx.slack.Calls(slackrec.PostMessage)); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
	if n := len(fx.slack.Calls(slackrec.Update)); n != 1 {
		t.Errorf("%d updates, want 1", n)
	}
}

func TestResolvedUpdatesOriginalAndRepliesInThread(t *testing.T) {
	fx := newFixture(t, nil)
	fx.send(alertFinding(event.StatusFiring))
	orig := fx.slack.Calls(slackrec.PostMessage)[0]
	fx.send(alertFinding(event.StatusResolved))
	assertResolved(t, fx, orig)
	// A redelivered resolve does not reply twice.
	fx.send(alertFinding(event.StatusResolved))
	if n := len(fx.slack.Calls(slackrec.PostMessage)); n != 2 {
		t.Errorf("%d posts after a redelivered resolve, want 2", n)
	}
}

func assertResolved(t *testing.T, fx *fixture, orig slackrec.Call) {
	t.Helper()
	ups := fx.slack.Calls(slackrec.Update)
	if len(ups) != 1 {
		t.Fatalf("%d updates, want 1", len(ups))
	}
	if ups[0].TS != orig.TS || ups[0].Channel != fx.slack.ChannelID("#alerts") {
		t.Errorf("updated %s/%s, want the original %s", ups[0].Channel, ups[0].TS, orig.TS)
	}
	msg, _ := fx.slack.Message(fx.slack.ChannelID("#alerts"), orig.TS)
	if !strings.Contains(string(msg.Blocks), "✅ RESOLVED") || !strings.Contains(string(msg.Blocks), "Resolved after*\\n14m") {
		t.Errorf("original message not shown resolved: %s", msg.Blocks)
	}
	if strings.Contains(string(msg.Blocks), ActionSilence1h) {
		t.Error("the resolved message still offers a silence")
	}
	posts := fx.slack.Calls(slackrec.PostMessage)
	reply := posts[len(posts)-1]
	if reply.ThreadTS != orig.TS || !strings.Contains(reply.BlocksJSON(), "Resolved after 14m") {
		t.Errorf("no \"resolved after 14m\" reply in the thread: thread %q %s", reply.ThreadTS, reply.Blocks)
	}
}

func TestRestartBetweenFiringAndResolvedStillUpdatesOriginal(t *testing.T) {
	fx := newFixture(t, nil)
	fx.send(alertFinding(event.StatusFiring))
	orig := fx.slack.Calls(slackrec.PostMessage)[0]
	fx.restart(nil) // medic restarts: nothing in memory survives
	fx.send(alertFinding(event.StatusResolved))
	assertResolved(t, fx, orig)
}

func TestRateLimitRetryAfterIsHonoured(t *testing.T) {
	fx := newFixture(t, nil)
	fx.slack.Fail(slackrec.PostMessage, 1, slackrec.Failure{Status: http.StatusTooManyRequests, RetryAfter: 7})
	fx.send(alertFinding(event.StatusFiring))
	if n := len(fx.slack.Calls(slackrec.PostMessage)); n != 2 {
		t.Fatalf("%d postMessage calls, want the rejected one and the retry", n)
	}
	if len(fx.waits) == 0 || fx.waits[0] != 7*time.Second {
		t.Fatalf("waited %v before retrying, want Slack's Retry-After of 7s", fx.waits)
	}
	if len(fx.slack.Messages()) != 1 {
		t.Errorf("%d messages in Slack, want 1", len(fx.slack.Messages()))
	}
}

func TestRetryAfterLongerThanAllowedFailsTheDelivery(t *testing.T) {
	fx := newFixture(t, func(p *Params) { p.MaxRetryAfter = 30 * time.Second })
	fx.slack.Fail(slackrec.PostMessage, 1, slackrec.Failure{Status: http.StatusTooManyRequests, RetryAfter: 120})
	err := fx.sink.Send(context.Background(), alertFinding(event.StatusFiring))
	if err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("error %v, want a rate-limit error for the consumer to retry later", err)
	}
	if len(fx.waits) != 0 {
		t.Errorf("waited %v inside the delivery", fx.waits)
	}
	fx.send(alertFinding(event.StatusFiring)) // the consumer's retry
	if len(fx.slack.Messages()) != 1 {
		t.Errorf("%d messages, want 1", len(fx.slack.Messages()))
	}
}

func TestServerErrorIsReturnedForRetryAndNothingIsDuplicated(t *testing.T) {
	fx := newFixture(t, nil)
	fx.slack.Fail(slackrec.PostMessage, 1, slackrec.Failure{Status: http.StatusInternalServerError})
	f := alertFinding(event.StatusFiring)
	err := fx.sink.Send(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("error %v, want the 500 for the consumer to retry with back-off", err)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Error("the error carries the token")
	}
	fx.send(f) // the retry
	if len(fx.slack.Messages()) != 1 {
		t.Errorf("%d messages, want 1", len(fx.slack.Messages()))
	}
}

func TestUploadFailureIsResumedWithoutRepostingTheMessage(t *testing.T) {
	fx := newFixture(t, nil)
	fx.slack.Fail(slackrec.CompleteFiles, 1, slackrec.Failure{Status: http.StatusBadGateway})
	f := withEnrichments(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("src", logLines(100, "a"), false)}})
	if err := fx.sink.Send(context.Background(), f); err == nil {
		t.Fatal("a 502 on the upload was not reported for retry")
	}
	fx.send(f)
	if n := len(fx.slack.Calls(slackrec.PostMessage)); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
	if n := len(fx.slack.Calls(slackrec.CompleteFiles)); n != 2 {
		t.Errorf("%d upload completions, want the failed one and the retry", n)
	}
}

func TestRejectedBlocksFallBackToPlainMessage(t *testing.T) {
	fx := newFixture(t, nil)
	fx.slack.Fail(slackrec.PostMessage, 1, slackrec.Failure{SlackError: "invalid_blocks"})
	fx.send(alertFinding(event.StatusFiring))
	posts := fx.slack.Calls(slackrec.PostMessage)
	if len(posts) != 2 || !strings.Contains(posts[1].BlocksJSON(), "could not be shown in Slack (invalid_blocks)") {
		t.Fatalf("no plain fallback after invalid_blocks: %d posts", len(posts))
	}
}

func TestChannelOverride(t *testing.T) {
	fx := newFixture(t, func(p *Params) { p.ChannelOverride = "#team-$labels.team" })
	fx.send(alertFinding(event.StatusFiring))
	f := alertFinding(event.StatusFiring)
	delete(f.Event.Labels, "team")
	f.Event.Fingerprint = "other"
	fx.send(f)
	posts := fx.slack.Calls(slackrec.PostMessage)
	if posts[0].Channel != "#team-payments" || posts[1].Channel != "#alerts" {
		t.Errorf("channels %q, %q; want #team-payments, then the default #alerts", posts[0].Channel, posts[1].Channel)
	}
	for in, want := range map[string]string{"labels.team": "payments", "annotations.summary": "Pod is crash looping.", "cluster_name": "prod"} {
		ov, err := parseOverride(in)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := ov.apply(alertFinding(event.StatusFiring), "prod"); got != want {
			t.Errorf("%s → %q, want %q", in, got, want)
		}
	}
	if _, err := parseOverride("$labels"); err == nil {
		t.Error("a malformed override was accepted")
	}
}

func TestGroupingPostsSummaryAndThreadsTheRest(t *testing.T) {
	now := t0
	fx := newFixture(t, func(p *Params) { p.GroupBy = []string{"namespace", "alertname"}; p.Interval = 10 * time.Minute })
	fx.sink.now = func() time.Time { return now }
	finding := func(pod string) *event.Finding {
		f := alertFinding(event.StatusFiring)
		f.ID = "id-" + pod
		f.Event.Fingerprint = "fp-" + pod
		f.Event.Labels["pod"] = pod
		f.Title = "Pod shop/" + pod + " is crash looping"
		return f
	}
	fx.send(finding("a"))
	fx.send(finding("b"))
	fx.restart(func(p *Params) { p.GroupBy = []string{"namespace", "alertname"}; p.Interval = 10 * time.Minute })
	fx.sink.now = func() time.Time { return now.Add(5 * time.Minute) }
	fx.send(finding("c")) // after a restart: same group, from KV

	posts := fx.slack.Calls(slackrec.PostMessage)
	if len(posts) != 4 {
		t.Fatalf("%d posts, want a summary and 3 findings in its thread", len(posts))
	}
	summary := posts[0]
	if summary.ThreadTS != "" || !strings.Contains(summary.BlocksJSON(), "namespace=shop, alertname=KubePodCrashLooping") {
		t.Fatalf("first post is not the group summary: %s", summary.Blocks)
	}
	for _, p := range posts[1:] {
		if p.ThreadTS != summary.TS {
			t.Errorf("finding posted outside the group's thread: %q", p.ThreadTS)
		}
	}
	msg, _ := fx.slack.Message(fx.slack.ChannelID("#alerts"), summary.TS)
	if !strings.Contains(string(msg.Blocks), "3 findings · 3 firing") {
		t.Errorf("summary not updated to 3 findings: %s", msg.Blocks)
	}

	// Past the interval a new group starts.
	fx.sink.now = func() time.Time { return now.Add(11 * time.Minute) }
	fx.send(finding("d"))
	posts = fx.slack.Calls(slackrec.PostMessage)
	if len(posts) != 6 || posts[4].ThreadTS != "" || posts[5].ThreadTS != posts[4].TS {
		t.Fatalf("no new group after the interval: %d posts", len(posts))
	}

	// A member resolving updates its message and the summary, and replies
	// in the group's thread.
	r := finding("a")
	r.ID = "id-a-resolved"
	r.Event.Status = event.StatusResolved
	r.Event.EndsAt = t0.Add(3 * time.Minute)
	fx.send(r)
	posts = fx.slack.Calls(slackrec.PostMessage)
	last := posts[len(posts)-1]
	if last.ThreadTS != summary.TS || !strings.Contains(last.BlocksJSON(), "resolved after 3m") {
		t.Errorf("resolve reply: thread %q %s", last.ThreadTS, last.Blocks)
	}
	msg, _ = fx.slack.Message(fx.slack.ChannelID("#alerts"), summary.TS)
	if !strings.Contains(string(msg.Blocks), "3 findings · 2 firing") {
		t.Errorf("summary not updated after the resolve: %s", msg.Blocks)
	}
}

func TestThreadIndexFindsTheFinding(t *testing.T) {
	fx := newFixture(t, nil)
	f := alertFinding(event.StatusFiring)
	fx.send(f)
	p := fx.slack.Calls(slackrec.PostMessage)[0]
	kv, err := fx.bus.JetStream().KeyValue(context.Background(), Bucket)
	if err != nil {
		t.Fatal(err)
	}
	te, ok, err := LookupThread(context.Background(), kv, fx.slack.ChannelID("#alerts"), p.TS)
	if err != nil || !ok || te.FindingID != f.ID || te.Sink != "oncall" {
		t.Fatalf("thread lookup: %+v %v %v", te, ok, err)
	}
	if _, ok, _ := LookupThread(context.Background(), kv, "C0", "1.2"); ok {
		t.Error("an unknown thread was found")
	}
}

func TestParamsValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		mut  func(*Params)
		want string
	}{
		"no channel":    {func(p *Params) { p.Channel = "" }, "channel: required"},
		"bad api url":   {func(p *Params) { p.APIURL = "ftp://x" }, "api_url"},
		"bad group key": {func(p *Params) { p.GroupBy = []string{"pods"} }, "group_by"},
		"bad button":    {func(p *Params) { p.Buttons = []string{"reboot"} }, "buttons"},
		"bad override":  {func(p *Params) { p.ChannelOverride = "team" }, "channel_override"},
	} {
		t.Run(name, func(t *testing.T) {
			p := *Defaults()
			p.Channel = "#a"
			tc.mut(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := New(t.Context(), "x", Params{Channel: "#a", InlineLogLines: 15}, sinks.Deps{}); err == nil || !strings.Contains(err.Error(), "slack.bot_token") {
		t.Errorf("a sink without a token started: %v", err)
	}
	_ = errors.New
}

// Starting a sink is bounded by the context it is given: medic shutting
// down while a sink opens its bucket stops the start, with the reason.
func TestNewStopsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	b := openBus(t, filepath.Join(t.TempDir(), "js"))
	t.Cleanup(b.Close)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p := *Defaults()
	p.Channel = "#alerts"
	s, err := New(ctx, "oncall", p, sinks.Deps{
		OpenKV:        kvOpener(b.JetStream()),
		SlackSettings: sinks.SlackSettings{BotToken: "xoxb-test", APIURL: "http://127.0.0.1:1/api/"},
	})
	if s != nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), Bucket) {
		t.Fatalf("New = %v, %v; want an error opening %s for context.Canceled", s, err, Bucket)
	}
}
