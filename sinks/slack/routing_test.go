package slack

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/sinks/slack/slackrec"
)

// The fallback text (notifications, screen readers) is plain: no &amp;,
// and no angle brackets Slack would read as a mention.
func TestFallbackTextIsPlain(t *testing.T) {
	fx := newFixture(t, nil)
	f := alertFinding(event.StatusFiring)
	f.Title = "Cart & checkout <!channel> down"
	fx.send(f)
	fx.slack.Fail(slackrec.PostMessage, 1, slackrec.Failure{SlackError: "invalid_blocks"})
	g := alertFinding(event.StatusFiring)
	g.Event.Fingerprint, g.Title, g.ID = "other", "Orders & payments_api <b>", "id-2"
	fx.send(g)
	posts := fx.slack.Calls(slackrec.PostMessage)
	if len(posts) != 3 {
		t.Fatalf("%d posts, want 3 (one, then a rejected one and its plain fallback)", len(posts))
	}
	for i, want := range map[int]string{
		0: "🔴 FIRING: Cart & checkout ‹!channel› down",
		2: "🔴 FIRING · critical · Orders & payments_api ‹b›",
	} {
		if got := posts[i].Form.Get("text"); !strings.HasPrefix(got, want) {
			t.Errorf("post %d: text = %q, want it to start with %q", i, got, want)
		}
	}
}

// Two alerts that share a fingerprint and start but differ in labels are
// two messages, and each one's resolve updates its own.
func TestMessageStateIsKeyedByTheAlertNotItsFingerprint(t *testing.T) {
	fx := newFixture(t, nil)
	alert := func(pod string, status event.Status) *event.Finding {
		f := alertFinding(status)
		f.ID = string(status) + "-" + pod
		f.Event.Labels["pod"] = pod
		f.Title = "Pod shop/" + pod + " is crash looping"
		return f // the fixture's fingerprint and startsAt, for both pods
	}
	fx.send(alert("cart-a", event.StatusFiring))
	fx.send(alert("cart-b", event.StatusFiring))
	posts := fx.slack.Calls(slackrec.PostMessage)
	if len(posts) != 2 || posts[0].TS == posts[1].TS {
		t.Fatalf("%d posts, want one message per alert", len(posts))
	}
	fx.send(alert("cart-b", event.StatusResolved))
	updates := fx.slack.Calls(slackrec.Update)
	if len(updates) != 1 || updates[0].TS != posts[1].TS {
		t.Fatalf("resolve of cart-b updated %v, want only cart-b's message %s", updates, posts[1].TS)
	}
	// A redelivery of cart-a's firing finding updates its own message.
	fx.send(alert("cart-a", event.StatusFiring))
	if n := len(fx.slack.Calls(slackrec.PostMessage)); n != 3 { // cart-b's resolved reply in its thread
		t.Errorf("%d posts after cart-a's redelivery, want 3 (no new message)", n)
	}
	if u := fx.slack.Calls(slackrec.Update); len(u) != 2 || u[1].TS != posts[0].TS {
		t.Errorf("cart-a's redelivery did not update its own message")
	}
}

// A message posted by a medic that keyed message state by fingerprint alone
// is still updated by its alert's resolve after the upgrade.
func TestResolveFindsAMessageKeyedTheOldWay(t *testing.T) {
	fx := newFixture(t, nil)
	firing := alertFinding(event.StatusFiring)
	fx.send(firing)
	// Move the reference to where the previous version kept it.
	raw, _, err := fx.sink.store.get(context.Background(), refKey("oncall", firing))
	if err != nil || raw == nil {
		t.Fatalf("no reference stored: %v", err)
	}
	if err := fx.sink.store.put(context.Background(), legacyRefKey("oncall", firing), raw); err != nil {
		t.Fatal(err)
	}
	if err := fx.sink.store.(kvStore).kv.Delete(context.Background(), refKey("oncall", firing)); err != nil {
		t.Fatal(err)
	}
	fx.send(alertFinding(event.StatusResolved))
	posts := fx.slack.Calls(slackrec.PostMessage)
	updates := fx.slack.Calls(slackrec.Update)
	if len(updates) != 1 || updates[0].TS != posts[0].TS {
		t.Errorf("the resolve did not update the message posted the old way: %d updates", len(updates))
	}
}

// channel_override in the forms Robusta and medic write, golden-tested on
// the requests Slack receives.
func TestChannelOverrideGolden(t *testing.T) {
	type post struct {
		Override string `json:"channel_override"`
		Channel  string `json:"channel"`
		Text     string `json:"text"`
	}
	var got []post
	for _, ov := range []string{
		"labels.team",                      // the label's value
		"$labels.team",                     // Robusta's syntax
		"#team-$labels.team",               // a pattern
		"annotations.slack_channel",        // missing: the sink's channel
		"#$cluster_name-$labels.namespace", // cluster_name is the configuration's
		"$labels.missing",                  // missing: the sink's channel
	} {
		fx := newFixture(t, func(p *Params) { p.ChannelOverride = ov })
		fx.send(alertFinding(event.StatusFiring))
		for _, c := range fx.slack.Calls(slackrec.PostMessage) {
			got = append(got, post{ov, c.Channel, c.Form.Get("text")})
		}
	}
	checkGolden(t, "channel_override.golden.json", testkit.JSON(t, got))
}

func TestRobustaGroupingBlock(t *testing.T) {
	tests := []struct {
		name, doc string
		groupBy   []string
		interval  time.Duration
		err       string
	}{
		{"summary mode", "grouping:\n  group_by: [namespace, identifier, {labels: [app, team]}]\n  interval: 1800\n  notification_mode:\n    summary: {threaded: true, by: [identifier, severity]}\n",
			[]string{"namespace", "alertname", "labels.app", "labels.team"}, 30 * time.Minute, ""},
		{"duration interval, no mode", "grouping: {group_by: [workload], interval: 10m}\n", []string{"workload"}, 10 * time.Minute, ""},
		{"default interval", "grouping: {group_by: [{attributes: [identifier]}]}\n", []string{"alertname"}, 15 * time.Minute, ""},
		{"identifier in group_by", "group_by: [identifier]\n", []string{"alertname"}, 15 * time.Minute, ""},
		{"regular mode refused", "grouping:\n  group_by: [namespace]\n  notification_mode: {regular: {}}\n", nil, 0, "notification_mode.regular: not supported"},
		{"unthreaded summary refused", "grouping:\n  group_by: [namespace]\n  notification_mode: {summary: {threaded: false}}\n", nil, 0, "threaded: false is not supported"},
		{"both forms refused", "group_by: [namespace]\ngrouping: {group_by: [cluster]}\n", nil, 0, "either grouping or group_by"},
		{"bad key", "grouping: {group_by: [pods]}\n", nil, 0, `group_by: "pods" is not one of`},
		{"bad interval", "grouping: {group_by: [namespace], interval: soon}\n", nil, 0, "interval"},
		{"empty group_by", "grouping: {interval: 60}\n", nil, 0, "grouping.group_by: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var node yaml.Node
			if err := yaml.Unmarshal([]byte("channel: '#alerts'\n"+tt.doc), &node); err != nil {
				t.Fatal(err)
			}
			p := Defaults()
			err := params.Decode(&node, p)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(p.GroupBy, ",") != strings.Join(tt.groupBy, ",") || p.Interval != tt.interval {
				t.Errorf("group_by %v interval %v, want %v %v", p.GroupBy, p.Interval, tt.groupBy, tt.interval)
			}
			if err := p.Validate(); err != nil {
				t.Errorf("validating again: %v", err)
			}
		})
	}
}
