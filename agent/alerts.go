package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"

	"github.com/medichq/medic/rag/llm"
)

// Alertmanager is where the active_alerts tool reads (alertmanager.url).
type Alertmanager struct {
	URL string
	// Token, when set, returns the bearer token (re-read on every call).
	Token      func() (string, error)
	HTTPClient *http.Client
}

// alertsTool lists the alerts firing now: what else is wrong in the
// namespace or on the node, which often names the cause (a node alert
// behind a pod's restarts).
type alertsTool struct {
	am     *Alertmanager
	policy NamespacePolicy
}

// maxAlertRows bounds one answer.
const maxAlertRows = 50

func (alertsTool) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: "active_alerts", Description: "The alerts firing now in Alertmanager (not silenced or inhibited), optionally only those of a namespace or with a label value: what else is wrong around the subject.",
		Parameters: map[string]any{"type": "object", "additionalProperties": false,
			"properties": map[string]any{
				"namespace": map[string]any{"type": "string", "description": "Only alerts with this namespace label."},
				"matchers":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": `Alertmanager matchers, e.g. ["severity=critical", "node=worker-3"].`},
			}}}
}

func (t *alertsTool) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	var a struct {
		Namespace string   `json:"namespace"`
		Matchers  []string `json:"matchers"`
	}
	if err := strictJSON(raw, &a); err != nil {
		return "", err
	}
	if err := t.policy.Check(a.Namespace); err != nil {
		return "", err
	}
	u, err := url.Parse(t.am.URL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("alertmanager.url %q is not a URL", t.am.URL)
	}
	hc := t.am.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	tr := httptransport.NewWithClient(u.Host, strings.TrimSuffix(u.Path, "/")+amclient.DefaultBasePath, []string{u.Scheme}, hc)
	if t.am.Token != nil {
		tok, err := t.am.Token()
		if err != nil {
			return "", err
		}
		if tok != "" {
			tr.DefaultAuthentication = httptransport.BearerToken(tok)
		}
	}
	filter := append([]string(nil), a.Matchers...)
	if a.Namespace != "" {
		filter = append(filter, fmt.Sprintf("namespace=%q", a.Namespace))
	}
	yes, no := true, false
	params := alert.NewGetAlertsParamsWithContext(ctx).WithActive(&yes).WithSilenced(&no).WithInhibited(&no).WithFilter(filter)
	ok, err := amclient.New(tr, strfmt.Default).Alert.GetAlerts(params)
	if err != nil {
		var apiErr interface{ Code() int }
		if errors.As(err, &apiErr) {
			return "", fmt.Errorf("alertmanager answered %d", apiErr.Code())
		}
		return "", fmt.Errorf("alertmanager: %w", err)
	}
	rows := make([]string, 0, len(ok.Payload))
	for _, al := range ok.Payload {
		if ns := al.Labels["namespace"]; ns != "" && t.policy.Check(ns) != nil {
			continue // a namespace the investigation may not look at
		}
		keys := make([]string, 0, len(al.Labels))
		for k := range al.Labels {
			if k != "alertname" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var labels []string
		for _, k := range keys {
			labels = append(labels, k+"="+al.Labels[k])
		}
		since := ""
		if al.StartsAt != nil {
			since = time.Time(*al.StartsAt).UTC().Format(time.RFC3339)
		}
		rows = append(rows, fmt.Sprintf("%s | %s | since %s | %s", al.Labels["alertname"], strings.Join(labels, ","), since, al.Annotations["summary"]))
	}
	if len(rows) == 0 {
		return "No active alerts match.", nil
	}
	sort.Strings(rows)
	more := ""
	if len(rows) > maxAlertRows {
		more = fmt.Sprintf("… and %d more\n", len(rows)-maxAlertRows)
		rows = rows[:maxAlertRows]
	}
	return fmt.Sprintf("%d active alerts:\nalertname | labels | since | summary\n%s\n%s", len(ok.Payload), strings.Join(rows, "\n"), more), nil
}
