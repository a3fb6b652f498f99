package actions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/medichq/medic/event"
)

// Silencers: actions that decide a finding should reach nobody. They set
// Finding.Silenced; the engine stops the playbooks there and the pipeline
// acks the event without delivering it (the finding stays on the finding
// page, and medic_findings_silenced_total counts it). They keep Robusta's
// names and parameters so imported playbooks mean what they meant there;
// the Kubernetes ones (pod_status_silencer, node_restart_silencer) live in
// actions/kube.

// Silence marks f silenced by the action named by, for reason. The engine
// adds the playbook to By.
func Silence(f *event.Finding, by, reason string) {
	f.Silenced = &event.Silence{By: by, Reason: reason}
}

// SeveritySilencerParams are severity_silencer's parameters.
type SeveritySilencerParams struct {
	// Severity is Robusta's single severity word. Without it and without
	// Severities, Robusta's default "none" applies.
	Severity string `yaml:"severity"`
	// Severities silences any of several (medic's addition).
	Severities []string `yaml:"severities"`
}

// Validate rejects an empty word in severities, which would never match.
func (p *SeveritySilencerParams) Validate() error {
	for i, s := range p.Severities {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("severities[%d] is empty", i)
		}
	}
	return nil
}

// words is what the action silences.
func (p *SeveritySilencerParams) words() []string {
	w := slices.DeleteFunc(append([]string{p.Severity}, p.Severities...), func(s string) bool { return strings.TrimSpace(s) == "" })
	if len(w) == 0 {
		return []string{string(event.SeverityNone)} // Robusta's default
	}
	return w
}

// NameSilencerParams are name_silencer's parameters.
type NameSilencerParams struct {
	// Names are alert names (the alertname label), compared exactly.
	Names []string `yaml:"names"`
}

// Validate requires at least one name, as Robusta does.
func (p *NameSilencerParams) Validate() error {
	if len(p.Names) == 0 {
		return errors.New("names is empty: list the alert names to silence")
	}
	return nil
}

// SilenceAlertParams are silence_alert's parameters.
type SilenceAlertParams struct {
	// LogSilence logs each silence at info, not only at debug.
	LogSilence bool `yaml:"log_silence"`
}

func addSilencers(r *Registry) {
	Add(r, "silence_alert",
		"Silence every finding the playbook matches: silencing as code, the playbook's triggers (alert_name, scope, …) say what. Robusta's silence_alert.",
		func() *SilenceAlertParams { return &SilenceAlertParams{} },
		func(p *SilenceAlertParams) (Runner[interface{ Log() *slog.Logger }], error) {
			logIt := p.LogSilence
			return RunFunc[interface{ Log() *slog.Logger }](func(_ context.Context, deps interface{ Log() *slog.Logger }, f *event.Finding) error {
				Silence(f, "silence_alert", "the playbook silences what it matches")
				if logIt {
					deps.Log().Info("silencing finding", "finding", f.ID, "title", f.Title)
				}
				return nil
			}), nil
		})
	Add(r, "severity_silencer",
		"Silence the finding when the alert's severity label (or, without one, the finding's severity) is severity or one of severities; case does not matter. Robusta's severity_silencer.",
		func() *SeveritySilencerParams { return &SeveritySilencerParams{} },
		func(p *SeveritySilencerParams) (Runner[any], error) {
			words := p.words()
			return RunFunc[any](func(_ context.Context, _ any, f *event.Finding) error {
				if w, ok := severityMatch(f, words); ok {
					Silence(f, "severity_silencer", fmt.Sprintf("severity is %s", w))
				}
				return nil
			}), nil
		})
	Add(r, "name_silencer",
		"Silence alerts whose name (the alertname label) is one of names. Robusta's name_silencer.",
		func() *NameSilencerParams { return &NameSilencerParams{} },
		func(p *NameSilencerParams) (Runner[any], error) {
			names := slices.Clone(p.Names)
			return RunFunc[any](func(_ context.Context, _ any, f *event.Finding) error {
				if name := f.Event.Labels["alertname"]; name != "" && slices.Contains(names, name) {
					Silence(f, "name_silencer", fmt.Sprintf("alert %s is in names", name))
				}
				return nil
			}), nil
		})
}

// severityMatch compares the alert's own severity word, as Robusta does,
// and falls back to medic's severity for events without the label
// (Kubernetes triggers) so the action means something for them too.
func severityMatch(f *event.Finding, words []string) (string, bool) {
	have := strings.TrimSpace(f.Event.Labels["severity"])
	if have == "" {
		have = string(f.Severity)
	}
	for _, w := range words {
		if strings.EqualFold(strings.TrimSpace(w), have) {
			return have, true
		}
	}
	return "", false
}
