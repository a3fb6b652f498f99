package victorops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
	"github.com/medichq/medic/sinks/internal/secretparam"
	"github.com/medichq/medic/sinks/vendortest"
)

const (
	apiKey     = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	routingKey = "payments"
)

func endpoint(base string) string { return base + vendortest.VictorOpsPath(apiKey, routingKey) }

func newSink(t *testing.T, url string, log *incidenttest.Log) *Sink {
	t.Helper()
	p := *Defaults()
	p.WebhookURL = url
	s, err := New(t.Context(), "oncall", p, incidenttest.Deps(log))
	if err != nil {
		t.Fatal(err)
	}
	s.poster.Sleep = func(context.Context, time.Duration) error { return nil }
	return s
}

func TestAlertGolden(t *testing.T) {
	t.Parallel()
	s := newSink(t, endpoint("https://alert.victorops.com"), nil)
	for name, f := range incidenttest.Cases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testkit.Golden(t, filepath.Join("testdata", name+".golden.json"), testkit.JSON(t, s.Alert(f)))
		})
	}
}

func TestMessageType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sev            event.Severity
		status         event.Status
		alwaysCritical bool
		want           string
	}{
		{event.SeverityCritical, event.StatusFiring, false, Critical},
		{event.SeverityHigh, event.StatusFiring, false, Critical},
		{event.SeverityWarning, event.StatusFiring, false, Warning},
		{event.SeverityInfo, event.StatusFiring, false, Info},
		{event.SeverityNone, event.StatusFiring, false, Info},
		{event.SeverityWarning, event.StatusFiring, true, Critical},
		{event.SeverityInfo, event.StatusFiring, true, Critical},
		{event.SeverityCritical, event.StatusResolved, false, Recovery},
		{event.SeverityWarning, event.StatusResolved, true, Recovery},
	} {
		f := incidenttest.Alert(tc.status)
		f.Severity = tc.sev
		if got := MessageType(f, tc.alwaysCritical); got != tc.want {
			t.Errorf("MessageType(%s %s, always_critical %v) = %s, want %s", tc.status, tc.sev, tc.alwaysCritical, got, tc.want)
		}
	}
}

// The firing alert, its redelivery (medic crashed before recording the
// delivery) and its resolve are one Splunk On-Call incident under one
// entity_id, opened and resolved; the same alert firing again later is a
// new lifetime and a new incident.
func TestFiringThenResolvedIsOneIncident(t *testing.T) {
	t.Parallel()
	vo := vendortest.VictorOps(t, apiKey, routingKey)
	s := newSink(t, endpoint(vo.URL), nil)
	ctx := context.Background()
	for _, f := range []*event.Finding{
		incidenttest.Alert(event.StatusFiring), incidenttest.Alert(event.StatusFiring), incidenttest.Alert(event.StatusResolved),
	} {
		if err := s.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	again := incidenttest.Alert(event.StatusFiring)
	again.Event.StartsAt = again.Event.StartsAt.Add(time.Hour)
	if err := s.Send(ctx, again); err != nil {
		t.Fatal(err)
	}
	if r := vo.Refused(); len(r) > 0 {
		t.Fatalf("Splunk On-Call refused messages: %v", r)
	}
	in := vendortest.VictorOpsIncidents(vo)
	if len(in) != 2 || !in[0].Resolved || in[0].Criticals != 2 || in[1].Resolved || in[1].EntityID == in[0].EntityID {
		t.Fatalf("incidents %+v; want one resolved (its redelivery joined it) and a second open one", in)
	}
	var first, recovery struct {
		MessageType string `json:"message_type"`
		EntityID    string `json:"entity_id"`
		Page        string `json:"vo_annotate.u.medic finding"`
	}
	acc := vo.Accepted()
	if err := errors.Join(json.Unmarshal(in[0].First, &first), json.Unmarshal(acc[2].Body, &recovery)); err != nil {
		t.Fatal(err)
	}
	if recovery.MessageType != Recovery || recovery.EntityID != first.EntityID {
		t.Errorf("resolve sent %s under %q, want RECOVERY under the firing alert's %q", recovery.MessageType, recovery.EntityID, first.EntityID)
	}
	if first.Page != incidenttest.PageURL(incidenttest.Alert(event.StatusFiring).ID) {
		t.Errorf("finding page annotation %q", first.Page)
	}
}

// Many alerts fire and resolve through a sink started from its
// configuration (the registry's path, the URL from a file as the Helm
// chart mounts it) while Splunk On-Call rate-limits and fails now and
// then; each failed delivery is retried as medic's consumer does. Every
// alert is one incident, opened once and resolved: nothing lost, nothing
// paged twice.
func TestDeliveryUnderFaultsLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	const alerts = 40
	vo := vendortest.VictorOps(t, apiKey, routingKey)
	secret := filepath.Join(t.TempDir(), "webhook_url")
	if err := os.WriteFile(secret, []byte(endpoint(vo.URL)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var specs []sinks.Spec
	conf := fmt.Sprintf("- {name: oncall, type: victorops, webhook_url_file: %q, max_retry_after: 2s}", secret)
	if err := yaml.Unmarshal([]byte(conf), &specs); err != nil {
		t.Fatal(err)
	}
	set, err := sinks.NewRegistry(Register).Start(t.Context(), specs, sinks.Deps{Cluster: "prod-eu"})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	c, _ := set.Get("oncall")
	s := c.Sink.(*Sink)
	s.poster.Sleep = func(context.Context, time.Duration) error { return nil }

	finding := func(i int, status event.Status) *event.Finding {
		f := incidenttest.Alert(status)
		f.ID = fmt.Sprintf("%s-%03d", f.ID, i)
		f.Event.Fingerprint = fmt.Sprintf("fp%05d", i)
		f.Event.Subject.Name = fmt.Sprintf("cart-%05d", i)
		return f
	}
	retries := 0
	deliver := func(f *event.Finding) {
		t.Helper()
		for attempt := 0; ; attempt++ {
			err := s.Send(context.Background(), f)
			if err == nil {
				return
			}
			if attempt == 5 {
				t.Fatalf("finding %s not delivered after %d tries: %v", f.ID, attempt+1, err)
			}
			retries++
		}
	}
	rateLimited := vendortest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "1", Body: `{"result":"failure","message":"Too Many Requests"}`}
	unavailable := vendortest.Failure{Status: http.StatusServiceUnavailable, Body: `{"result":"failure","message":"Service Unavailable"}`}
	injected := 0
	for _, status := range []event.Status{event.StatusFiring, event.StatusResolved} {
		for i := range alerts {
			if i%7 == 3 {
				vo.FailNext(rateLimited, unavailable)
				injected++
			}
			deliver(finding(i, status))
		}
	}

	// Count what each alert became.
	var accepted, lost, dups int
	perPod := vendortest.VictorOpsResolvedOnce(vo, "pod")
	for pod, n := range perPod {
		if strings.HasPrefix(pod, "open or paged again") {
			dups += n
		}
	}
	for i := range alerts {
		switch n := perPod[fmt.Sprintf("cart-%05d", i)]; {
		case n == 0:
			lost++
		default:
			accepted++
			dups += n - 1
		}
	}
	t.Logf("victorops: accepted %d, lost %d, duplicates %d (%d refusals, %d redeliveries)", accepted, lost, dups, vo.Failed(), retries)
	if accepted != alerts || lost != 0 || dups != 0 {
		t.Errorf("accepted %d, lost %d, duplicates %d; want %d, 0, 0", accepted, lost, dups, alerts)
	}
	// The 429 is waited out within a delivery, the 503 fails it once.
	if vo.Failed() != 2*injected || retries != injected {
		t.Errorf("%d refusals and %d redeliveries, want %d and %d", vo.Failed(), retries, 2*injected, injected)
	}
	if r := vo.Refused(); len(r) > 0 {
		t.Errorf("Splunk On-Call refused messages as invalid: %v", r)
	}
}

// A 5xx is returned for the consumer to retry; a wrong key is refused;
// neither the API key nor the URL shows in errors or logs.
func TestFailuresDoNotShowTheKey(t *testing.T) {
	t.Parallel()
	vo := vendortest.VictorOps(t, apiKey, routingKey)
	log := &incidenttest.Log{}
	s := newSink(t, endpoint(vo.URL), log)
	vo.FailNext(vendortest.Failure{Status: http.StatusInternalServerError, Body: `{"result":"failure","message":"Internal Server Error"}`})
	f := incidenttest.Alert(event.StatusFiring)
	err1 := s.Send(context.Background(), f)
	if err1 == nil || !strings.Contains(err1.Error(), "answered 500") {
		t.Fatalf("error %v, want the 500", err1)
	}
	if err := s.Send(context.Background(), f); err != nil {
		t.Fatalf("retry: %v", err)
	}
	bad := newSink(t, vo.URL+vendortest.VictorOpsPath("WRONG-s3cret", routingKey), log)
	err2 := bad.Send(context.Background(), f)
	if err2 == nil || !strings.Contains(err2.Error(), "answered 404") {
		t.Errorf("wrong key: %v", err2)
	}
	vo.Close()
	err3 := s.Send(context.Background(), f)
	if err3 == nil {
		t.Error("a closed endpoint accepted the alert")
	}
	if n := len(vendortest.VictorOpsIncidents(vo)); n != 1 {
		t.Errorf("%d incidents, want 1", n)
	}
	log.NoSecret(t, []error{err1, err2, err3}, apiKey, "WRONG-s3cret", vo.URL)
}

func TestParams(t *testing.T) {
	t.Parallel()
	valid := func() *Params {
		p := Defaults()
		p.WebhookURL = endpoint("https://alert.victorops.com")
		return p
	}
	testkit.CheckParams(t, valid, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "no url", Mut: func(p *Params) { p.WebhookURL = "" }, Want: "webhook_url: required"},
		{Name: "two urls", Mut: func(p *Params) { p.WebhookURLEnv = "VO_URL" }, Want: "set only one"},
		{Name: "not a url", Mut: func(p *Params) { p.WebhookURL = "alert.victorops.com/x" }, Want: "webhook_url: not an http(s) URL"},
		{Name: "no routing key", Mut: func(p *Params) {
			p.WebhookURL = "https://alert.victorops.com/integrations/generic/20131114/alert/" + apiKey
		}, Want: "webhook_url: not a REST endpoint URL"},
		{Name: "placeholder", Mut: func(p *Params) {
			p.WebhookURL = "https://alert.victorops.com/integrations/generic/20131114/alert/" + apiKey + "/$routing_key"
		}, Want: "webhook_url: ends in $routing_key"},
		{Name: "tool", Mut: func(p *Params) { p.MonitoringTool = " " }, Want: "monitoring_tool"},
		{Name: "timeout", Mut: func(p *Params) { p.Timeout = 0 }, Want: "timeout"},
		{Name: "retry after", Mut: func(p *Params) { p.MaxRetryAfter = -time.Second }, Want: "max_retry_after"},
	})
	incidenttest.CheckSpecs(t, sinks.NewRegistry(Register), map[string]string{
		"{name: vo, type: victorops, webhook_url_env: VO_URL, always_critical: true, timeout: 3s}": "",
		"{name: vo, type: victorops, webhook_url_env: VO_URL, routing_key: ops}":                   `unknown parameter "routing_key"`,
	})
}

// A URL from the environment is checked when the sink starts, and the
// error does not show it.
func TestURLFromEnv(t *testing.T) {
	p := Defaults()
	p.WebhookURLEnv = "MEDIC_TEST_VO_URL"
	for value, want := range map[string]string{
		endpoint("https://alert.victorops.com") + "\n":                              "",
		"https://alert.victorops.com/integrations/generic/20131114/alert/" + apiKey: "not a REST endpoint URL",
		"": secretparam.ErrEmpty.Error(),
	} {
		t.Setenv("MEDIC_TEST_VO_URL", value)
		s, err := New(t.Context(), "vo", *p, sinks.Deps{})
		switch {
		case want == "" && (err != nil || s.endpoint != strings.TrimSpace(value)):
			t.Errorf("New: %v", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), apiKey)):
			t.Errorf("New with %q: %v, want %q without the key", value, err, want)
		}
	}
}
