package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/email/emailtest"
	"github.com/medichq/medic/sinks/jira/jiratest"
	"github.com/medichq/medic/sinks/opsgenie/opsgenietest"
	"github.com/medichq/medic/sinks/pagerduty/pagerdutytest"
	"github.com/medichq/medic/sinks/vendortest"
)

// TestIncidentSinksEndToEnd: medic with a PagerDuty, an Opsgenie, a Splunk
// On-Call, an email and a Jira sink, each pointed at its vendor's test double (the SMTP
// server is a real one) with its secret read from a file as the Helm chart
// mounts it. Alerts fire while every receiver refuses its first two
// requests (retried by the bus until delivered); medic restarts;
// Alertmanager re-sends the firing alerts; then they resolve. Each alert is
// one incident (one Opsgenie alert, one Jira issue), opened and closed, and
// two mails: nothing lost, nothing twice.
func TestIncidentSinksEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts medic twice with four sinks")
	}
	const alerts = 20
	const pdKey, ogKey, mailPassword, jiraKey = "e2e-pd-routing-key", "e2e-og-api-key", "e2e-smtp-password", "e2e-jira-api-token"
	const voKey = "e2e-vo-api-key"
	pd := pagerdutytest.New(t, pdKey)
	og := opsgenietest.New(t, ogKey)
	mail := emailtest.Start(t, emailtest.Options{Mode: emailtest.STARTTLS, Mechanisms: []string{sasl.Plain}, Username: "medic", Password: mailPassword})
	jira := jiratest.New(t, jiratest.Options{Username: "medic@example.com", APIKey: jiraKey, Project: "OPS"})
	pd.Fail(http.StatusInternalServerError, http.StatusBadGateway)
	og.Fail(http.StatusServiceUnavailable, http.StatusInternalServerError)
	mail.Fail(451, 451)
	jira.Fail(http.StatusInternalServerError, http.StatusServiceUnavailable)
	vo := vendortest.VictorOps(t, voKey, "payments")
	vo.FailNext(vendortest.Failure{Status: http.StatusInternalServerError}, vendortest.Failure{Status: http.StatusServiceUnavailable})

	dir := t.TempDir()
	secret := func(name, value string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfg := testConfig(t, dir)
	cfg.PublicURL = "https://medic.example"
	var specs []config.SinkSpec
	conf := fmt.Sprintf(`
- {name: pd, type: pagerduty, routing_key_file: %q, api_url: %q}
- {name: og, type: opsgenie, api_key_file: %q, api_url: %q, teams: [payments]}
- {name: mail, type: email, host: %q, port: %d, ca_file: %q, server_name: localhost, username: medic, password_file: %q,
   from: "medic <medic@example.com>", to: [oncall@example.com]}
- {name: jira, type: jira, url: %q, username: medic@example.com, api_key_file: %q, project_key: OPS, resolve_transition: Done}
- {name: vo, type: victorops, webhook_url_file: %q}
`, secret("pd", pdKey), pd.URL, secret("og", ogKey), og.URL, mail.Host, mail.Port, mail.CAFile, secret("mail", mailPassword), jira.URL, secret("jira", jiraKey),
		secret("vo", vo.URL+vendortest.VictorOpsPath(voKey, "payments")))
	if err := yaml.Unmarshal([]byte(conf), &specs); err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = append(cfg.Sinks, specs...)

	firing := burst(alerts, 0)
	resolved := bytes.ReplaceAll(firing, []byte(`"firing"`), []byte(`"resolved"`))
	post := func(m *medic, body []byte) {
		t.Helper()
		if status, answer := post(t, m.url+"/api/alerts", body, nil); status != http.StatusOK {
			t.Fatalf("alerts: %d %v", status, answer)
		}
	}
	settled := func(m *medic) {
		t.Helper()
		for _, s := range []string{"pd", "og", "mail", "jira", "vo"} {
			dlqSinkSettled(t, m, s)
		}
	}

	a, stop := runMedic(t, cfg)
	m := &medic{app: a, url: "http://" + a.Addr()}
	post(m, firing)
	testkit.Eventually(t, time.Minute, "every alert delivered to every sink", func() bool {
		return len(pd.Incidents()) >= alerts && len(og.Alerts()) >= alerts && len(mail.Messages()) >= alerts && len(jira.Issues()) >= alerts &&
			len(vendortest.VictorOpsIncidents(vo)) >= alerts
	})
	settled(m)
	stop()

	a, _ = runMedic(t, cfg)
	m = &medic{app: a, url: "http://" + a.Addr()}
	post(m, firing) // Alertmanager's repeat: the same events, deduplicated
	post(m, resolved)
	testkit.Eventually(t, time.Minute, "every alert resolved in every sink", func() bool {
		n := 0
		for _, in := range pd.Incidents() {
			n += btoi(in.Resolved)
		}
		for _, al := range og.Alerts() {
			n += btoi(al.Closed)
		}
		for _, is := range jira.Issues() {
			n += btoi(is.Status == "Done")
		}
		for _, in := range vendortest.VictorOpsIncidents(vo) {
			n += btoi(in.Resolved)
		}
		return n >= 4*alerts && len(mail.Messages()) >= 2*alerts
	})
	settled(m)

	// Count, per sink, what each alert became.
	type tally struct{ accepted, lost, dups int }
	count := func(perAlert map[string]int, want int) tally {
		var c tally
		for i := range alerts {
			n := perAlert[fmt.Sprintf("cart-%05d", i)]
			c.accepted += min(n, want)
			c.lost += max(want-n, 0)
			c.dups += max(n-want, 0)
		}
		for pod, n := range perAlert {
			if !strings.HasPrefix(pod, "cart-") {
				c.dups += n
			}
		}
		return c
	}
	got := map[string]tally{}
	perAlert := map[string]int{}
	for _, in := range pd.Incidents() {
		var ev struct {
			Payload struct {
				Component string `json:"component"`
			} `json:"payload"`
		}
		_ = json.Unmarshal(in.First, &ev)
		if in.Resolved && in.Triggers == 1 {
			perAlert[ev.Payload.Component]++
		} else {
			perAlert["unresolved or re-triggered "+ev.Payload.Component]++
		}
	}
	got["pagerduty"] = count(perAlert, 1)
	perAlert = map[string]int{}
	for _, al := range og.Alerts() {
		var create struct {
			Details map[string]string `json:"details"`
		}
		_ = json.Unmarshal(al.Create, &create)
		if al.Closed && al.Count == 1 {
			perAlert[create.Details["pod"]]++
		} else {
			perAlert["open or re-created "+create.Details["pod"]]++
		}
	}
	got["opsgenie"] = count(perAlert, 1)
	perAlert = map[string]int{}
	ids := map[string]bool{}
	for _, msg := range mail.Messages() {
		h, parts := emailtest.Parts(t, msg.Data)
		if ids[h.Get("Message-ID")] || !msg.TLS || msg.AuthUser != "medic" {
			perAlert["duplicate or insecure"]++
			continue
		}
		ids[h.Get("Message-ID")] = true
		perAlert[podOf(parts["text/plain"])]++
	}
	got["email"] = count(perAlert, 2)
	perAlert = map[string]int{}
	for _, is := range jira.Issues() {
		pod := podOf(is.Description)
		if is.Status == "Done" && len(is.Comments) == 1 {
			perAlert[pod]++
		} else {
			perAlert[fmt.Sprintf("%s in %s with %d comments", pod, is.Status, len(is.Comments))]++
		}
	}
	got["jira"] = count(perAlert, 1)
	perAlert = vendortest.VictorOpsResolvedOnce(vo, "pod")
	got["victorops"] = count(perAlert, 1)

	for _, name := range []string{"pagerduty", "opsgenie", "email", "jira", "victorops"} {
		c := got[name]
		t.Logf("%s: accepted %d, lost %d, duplicates %d", name, c.accepted, c.lost, c.dups)
		if c.lost != 0 || c.dups != 0 {
			t.Errorf("%s: lost %d, duplicates %d", name, c.lost, c.dups)
		}
	}
	if pd.Refused() != 2 || og.Refused() != 2 || mail.Refused() != 2 || jira.Refused() != 2 || vo.Failed() != 2 {
		t.Errorf("refusals: pagerduty %d, opsgenie %d, email %d, jira %d, victorops %d; want 2 each", pd.Refused(), og.Refused(), mail.Refused(), jira.Refused(), vo.Failed())
	}
	if inv := append(append(append(pd.Invalid(), og.Invalid()...), jira.Invalid()...), vo.Refused()...); len(inv) > 0 {
		t.Errorf("receivers refused requests as invalid: %v", inv)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// podOf finds the test alerts' pod name (cart-NNNNN) in a text.
func podOf(text string) string {
	i := strings.Index(text, "cart-")
	if i < 0 || i+10 > len(text) {
		return "no pod in " + text
	}
	return text[i : i+10]
}
