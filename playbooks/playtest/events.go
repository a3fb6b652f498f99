package playtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/template"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sources/alertmanager"
	"github.com/medichq/medic/sources/kubernetes/kubefixture"
)

// FixtureTime is the receive time given to events read from files, so a
// report does not change from one run to the next.
var FixtureTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DecodeEvents reads events from a JSON or YAML document in one of these
// shapes:
//
//   - an Alertmanager webhook message ({"version": "4", "alerts": [...]});
//     "version" may be left out. Each alert is one event, converted exactly
//     as the webhook converts it.
//   - a Kubernetes object as `kubectl get -o yaml` (or -o json) prints it:
//     a Pod, Job, Node or core/v1 Event, or a List of objects. It becomes
//     the events medic's Kubernetes detector would publish for it, given
//     the Kubernetes triggers of set (see kubefixture.EventsFromObjects:
//     fire_delay and duration are taken as elapsed). That may be none.
//   - a medic event ({"kind": "pod_crash_loop", "subject": {...}, ...}), the
//     shape of medic's own events.
//   - a list of these.
//
// set may be nil when the document holds no Kubernetes object.
func DecodeEvents(data []byte, set *playbooks.Set) ([]event.Event, error) {
	return (&Decoder{Set: set}).Decode(data)
}

// Decoder reads event documents (see DecodeEvents) and counts the
// Kubernetes objects it converted.
type Decoder struct {
	// Set gives the triggers Kubernetes objects are converted for.
	Set *playbooks.Set
	// Objects counts the Kubernetes objects read so far.
	Objects int
}

// Decode reads one document.
func (d *Decoder) Decode(data []byte) ([]event.Event, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not JSON or YAML: %v", err)
	}
	return d.eventsFrom(doc)
}

func (d *Decoder) eventsFrom(doc any) ([]event.Event, error) {
	switch v := doc.(type) {
	case map[string]any:
		switch {
		case v["alerts"] != nil:
			if _, ok := v["version"]; !ok {
				v["version"] = "4"
			}
			raw, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			msg, err := alertmanager.Decode(raw)
			if err != nil {
				return nil, err
			}
			return alertmanager.ToEvents(msg, alertmanager.DefaultSource, FixtureTime), nil
		case v["apiVersion"] != nil:
			return d.kubeEvents(v)
		case v["kind"] != nil:
			ev, err := medicEvent(v)
			if err != nil {
				return nil, err
			}
			return []event.Event{ev}, nil
		}
		return nil, errors.New(`unknown event format: expected an Alertmanager webhook message ("alerts": [...]), a Kubernetes object ("apiVersion": ..., "kind": ...) or a medic event ("kind": ...)`)
	case []any:
		var out []event.Event
		for i, item := range v {
			evs, err := d.eventsFrom(item)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i+1, err)
			}
			out = append(out, evs...)
		}
		return out, nil
	}
	return nil, errors.New("an event file holds an object or a list of objects")
}

// kubeEvents runs medic's Kubernetes detector over one object (or List).
func (d *Decoder) kubeEvents(v map[string]any) ([]event.Event, error) {
	if d.Set == nil {
		return nil, fmt.Errorf("a Kubernetes object (kind %v) is converted for the triggers of a playbook set, and none was given", v["kind"])
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	objs, err := kubefixture.DecodeObjects(raw)
	if err != nil {
		return nil, fmt.Errorf("kind %v: %w", v["kind"], err)
	}
	evs, err := kubefixture.EventsFromObjects(context.Background(), d.Set.Triggers(), FixtureTime, objs...)
	if err != nil {
		return nil, err
	}
	d.Objects += len(objs)
	return evs, nil
}

func medicEvent(v map[string]any) (event.Event, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return event.Event{}, err
	}
	var ev event.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, fmt.Errorf("not a medic event: %v", err)
	}
	if ev.Source == "" {
		ev.Source = "fixture"
	}
	if ev.Status == "" {
		ev.Status = event.StatusFiring
	}
	if ev.Severity == "" {
		ev.Severity = event.ParseSeverity(ev.Labels["severity"])
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = FixtureTime
	}
	if ev.ID == "" {
		ev.ID = event.NewID(ev.Source, ev.Title+"/"+ev.Subject.String(), ev.Status, ev.StartsAt)
	}
	return ev, nil
}

// Alert is the shorthand for one Prometheus alert in a fixture.
type Alert struct {
	Labels       map[string]string `yaml:"labels"`
	Annotations  map[string]string `yaml:"annotations"`
	Status       string            `yaml:"status"`
	GeneratorURL string            `yaml:"generator_url"`
}

// Event converts the shorthand exactly as the webhook would.
func (a Alert) Event() (event.Event, error) {
	if len(a.Labels) == 0 {
		return event.Event{}, errors.New("alert: labels are required (at least alertname)")
	}
	status := a.Status
	switch status {
	case "":
		status = "firing"
	case "firing", "resolved":
	default:
		return event.Event{}, fmt.Errorf("alert: status %q is not firing or resolved", status)
	}
	return alertmanager.EventFromAlert(template.Alert{
		Status: status, Labels: a.Labels, Annotations: a.Annotations,
		StartsAt: FixtureTime, GeneratorURL: a.GeneratorURL,
	}, "", alertmanager.DefaultSource, FixtureTime), nil
}
