// Package remediate holds medic's opt-in remediation actions: delete_pod,
// rollout_restart, scale_workload, run_job, pod_bash_enricher,
// node_bash_enricher and kubectl_command. They change the cluster or run
// commands in it, so they load only when the configuration enables
// remediation and lists them (actions.Remediation, checked by the playbook
// loader), and they need their own RBAC role (deploy/helm: remediation).
//
// From a playbook an action normally does not run: it resolves its target
// now, so the approver approves exactly what they see, and adds an
// event.ProposedAction to the finding. The chat sinks render an Approve
// button; the interactive side (interact) checks the presser is an
// approver, claims the run once in KV and calls Executor.Execute. An action
// with require_approval: false (allowed only when remediation.
// require_approval is false) runs at once. Every run, approved or
// automatic, is recorded: an enrichment on the finding and a log line.
package remediate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/redact"
)

// Source is the Source of the enrichments remediations add.
const Source = "remediation"

// Approval is the parameter every remediation action has.
type Approval struct {
	// RequireApproval (default true) proposes the action instead of running
	// it; remediation.require_approval in the configuration overrides a
	// false here.
	RequireApproval bool `yaml:"require_approval"`
}

func (a *Approval) approval() bool { return a.RequireApproval }

// approvalParams is implemented by every parameter struct through Approval.
type approvalParams interface{ approval() bool }

// Run identifies one execution: the same Run executed twice does the same
// thing (a redelivered approval, a retried automatic run), so names and
// timestamps derived from it are stable.
type Run struct {
	// ID is unique per execution (the finding and proposal, or the
	// finding and action for an automatic run).
	ID string
	At time.Time
}

// Result is what an execution did, for the record.
type Result struct {
	// Text is one line ("deleted pod shop/cart-7d9").
	Text string
	// Output is a command's output, shown as a log block when not empty.
	Output    string
	OutputSrc string
	Truncated bool
}

// remedy is one remediation action: what it acts on, and how. D is what it
// uses of actions.Env: Deps, or Deps and the one thing more it needs.
type remedy[D Deps] interface {
	// target resolves the object the action acts on from the finding.
	target(ctx context.Context, deps D, f *event.Finding) (event.Subject, error)
	// summary says in a line what executing on t does.
	summary(t event.Subject) string
	// execute acts on t. A failure the cluster reports is an error; it is
	// recorded, never retried by the engine.
	execute(ctx context.Context, deps D, t event.Subject, run Run) (Result, error)
}

// action is the actions.Runner of every remediation.
type action[D Deps] struct {
	name   string
	params any // the decoded parameters, re-encoded into a proposal
	r      remedy[D]
}

// Deps is what every remediation action uses of actions.Env: the policy
// that lets it run, the logger that records each run, and the typed client
// it acts with. kubectl_command adds the dynamic client (get, describe of
// any kind) and pod_bash_enricher the REST configuration (its exec stream).
type Deps = interface {
	Policy() actions.Remediation
	Log() *slog.Logger
	KubeClient() kubernetes.Interface
}

// Register adds package remediate's actions (actions.RemediationActions).
// They load only where the configuration's remediation policy allows them.
func Register(r *actions.Registry) {
	addWorkloads(r)
	addCommands(r)
	addKubectl(r)
}

// remediations is a registry of this package's actions alone: the Executor
// rebuilds an approved proposal from it, whatever else the binary ships.
var remediations = sync.OnceValue(func() *actions.Registry {
	r := actions.NewRegistry()
	Register(r)
	return r
})

// register adds a remediation action whose parameters embed Approval.
func register[P any, D Deps](r *actions.Registry, name, doc string, defaults func() *P, build func(*P) (remedy[D], error)) {
	actions.Add(r, name, doc+" Opt-in: loads only when remediation.enabled lists it in remediation.allowed.",
		defaults, func(p *P) (actions.Runner[D], error) {
			rem, err := build(p)
			if err != nil {
				return nil, err
			}
			return &action[D]{name: name, params: p, r: rem}, nil
		})
}

// approved is an action the Executor runs once approved: its remedy's
// execute with the app's Env as the remedy's D.
type approved interface {
	executeApproved(ctx context.Context, env *actions.Env, t event.Subject, run Run) (Result, error)
}

// executeApproved narrows env to D as actions.Add does for Run: Add checked,
// when the action registered, that *actions.Env is a D.
func (a *action[D]) executeApproved(ctx context.Context, env *actions.Env, t event.Subject, run Run) (Result, error) {
	return a.r.execute(ctx, any(env).(D), t, run)
}

// Run proposes the action, or runs it when neither the playbook nor the
// configuration asks for approval.
func (a *action[D]) Run(ctx context.Context, deps D, f *event.Finding) error {
	policy := deps.Policy()
	if !policy.Allows(a.name) {
		// The loader refuses such playbooks; this is a policy changed
		// under a running set, or an Env built without one.
		f.Add(note(a.name, "⚠ "+a.name+" did not run: "+policy.Why(a.name)))
		return nil
	}
	t, err := a.r.target(ctx, deps, f)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.Add(note(a.name, "⚠ "+a.name+": "+explain(err)))
		return nil
	}
	ap, _ := a.params.(approvalParams)
	if policy.RequireApproval || ap == nil || ap.approval() {
		p, err := a.proposal(t)
		if err != nil {
			return err
		}
		for _, have := range f.Proposed {
			if have.ID == p.ID {
				return nil // two playbooks proposing the same thing: one button
			}
		}
		f.Proposed = append(f.Proposed, p)
		f.Add(event.Enrichment{Title: "🛠 Proposed: " + p.Summary, Source: Source,
			Blocks: []event.Block{event.MarkdownBlock("Waiting for an approver (remediation.approvers) to press *Approve* on the Slack message; it runs once, and who approved it and what it did is recorded in the thread and on the finding page.")}})
		return nil
	}
	// The run is derived from the finding, so a redelivered event does the
	// same thing again (same Job name, same restartedAt), not a second run.
	at := f.CreatedAt
	if at.IsZero() {
		at = time.Now()
	}
	run := Run{ID: f.ID + "." + a.name + "." + shortHash(t.String()), At: at.UTC()}
	res, err := a.r.execute(ctx, deps, t, run)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	deps.Log().Info("remediation ran", "action", a.name, "target", t.String(), "finding", f.ID, "approved_by", "", "automatic", true, "err", err)
	f.Add(Record(a.name, a.r.summary(t), "automatically (require_approval: false)", res, err))
	return nil
}

// proposal records the action, its parameters and its resolved target.
func (a *action[D]) proposal(t event.Subject) (event.ProposedAction, error) {
	b, err := yaml.Marshal(a.params)
	if err != nil {
		return event.ProposedAction{}, fmt.Errorf("%s: encode parameters: %w", a.name, err)
	}
	p := event.ProposedAction{Action: a.name, Params: string(b), Target: t, Summary: a.r.summary(t)}
	p.ID = shortHash(p.Action + "\x00" + p.Params + "\x00" + t.Kind + "/" + t.Namespace + "/" + t.Name + "/" + t.Container + "/" + t.Node)
	return p, nil
}

// Record is the enrichment that records one execution: what ran, on what,
// who approved it (or that it ran automatically), and what came of it.
func Record(name, summary, how string, res Result, err error) event.Enrichment {
	e := event.Enrichment{Source: Source}
	rows := [][2]string{{"Action", name}, {"What", summary}, {"Approved", how}}
	if err != nil {
		e.Title = "❌ Remediation failed: " + summary
		rows = append(rows, [2]string{"Result", "failed: " + explain(err)})
	} else {
		e.Title = "✅ Remediation ran: " + summary
		rows = append(rows, [2]string{"Result", res.Text})
	}
	e.Blocks = append(e.Blocks, event.KeyValueBlock(rows))
	if res.Output != "" {
		e.Blocks = append(e.Blocks, event.LogTextBlock(res.OutputSrc, res.Output, res.Truncated))
	}
	return e
}

// Executor runs approved proposals: the interactive side calls it once the
// presser is known to be an approver and the run is claimed.
type Executor struct {
	Env *actions.Env
	// Redactor cleans commands' output before it is posted (nil: medic's
	// default rules).
	Redactor *redact.Redactor
}

// ErrNotAllowed is returned when the policy no longer allows the action.
var ErrNotAllowed = errors.New("remediation not allowed")

// Execute runs p on its recorded target and returns the record of the run.
// Only a cancelled context is returned as an error besides ErrNotAllowed:
// a failure in the cluster is part of the record, so a failed run is not
// repeated behind the approver's back.
func (x *Executor) Execute(ctx context.Context, f *event.Finding, p event.ProposedAction, approvedBy string, at time.Time) (event.Enrichment, error) {
	env := x.Env // nil reads as nothing configured: read-only
	if policy := env.Policy(); !policy.Allows(p.Action) {
		return event.Enrichment{}, fmt.Errorf("%w: %s", ErrNotAllowed, policy.Why(p.Action))
	}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(p.Params), &node); err != nil {
		return event.Enrichment{}, fmt.Errorf("decode parameters of %s: %w", p.Action, err)
	}
	built, err := remediations().Build(p.Action, &node)
	if err != nil {
		return event.Enrichment{}, fmt.Errorf("build %s: %w", p.Action, err)
	}
	a, ok := actions.RunnerOf(built).(approved)
	if !ok {
		return event.Enrichment{}, fmt.Errorf("%s is not a remediation action", p.Action)
	}
	res, err := a.executeApproved(ctx, env, p.Target, Run{ID: f.ID + "." + p.ID, At: at})
	if err != nil && ctx.Err() != nil {
		return event.Enrichment{}, ctx.Err()
	}
	env.Log().Info("remediation ran", "action", p.Action, "target", p.Target.String(), "finding", f.ID,
		"proposal", p.ID, "approved_by", approvedBy, "automatic", false, "err", err)
	rec := Record(p.Action, p.Summary, approvedBy, res, err)
	r := x.Redactor
	if r == nil {
		r = redact.Default()
	}
	redacted := event.Finding{ID: f.ID, Enrichments: []event.Enrichment{rec}}
	r.Finding(&redacted)
	return redacted.Enrichments[0], nil
}

func note(name, text string) event.Enrichment {
	return event.Enrichment{Title: name, Source: Source, Blocks: []event.Block{event.MarkdownBlock(text)}}
}

// explain words an API error for a person: forbidden names the verb the
// service account lacks.
func explain(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		if apierrors.IsForbidden(err) && st.Details != nil {
			return fmt.Sprintf("forbidden: %s (medic's service account needs the remediation role: remediation.allowed in the chart)", st.Message)
		}
		return st.Message
	}
	return err.Error()
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// ref is namespace/name.
func ref(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

func lower(s string) string { return strings.ToLower(s) }
