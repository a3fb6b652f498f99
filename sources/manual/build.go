// Package manual lets a person (or a script, through `medic trigger`) inject
// an event by hand: to test a playbook without waiting for a real incident,
// or to re-run one. The event it publishes is shaped exactly like the one
// the real source would produce, so playbooks cannot tell them apart.
package manual

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sources/alertmanager"
)

// Source is the source of manually triggered events. It is part of their
// IDs, so a manual alert never deduplicates against a real one.
const Source = "manual"

// Builder turns a manual trigger's parameters into an event.
type Builder func(params map[string]string, now time.Time) (event.Event, error)

// builders maps the trigger names the API and CLI accept to their builders.
// Kubernetes triggers (pod_crash_loop, …) are meant to join here.
var builders = map[string]Builder{
	"prometheus_alert": BuildAlert,
}

// Triggers lists the trigger names that can be sent by hand, sorted.
func Triggers() []string { return slices.Sorted(maps.Keys(builders)) }

// Build builds the event of the named manual trigger.
func Build(trigger string, params map[string]string, now time.Time) (event.Event, error) {
	b, ok := builders[trigger]
	if !ok {
		return event.Event{}, fmt.Errorf("unknown trigger %q (known: %s)", trigger, strings.Join(Triggers(), ", "))
	}
	ev, err := b(params, now)
	if err != nil {
		return event.Event{}, fmt.Errorf("%s: %w", trigger, err)
	}
	return ev, nil
}

// alertLabelParams maps parameter names to the labels Alertmanager alerts
// carry for them (kube-state-metrics' names).
var alertLabelParams = map[string]string{
	"alert_name":  "alertname",
	"namespace":   "namespace",
	"pod_name":    "pod",
	"node_name":   "node",
	"deployment":  "deployment",
	"statefulset": "statefulset",
	"daemonset":   "daemonset",
	"job_name":    "job_name",
	"container":   "container",
	"instance":    "instance",
	"severity":    "severity",
}

var alertAnnotationParams = map[string]string{
	"summary":     "summary",
	"description": "description",
	"runbook_url": "runbook_url",
}

// alertOtherParams are the parameters that are neither label nor annotation.
var alertOtherParams = []string{"status", "starts_at"}

const (
	labelPrefix      = "label."
	annotationPrefix = "annotation."
)

// AlertParams lists the parameters BuildAlert accepts, sorted, with the two
// open-ended families last.
func AlertParams() []string {
	names := slices.Concat(slices.Collect(maps.Keys(alertLabelParams)),
		slices.Collect(maps.Keys(alertAnnotationParams)), alertOtherParams)
	slices.Sort(names)
	return append(names, labelPrefix+"<name>", annotationPrefix+"<name>")
}

// BuildAlert builds the alert Alertmanager would send for these parameters
// and converts it as the webhook does. The fingerprint is computed from the
// labels, as Alertmanager computes it.
//
// starts_at defaults to now, which makes every call a new occurrence with a
// new ID; to resolve a manual alert, pass the starts_at it fired with.
func BuildAlert(params map[string]string, now time.Time) (event.Event, error) {
	now = now.UTC()
	labels := template.KV{}
	annotations := template.KV{}
	setBy := map[string]string{} // label or annotation key → parameter that set it
	status := "firing"
	startsAt := now

	var errs []error
	set := func(kv template.KV, kind, key, value, param string) {
		if prev, dup := setBy[kind+key]; dup {
			errs = append(errs, fmt.Errorf("%s and %s both set the %s %q", prev, param, kind, key))
			return
		}
		setBy[kind+key] = param
		// Prometheus drops empty labels; an empty parameter means "not set".
		if value != "" {
			kv[key] = value
		}
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		value := params[name]
		switch {
		case alertLabelParams[name] != "":
			set(labels, "label", alertLabelParams[name], value, name)
		case alertAnnotationParams[name] != "":
			set(annotations, "annotation", alertAnnotationParams[name], value, name)
		case strings.HasPrefix(name, labelPrefix) && len(name) > len(labelPrefix):
			set(labels, "label", name[len(labelPrefix):], value, name)
		case strings.HasPrefix(name, annotationPrefix) && len(name) > len(annotationPrefix):
			set(annotations, "annotation", name[len(annotationPrefix):], value, name)
		case name == "status":
			switch value {
			case "firing", "resolved":
				status = value
			case "":
			default:
				errs = append(errs, fmt.Errorf("status %q is not firing or resolved", value))
			}
		case name == "starts_at":
			if value == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, value)
			if err != nil {
				errs = append(errs, fmt.Errorf("starts_at %q is not an RFC 3339 time (like 2026-01-02T15:04:05Z)", value))
				continue
			}
			startsAt = t
		default:
			errs = append(errs, fmt.Errorf("unknown parameter %q (known: %s)", name, strings.Join(AlertParams(), ", ")))
		}
	}
	if labels["alertname"] == "" {
		errs = append(errs, errors.New("alert_name is required"))
	}
	if labels["severity"] == "" {
		labels["severity"] = "warning"
	}
	alert := template.Alert{
		Status:      status,
		Labels:      labels,
		Annotations: annotations,
		StartsAt:    startsAt,
	}
	if status == "resolved" {
		alert.EndsAt = now
		if startsAt.After(now) {
			errs = append(errs, fmt.Errorf("starts_at %s is after now (%s), so the alert cannot be resolved yet",
				startsAt.Format(time.RFC3339), now.Format(time.RFC3339)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return event.Event{}, err
	}
	alert.Fingerprint = alertmanager.Fingerprint(labels)
	return alertmanager.EventFromAlert(alert, "", Source, now), nil
}
