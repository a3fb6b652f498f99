package realam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/client/silence"
	"github.com/prometheus/alertmanager/api/v2/models"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/toolbin"
)

// ReceiverName is the name of the single receiver Start configures.
const ReceiverName = "medic"

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	startTries   = 5
)

// Option changes the configuration Start writes or the way it runs
// Alertmanager.
type Option func(*settings)

type settings struct {
	groupBy        []string
	groupWait      time.Duration
	groupInterval  time.Duration
	repeatInterval time.Duration
	maxAlerts      uint64
	bearerToken    string
	basicUser      string
	basicPass      string
	logLevel       string
	rawConfig      string
	args           []string
}

// WithBearerToken makes Alertmanager send "Authorization: Bearer <token>" to
// the webhook (http_config.authorization).
func WithBearerToken(token string) Option {
	return func(s *settings) { s.bearerToken = token }
}

// WithBasicAuth makes Alertmanager send HTTP basic auth to the webhook
// (http_config.basic_auth).
func WithBasicAuth(username, password string) Option {
	return func(s *settings) { s.basicUser, s.basicPass = username, password }
}

// WithGroupBy replaces the route's group_by (default alertname, namespace, pod).
func WithGroupBy(labels ...string) Option {
	return func(s *settings) { s.groupBy = append([]string(nil), labels...) }
}

// WithGroupWait sets the route's group_wait (default 1s).
func WithGroupWait(d time.Duration) Option { return func(s *settings) { s.groupWait = d } }

// WithGroupInterval sets the route's group_interval (default 1s; zero is rejected by Alertmanager).
func WithGroupInterval(d time.Duration) Option { return func(s *settings) { s.groupInterval = d } }

// WithRepeatInterval sets the route's repeat_interval (default 1h).
func WithRepeatInterval(d time.Duration) Option { return func(s *settings) { s.repeatInterval = d } }

// WithMaxAlerts sets the webhook's max_alerts (default 0: unlimited).
func WithMaxAlerts(n uint64) Option { return func(s *settings) { s.maxAlerts = n } }

// WithLogLevel sets --log.level (default warn).
func WithLogLevel(level string) Option { return func(s *settings) { s.logLevel = level } }

// WithRawConfig uses yamlText as the whole configuration file instead of the
// generated one; the webhook URL passed to Start and the other config options
// are then ignored.
func WithRawConfig(yamlText string) Option { return func(s *settings) { s.rawConfig = yamlText } }

// WithArgs appends command-line flags (for example --web.external-url=…).
func WithArgs(args ...string) Option {
	return func(s *settings) { s.args = append(s.args, args...) }
}

// Alertmanager is a running Alertmanager process owned by one test.
type Alertmanager struct {
	url    string
	config string
	proc   *toolbin.Proc
	client *client.AlertmanagerAPI
}

// Start runs a real Alertmanager on a free loopback port with clustering off,
// routing every alert to one webhook receiver ("medic") at webhookURL with
// send_resolved on. It returns once /-/ready answers and stops the process in
// t.Cleanup; on test failure the process's output is written to the test log.
func Start(t testing.TB, webhookURL string, opts ...Option) *Alertmanager {
	t.Helper()
	s := settings{
		groupBy:        []string{"alertname", "namespace", "pod"},
		groupWait:      time.Second,
		groupInterval:  time.Second,
		repeatInterval: time.Hour,
		logLevel:       "warn",
	}
	for _, o := range opts {
		o(&s)
	}

	bin, err := Binary()
	if err != nil {
		t.Fatalf("realam: %v", err)
	}
	dir := t.TempDir()
	cfgText := s.rawConfig
	if cfgText == "" {
		cfgText, err = renderConfig(webhookURL, s)
		if err != nil {
			t.Fatalf("realam: config: %v", err)
		}
	}
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatalf("realam: %v", err)
	}

	var lastErr error
	for try := 1; try <= startTries; try++ {
		am, retry, err := launch(bin, cfgPath, cfgText, filepath.Join(dir, "data"), s)
		if err == nil {
			t.Cleanup(func() {
				am.Stop()
				if t.Failed() {
					t.Logf("realam: alertmanager at %s, config:\n%s\noutput:\n%s", am.url, am.config, am.Output())
				}
			})
			return am
		}
		lastErr = err
		if !retry {
			break
		}
		t.Logf("realam: start attempt %d: %v; retrying on another port", try, err)
	}
	t.Fatalf("realam: alertmanager did not start: %v\nconfig:\n%s", lastErr, cfgText)
	return nil
}

// launch starts one process and waits until it is ready. retry reports a
// failure worth another port (the port was taken between probe and bind).
func launch(bin, cfgPath, cfgText, storage string, s settings) (am *Alertmanager, retry bool, err error) {
	ports, err := testkit.FreePorts(1)
	if err != nil {
		return nil, false, err
	}
	port := ports[0]
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.path=" + storage,
		"--web.listen-address=" + addr,
		"--cluster.listen-address=",
		"--log.level=" + s.logLevel,
	}
	args = append(args, s.args...)

	am = &Alertmanager{
		url:    "http://" + addr,
		config: cfgText,
		client: client.NewHTTPClientWithConfig(strfmt.Default,
			client.DefaultTransportConfig().WithHost(addr).WithBasePath(client.DefaultBasePath).WithSchemes([]string{"http"})),
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(cfgPath)
	launched := time.Now()
	if am.proc, err = toolbin.StartProc("alertmanager", cmd, 0); err != nil {
		return nil, false, err
	}

	if err := am.waitReady(launched); err != nil {
		am.Stop()
		out := am.Output()
		retry = strings.Contains(out, "address already in use") || errors.Is(err, errStranger)
		return nil, retry, fmt.Errorf("%w\noutput:\n%s", err, out)
	}
	return am, false, nil
}

var errStranger = errors.New("another process answers on the port")

func (am *Alertmanager) waitReady(launched time.Time) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := am.proc.WaitHTTP(am.url+"/-/ready", hc, readyTimeout); err != nil {
		return err
	}
	return am.checkItIsOurs(hc, launched)
}

// checkItIsOurs guards against a stranger that took the port between
// the port was picked and our bind (our process then exits, but the stranger answers
// /-/ready): the Alertmanager answering must have started after we launched.
func (am *Alertmanager) checkItIsOurs(hc *http.Client, launched time.Time) error {
	resp, err := hc.Get(am.url + "/api/v2/status")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	var st struct {
		Uptime time.Time `json:"uptime"` // the process's start time
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return errStranger
	}
	if st.Uptime.Before(launched.Add(-10 * time.Millisecond)) {
		return fmt.Errorf("%w (started %v, we launched at %v)", errStranger, st.Uptime, launched)
	}
	return nil
}

// Stop terminates Alertmanager (SIGTERM, then SIGKILL after 10s) and waits for
// it to exit. Start's cleanup calls it; calling it earlier is allowed, for
// tests of what medic does when Alertmanager goes away.
func (am *Alertmanager) Stop() { am.proc.Stop(stopTimeout) }

// URL is the base URL, e.g. http://127.0.0.1:41234.
func (am *Alertmanager) URL() string { return am.url }

// Config is the configuration file Alertmanager was started with.
func (am *Alertmanager) Config() string { return am.config }

// Output is the tail of Alertmanager's stdout and stderr.
func (am *Alertmanager) Output() string { return am.proc.Output() }

// Client is the official API v2 client, pointed at this Alertmanager.
func (am *Alertmanager) Client() *client.AlertmanagerAPI { return am.client }

// PostAlert posts one alert through POST /api/v2/alerts. A zero startsAt
// means "now" and a zero endsAt means "now + resolve_timeout" (Alertmanager's
// own defaults); to resolve an alert, post the same labels again with endsAt
// in the past.
func (am *Alertmanager) PostAlert(ctx context.Context, labels, annotations map[string]string, startsAt, endsAt time.Time, generatorURL string) error {
	a := &models.PostableAlert{
		Alert: models.Alert{
			Labels:       models.LabelSet(labels),
			GeneratorURL: strfmt.URI(generatorURL),
		},
		Annotations: models.LabelSet(annotations),
		StartsAt:    strfmt.DateTime(startsAt),
		EndsAt:      strfmt.DateTime(endsAt),
	}
	_, err := am.client.Alert.PostAlerts(alert.NewPostAlertsParamsWithContext(ctx).WithAlerts(models.PostableAlerts{a}))
	if err != nil {
		return fmt.Errorf("realam: post alert: %w", err)
	}
	return nil
}

// Alerts lists the alerts Alertmanager holds (GET /api/v2/alerts).
func (am *Alertmanager) Alerts(ctx context.Context) (models.GettableAlerts, error) {
	ok, err := am.client.Alert.GetAlerts(alert.NewGetAlertsParamsWithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("realam: list alerts: %w", err)
	}
	return ok.Payload, nil
}

// Silences lists all silences, active, pending and expired
// (GET /api/v2/silences).
func (am *Alertmanager) Silences(ctx context.Context) (models.GettableSilences, error) {
	ok, err := am.client.Silence.GetSilences(silence.NewGetSilencesParamsWithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("realam: list silences: %w", err)
	}
	return ok.Payload, nil
}

// Configuration file shapes (only the fields Start writes).
type amConfig struct {
	Route     amRoute      `yaml:"route"`
	Receivers []amReceiver `yaml:"receivers"`
}

type amRoute struct {
	Receiver       string   `yaml:"receiver"`
	GroupBy        []string `yaml:"group_by"`
	GroupWait      string   `yaml:"group_wait"`
	GroupInterval  string   `yaml:"group_interval"`
	RepeatInterval string   `yaml:"repeat_interval"`
}

type amReceiver struct {
	Name           string      `yaml:"name"`
	WebhookConfigs []amWebhook `yaml:"webhook_configs"`
}

type amWebhook struct {
	URL          string        `yaml:"url"`
	SendResolved bool          `yaml:"send_resolved"`
	MaxAlerts    uint64        `yaml:"max_alerts"`
	HTTPConfig   *amHTTPConfig `yaml:"http_config,omitempty"`
}

type amHTTPConfig struct {
	Authorization *amAuthorization `yaml:"authorization,omitempty"`
	BasicAuth     *amBasicAuth     `yaml:"basic_auth,omitempty"`
}

type amAuthorization struct {
	Type        string `yaml:"type"`
	Credentials string `yaml:"credentials"`
}

type amBasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

func renderConfig(webhookURL string, s settings) (string, error) {
	if webhookURL == "" {
		return "", errors.New("empty webhook URL")
	}
	wh := amWebhook{URL: webhookURL, SendResolved: true, MaxAlerts: s.maxAlerts}
	if s.bearerToken != "" || s.basicUser != "" || s.basicPass != "" {
		wh.HTTPConfig = &amHTTPConfig{}
		if s.bearerToken != "" {
			wh.HTTPConfig.Authorization = &amAuthorization{Type: "Bearer", Credentials: s.bearerToken}
		}
		if s.basicUser != "" || s.basicPass != "" {
			wh.HTTPConfig.BasicAuth = &amBasicAuth{Username: s.basicUser, Password: s.basicPass}
		}
	}
	cfg := amConfig{
		Route: amRoute{
			Receiver:       ReceiverName,
			GroupBy:        s.groupBy,
			GroupWait:      promDuration(s.groupWait),
			GroupInterval:  promDuration(s.groupInterval),
			RepeatInterval: promDuration(s.repeatInterval),
		},
		Receivers: []amReceiver{{Name: ReceiverName, WebhookConfigs: []amWebhook{wh}}},
	}
	b, err := yaml.Marshal(cfg)
	return string(b), err
}

// promDuration formats d the way Prometheus durations parse ("1h", "1s",
// "250ms"); below a millisecond is dropped.
func promDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d != 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}
