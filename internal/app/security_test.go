package app

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/email/emailtest"
	"github.com/medichq/medic/sinks/jira/jiratest"
	"github.com/medichq/medic/sinks/opsgenie/opsgenietest"
	"github.com/medichq/medic/sinks/pagerduty/pagerdutytest"
	"github.com/medichq/medic/sinks/slack/slackrec"
)

// bodyRecorder keeps every request body it is sent.
type bodyRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newBodyRecorder(t *testing.T) *bodyRecorder {
	r := &bodyRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *bodyRecorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.bodies, "\n")
}

const redactPlaybook = `- name: db-evidence
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping}
  actions:
    - create_finding: {title: "{{ .Labels.pod }} is crash looping"}
    - resource_yaml: {}
    - logs_enricher: {tail_lines: 2000}
`

// TestSecretsReachNoSink: a pod whose env holds a plain secret (and whose
// last-applied annotation repeats it), an alert whose description holds a
// database password and container logs that print a bearer token and the
// password become one finding; Slack, Teams, the webhook, the findings file
// and the finding page show none of them, and say how many values were
// redacted; neither do PagerDuty, Opsgenie, the mail, Jira and medic's own
// log. The container logs are longer than a Slack message holds, so the
// Slack sink also attaches them whole as a file in the thread: that upload
// is checked too, since it is the one copy of the early lines.
func TestSecretsReachNoSink(t *testing.T) {
	const (
		envSecret   = "pod-env-s3cr3t-value"
		dbSecret    = "S3cr3tDbPw"
		tokenSecret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYXJ0In0.c2VjcmV0LXNpZ25hdHVyZQ"
	)
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9", Namespace: "shop", UID: "uid-cart",
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"spec":{"containers":[{"env":[{"name":"DB_PASSWORD","value":"` + envSecret + `"}]}]}}`}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/cart:1", Env: []corev1.EnvVar{
			{Name: "DB_PASSWORD", Value: envSecret}, {Name: "LOG_LEVEL", Value: "debug"},
		}}}},
	}
	kc := fake.NewClientset(pod.DeepCopy())
	dyn := dynamicfake.NewSimpleDynamicClient(scheme.Scheme, pod.DeepCopy())
	// The secrets are in the first lines, which the message's tail leaves
	// out: only the attached file holds them.
	var logs strings.Builder
	logs.WriteString("2026-11-22T09:59:00Z connecting to postgres://app:" + dbSecret + "@db:5432/cart\n")
	logs.WriteString("2026-11-22T09:59:00Z calling payments with Authorization: Bearer " + tokenSecret + "\n")
	for i := range 400 {
		fmt.Fprintf(&logs, "2026-11-22T09:59:%02dZ retrying the database connection, attempt %d of 400\n", i%60, i+1)
	}
	kc.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		return true, &runtime.Unknown{Raw: []byte(logs.String())}, nil
	})

	rec := slackrec.New(t)
	cfg := chatConfig(t, rec)
	pb := cfg.Playbooks.Dirs[0]
	if err := os.Remove(filepath.Join(pb, "ai.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pb, "db.yaml"), []byte(redactPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	teams, hook := newBodyRecorder(t), newBodyRecorder(t)
	pd, og := pagerdutytest.New(t, "pd-key"), opsgenietest.New(t, "og-key")
	smtp := emailtest.Start(t, emailtest.Options{Mode: emailtest.ImplicitTLS})
	jira := jiratest.New(t, jiratest.Options{Token: "jira-pat", Project: "OPS"})
	var extra []config.SinkSpec
	if err := yaml.Unmarshal(fmt.Appendf(nil, `
- {name: teams, type: teams, webhook_url: %q}
- {name: hook, type: webhook, url: %q}
- {name: pd, type: pagerduty, routing_key: pd-key, api_url: %q}
- {name: og, type: opsgenie, api_key: og-key, api_url: %q}
- {name: mail, type: email, host: %q, port: %d, implicit_tls: true, ca_file: %q, server_name: localhost, from: medic@example.com, to: [oncall@example.com]}
- {name: jira, type: jira, url: %q, token: jira-pat, project_key: OPS}
`, teams.srv.URL, hook.srv.URL, pd.URL, og.URL, smtp.Host, smtp.Port, smtp.CAFile, jira.URL), &extra); err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = append(cfg.Sinks, extra...)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// medic's own log goes to the cluster's log store, read by more people
	// than the on-call channel: it is checked too, at debug level.
	var medicLog testkit.SyncBuffer
	a := runAppLogger(t, cfg, slog.New(slog.NewTextHandler(io.MultiWriter(tlog{t}, &medicLog), &slog.HandlerOptions{Level: slog.LevelDebug})), WithKubeClients(kc, dyn))

	body := `{"version":"4","status":"firing","receiver":"medic","groupKey":"{}:{}","externalURL":"http://am",
"alerts":[{"status":"firing","labels":{"alertname":"KubePodCrashLooping","namespace":"shop","pod":"cart-7d9","severity":"warning"},
"annotations":{"description":"cart cannot reach postgres://app:` + dbSecret + `@db:5432/cart"},
"startsAt":"2026-11-22T10:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}`
	if code, _ := post(t, "http://"+a.Addr()+"/api/alerts", []byte(body), http.Header{"Content-Type": {"application/json"}}); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}

	f := waitFinding(t, cfg)
	rec.Wait(t, 30*time.Second, "the finding in Slack, its logs attached in the thread", func(s *slackrec.Server) bool {
		return len(s.Calls(slackrec.PostMessage)) > 0 && len(s.Calls(slackrec.CompleteFiles)) > 0
	})
	testkit.Eventually(t, 30*time.Second, "the Teams card, the webhook, PagerDuty, Opsgenie, the mail and Jira", func() bool {
		return teams.all() != "" && hook.all() != "" && len(pd.Events()) > 0 && len(og.Alerts()) > 0 && len(smtp.Messages()) > 0 && len(jira.Issues()) > 0
	})
	var pdOut, ogOut, mailOut, jiraOut strings.Builder
	for _, e := range pd.Events() {
		pdOut.Write(e)
	}
	for _, al := range og.Alerts() {
		ogOut.Write(al.Create)
	}
	for _, m := range smtp.Messages() {
		_, parts := emailtest.Parts(t, m.Data) // decoded: quoted-printable could split a secret
		mailOut.WriteString(parts["text/plain"] + parts["text/html"])
	}
	for _, is := range jira.Issues() {
		jiraOut.WriteString(is.Summary + is.Description)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.DataDir, "findings.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var slackMessages, uploaded strings.Builder
	for _, m := range []string{slackrec.PostMessage, slackrec.Update, slackrec.CompleteFiles} {
		for _, c := range rec.Calls(m) {
			slackMessages.WriteString(c.Text + c.BlocksJSON() + c.Form.Encode())
		}
	}
	for _, c := range rec.Calls(slackrec.UploadFile) {
		uploaded.Write(c.File)
	}
	_, page := get(t, strings.Replace(a.chat.links.URL(f.ID), cfg.PublicURL, "http://"+a.Addr(), 1))
	outputs := map[string]string{
		"slack": slackMessages.String(), "slack upload": uploaded.String(), "teams": teams.all(), "webhook": hook.all(), "file": string(raw), "finding page": page,
		"pagerduty": pdOut.String(), "opsgenie": ogOut.String(), "email": mailOut.String(), "jira": jiraOut.String(),
		"medic's log": medicLog.String(),
	}
	if !strings.Contains(outputs["file"], "DB_PASSWORD") {
		t.Fatalf("the pod's YAML is not in the finding; the test proves nothing:\n%s", raw)
	}
	if up := uploaded.String(); !strings.Contains(up, "connecting to postgres://") || !strings.Contains(up, "attempt 400 of 400") {
		t.Fatalf("the whole log is not attached in Slack; the upload check proves nothing:\n%.500s", up)
	}
	if strings.Contains(slackMessages.String(), "connecting to postgres://") {
		t.Fatal("the log's first line is in a Slack message too: the upload is not the only copy of it, as this test means it to be")
	}
	for name, out := range outputs {
		for _, secret := range []string{envSecret, dbSecret, tokenSecret} {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows %q", name, secret)
			}
		}
	}
	for _, name := range []string{"slack", "teams", "file", "finding page", "pagerduty", "opsgenie", "email", "jira"} {
		if !strings.Contains(outputs[name], "values redacted") {
			t.Errorf("%s does not say values were redacted", name)
		}
	}
	if !json.Valid([]byte(hook.all())) || !strings.Contains(hook.all(), "values redacted") {
		t.Errorf("the webhook payload is not one JSON document saying values were redacted")
	}
}

// TestOpenIntakeIsWarnedAbout: listening beyond loopback without webhook
// credentials is logged at start-up; on loopback, or with a token, it is not.
func TestOpenIntakeIsWarnedAbout(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	for _, tt := range []struct {
		name, addr, token string
		warn              bool
	}{
		{"all interfaces, no token", "0.0.0.0:0", "", true},
		{"loopback", "127.0.0.1:0", "", false},
		{"all interfaces with a token", "0.0.0.0:0", "intake-token", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kubeTestConfig(t)
			cfg.HTTP.Addr, cfg.Webhook.BearerToken = tt.addr, tt.token
			log := &testkit.SyncBuffer{}
			runApp(t, cfg, log)
			if got := strings.Contains(log.String(), "accept anyone who reaches this address"); got != tt.warn {
				t.Errorf("warned %v, want %v:\n%s", got, tt.warn, log.String())
			}
		})
	}
}

// TestMaxConnections: with http.max_connections 1, a second client waits
// while an idle connection holds the only slot, and is served once it
// closes.
func TestMaxConnections(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cfg := kubeTestConfig(t)
	cfg.HTTP.MaxConnections = 1
	a := runApp(t, cfg, io.Discard)
	hold, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := client.Get("http://" + a.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a second connection was served while the only slot was held")
	}
	hold.Close()
	client.Timeout = 5 * time.Second
	resp, err := client.Get("http://" + a.Addr() + "/healthz")
	if err != nil {
		t.Fatalf("not served after the slot was freed: %v", err)
	}
	resp.Body.Close()
}
