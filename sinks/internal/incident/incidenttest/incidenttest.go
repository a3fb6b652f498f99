// Package incidenttest holds the findings the incident sinks' tests render
// (PagerDuty, Opsgenie, email, Jira), so their golden files show the same
// alert in each vendor's shape.
package incidenttest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/vendortest"
)

// T0 is when the test alert started.
var T0 = vendortest.T0

// PageURL is the finding page link the tests' FindingURL returns.
func PageURL(id string) string {
	return "https://medic.example/findings/" + id + "?exp=1741944413&sig=c2ln"
}

// Alert returns a crash-looping pod alert from Alertmanager with evidence
// (a table, a log, markdown), firing or resolved. Both share the alert's
// fingerprint and start, as Alertmanager sends them.
func Alert(status event.Status) *event.Finding {
	// vendortest's alert, with plainer text: the incident tools show it
	// as given, so there is no chat markup to provoke.
	ev := vendortest.AlertEvent(status)
	ev.Title = "Pod shop/cart-7d9 is crash looping"
	ev.Description = "Pod shop/cart-7d9 (app) is in waiting state <CrashLoopBackOff> & restarting."
	ev.Labels["team"] = "payments"
	delete(ev.Labels, "job")
	f := event.NewFinding(ev, T0)
	f.Playbooks = []string{"builtin-crashloop"}
	if status == event.StatusFiring {
		f.Add(event.Enrichment{Title: "Pod", Blocks: []event.Block{
			event.KeyValueBlock([][2]string{{"phase", "Running"}, {"restarts", "5"}, {"last termination", "Error (exit 2)"}}),
		}})
		f.Add(event.Enrichment{Title: "Logs", Blocks: []event.Block{
			event.LogTextBlock("shop/cart-7d9 app (previous)", "starting cart v1.42.0\npanic: missing configuration CART_DB_URL\n", false),
		}})
		f.Add(event.Enrichment{Title: "Why", Blocks: []event.Block{event.MarkdownBlock("Exit **code 2**: `CART_DB_URL` is unset since the last rollout.")}})
	}
	return f
}

// KubeEvent returns a finding from a Kubernetes warning event: no
// fingerprint, no resolve, severity warning.
func KubeEvent() *event.Finding {
	ev := event.Event{
		ID: "0c1d2e3f405162738495a6b7c8d9eaf0", Kind: event.KindImagePullBackoff, Source: "kubernetes",
		Status: event.StatusFiring, Severity: event.SeverityWarning, Title: "Back-off pulling image registry.example/cart:1.43.0",
		Subject:  event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-8f2"},
		StartsAt: T0,
	}
	return event.NewFinding(ev, T0)
}

// Cases are the findings every incident sink's golden files render: the
// alert firing and resolved, and a Kubernetes warning event.
func Cases() map[string]*event.Finding {
	return map[string]*event.Finding{
		"firing":     Alert(event.StatusFiring),
		"resolved":   Alert(event.StatusResolved),
		"kube_event": KubeEvent(),
	}
}

// Deps are what the tests start an incident sink with: the cluster
// prod-eu, finding links from PageURL, and log's logger (none when log is
// nil).
func Deps(log *Log) sinks.Deps {
	deps := sinks.Deps{Cluster: "prod-eu", PageURL: PageURL}
	if log != nil {
		deps.Log = log.Logger()
	}
	return deps
}

// Log is a logger at debug level whose output a test can search, to check
// that no secret reaches a log line.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Logger returns a debug-level text logger writing to l.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// NoSecret fails t when the log or any of errs contains one of secrets.
func (l *Log) NoSecret(t testing.TB, errs []error, secrets ...string) {
	t.Helper()
	l.mu.Lock()
	text := l.buf.String()
	l.mu.Unlock()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("the log shows the secret %q", s)
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("error %q shows the secret", err)
			}
		}
	}
}

// Faults are a test double's refusals on demand and its record of the
// requests it refused as invalid. Embed it in a double; it has its own lock.
type Faults struct {
	mu       sync.Mutex
	failures []int
	refused  int
	invalid  []string
}

// Fail makes the next requests answer these statuses (HTTP, or SMTP
// codes) before the double answers normally again.
func (f *Faults) Fail(statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, statuses...)
}

// Take returns the next queued failure, counting it as refused.
func (f *Faults) Take() (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failures) == 0 {
		return 0, false
	}
	st := f.failures[0]
	f.failures = f.failures[1:]
	f.refused++
	return st, true
}

// FailHTTP answers the next queued failure, if any, with body(status) as
// JSON (a 429 with Retry-After: 1), and reports whether it did.
func (f *Faults) FailHTTP(w http.ResponseWriter, body func(status int) any) bool {
	st, ok := f.Take()
	if !ok {
		return false
	}
	if st == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st)
	_ = json.NewEncoder(w).Encode(body(st))
	return true
}

// Reject records why a request was refused as invalid.
func (f *Faults) Reject(reasons ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invalid = append(f.invalid, reasons...)
}

// Refused is how many requests were answered with a queued failure.
func (f *Faults) Refused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// Invalid returns why requests were refused as invalid.
func (f *Faults) Invalid() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.invalid)
}

// CheckSpecs decodes each sink configuration (one flow-style YAML entry of
// sinks:) the way medic's configuration does, validates it against the
// sink types of r, and fails t when it validates and its want is not "", or
// fails without saying want.
func CheckSpecs(t testing.TB, r *sinks.Registry, specs map[string]string) {
	t.Helper()
	for conf, want := range specs {
		var spec sinks.Spec
		if err := yaml.Unmarshal([]byte(conf), &spec); err != nil {
			t.Fatalf("%s: %v", conf, err)
		}
		if err := spec.Validate(r); want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", conf, err, want)
		}
	}
}
