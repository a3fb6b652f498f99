package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/version"
	"github.com/medichq/medic/rag"
)

func newInvestigateCmd() *cobra.Command {
	var (
		configFlag string
		namespace  string
		model      string
		maxTokens  int
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "investigate TYPE/NAME",
		Short: "Triage a pod, a workload, a node, a namespace or an alert on demand, with the model calling medic's read-only tools",
		Long: `Investigate something without waiting for an alert: the model is offered medic's
read-only evidence tools (pod logs, events, status, YAML, related pods, node and workload
status, PromQL, the knowledge base), medic runs the calls it asks for against the cluster of
kubernetes.* or $KUBECONFIG, and prints each step as it happens, then the answer.

  medic investigate pod/cart-7d9 -n shop
  medic investigate deployment/cart -n shop
  medic investigate node/worker-3
  medic investigate namespace/shop
  medic investigate alert/KubePodCrashLooping -n shop

TYPE is pod, deployment, statefulset, daemonset, job, node, namespace or alert (kubectl's
short names work). Needs ai.chat_model; a model without tool calling answers in one shot.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := parseTarget(args[0], namespace)
			if err != nil {
				return err
			}
			return investigate(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), configFlag, asJSON,
				agent.Request{Target: &target, Model: model, MaxTokens: maxTokens})
		},
	}
	cmd.Flags().StringVarP(&configFlag, "config", "c", "", "configuration file (default: $MEDIC_CONFIG, else ./medic.yaml if present)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the object (an alert's namespace label)")
	cmd.Flags().StringVar(&model, "model", "", "chat model (default: ai.chat_model)")
	cmd.Flags().IntVar(&maxTokens, "max-tokens", 0, "bound each answer (default: ai.max_tokens)")
	addJSONFlag(cmd, &asJSON, "print the answer and its transcript (tools, arguments, results, runbooks) as JSON")
	return cmd
}

// targetKinds maps what kubectl accepts to the kinds medic knows.
var targetKinds = map[string]string{
	"pod": "Pod", "pods": "Pod", "po": "Pod",
	"deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
	"statefulset": "StatefulSet", "statefulsets": "StatefulSet", "sts": "StatefulSet",
	"daemonset": "DaemonSet", "daemonsets": "DaemonSet", "ds": "DaemonSet",
	"job": "Job", "jobs": "Job",
	"node": "Node", "nodes": "Node", "no": "Node",
	"namespace": "Namespace", "namespaces": "Namespace", "ns": "Namespace",
	"alert": "alert",
}

// subjectLabels are the labels an alert about the kind would carry, so the
// event reads to the tools as an alert about it would.
var subjectLabels = map[string]string{"Pod": "pod", "Deployment": "deployment", "StatefulSet": "statefulset", "DaemonSet": "daemonset", "Job": "job_name", "Node": "node"}

// parseTarget turns TYPE/NAME (and -n) into the event the investigation
// starts from.
func parseTarget(arg, namespace string) (event.Event, error) {
	typ, name, ok := strings.Cut(arg, "/")
	kind := targetKinds[strings.ToLower(typ)]
	if !ok || name == "" || kind == "" {
		return event.Event{}, fmt.Errorf("%q: want TYPE/NAME with TYPE one of pod, deployment, statefulset, daemonset, job, node, namespace, alert", arg)
	}
	ev := event.Event{ID: "investigate", Kind: event.KindManual, Source: "medic investigate", Labels: map[string]string{}}
	if namespace != "" {
		ev.Labels["namespace"] = namespace
	}
	switch kind {
	case "alert":
		ev.Labels["alertname"] = name
		ev.Title = "Alert " + name
		if namespace != "" {
			ev.Title += " in namespace " + namespace
		}
	case "Namespace":
		ev.Labels["namespace"] = name
		ev.Subject = event.Subject{Namespace: name}
		ev.Title = "Namespace " + name
	case "Node":
		ev.Labels["node"] = name
		ev.Subject = event.Subject{Kind: "Node", Name: name, Node: name}
		ev.Title = "Node " + name
	default:
		if namespace == "" {
			return event.Event{}, fmt.Errorf("%s: -n NAMESPACE is required for a %s", arg, strings.ToLower(kind))
		}
		ev.Labels[subjectLabels[kind]] = name
		ev.Subject = event.Subject{Kind: kind, Namespace: namespace, Name: name}
		ev.Title = kind + " " + namespace + "/" + name
	}
	return ev, nil
}

// errNoModel is the error of the AI commands without a chat model.
var errNoModel = fmt.Errorf("%w: set ai.chat_model (and ai.base_url for Ollama, e.g. http://localhost:11434/v1) in medic.yaml, or MEDIC_AI_CHAT_MODEL", rag.ErrNotConfigured)

// openModel opens the knowledge base of an AI command, which needs a chat
// model.
func openModel(ctx context.Context, configFlag string, stderr io.Writer) (*app.Knowledge, config.Config, error) {
	k, cfg, err := openKB(ctx, configFlag, stderr)
	if err != nil {
		return nil, cfg, err
	}
	if !k.Service.Configured() {
		_ = k.Close()
		return nil, cfg, errNoModel
	}
	return k, cfg, nil
}

// investigate opens the knowledge base and runs one investigation.
func investigate(ctx context.Context, w, stderr io.Writer, configFlag string, asJSON bool, req agent.Request) error {
	k, cfg, err := openModel(ctx, configFlag, stderr)
	if err != nil {
		return err
	}
	defer k.Close()
	inv, err := investigator(ctx, k, cfg, stderr, req.Target != nil)
	if err != nil {
		return err
	}
	if inv == nil {
		return fmt.Errorf("ai.agent.enabled is false: medic investigate needs the investigation (medic ask answers in one shot)")
	}
	return runInvestigation(ctx, w, stderr, inv, asJSON, req)
}

// investigator is the investigation for a CLI command, nil when
// ai.agent.enabled is false. Without a cluster only the knowledge-base
// tools (and PromQL, with prometheus.url) are offered.
func investigator(ctx context.Context, k *app.Knowledge, cfg config.Config, stderr io.Writer, sayNoCluster bool) (*agent.Investigator, error) {
	env, noCluster, err := app.ToolsEnv(cfg, newLogger(stderr, cfg.Log))
	if err != nil {
		return nil, err
	}
	if cfg.AI.Agent.Enabled {
		k.ConnectMCP(ctx, version.Version)
	}
	inv := k.Investigator(env)
	if inv != nil && noCluster != "" {
		inv.Toolbox.Only = []string{"search_runbooks", "fetch_runbook", "prometheus_query"}
		for _, t := range inv.Toolbox.Extra { // the MCP servers' tools
			inv.Toolbox.Only = append(inv.Toolbox.Only, t.Spec().Name)
		}
		if sayNoCluster {
			fmt.Fprintf(stderr, "no cluster (%s): only the knowledge base is searched\n", noCluster)
		}
	}
	return inv, nil
}

// runInvestigation prints each call to stderr as it happens and the answer
// to stdout (or everything as JSON).
func runInvestigation(ctx context.Context, w, stderr io.Writer, inv *agent.Investigator, asJSON bool, req agent.Request) error {
	if !asJSON {
		req.Events = agent.Events{
			OnCall: func(turn int, tool, args string) { fmt.Fprintf(stderr, "→ %s %s\n", tool, args) },
			OnStep: func(s agent.Step) { fmt.Fprintf(stderr, "  %s: %s\n", s.Tool, s.Summary) },
		}
	}
	res, _, err := inv.Investigate(ctx, req)
	if err != nil {
		return fmt.Errorf("AI unavailable: %w", err)
	}
	if asJSON {
		return writeJSON(w, res)
	}
	printResult(w, stderr, res)
	return nil
}

// printResult writes the answer, the runbooks it rests on and a footer.
func printResult(w, stderr io.Writer, res agent.Result) {
	fmt.Fprintf(w, "%s\n", res.Answer)
	if len(res.Transcript.Runbooks) > 0 {
		fmt.Fprint(w, "\nSources:\n")
		for i, r := range res.Transcript.Runbooks {
			fmt.Fprintf(w, "  [%d] %s  %s\n", i+1, r.Title, firstSet(r.URL, r.Source))
		}
	}
	tr := res.Transcript
	notes := []string{"model " + tr.Model, fmt.Sprintf("%d tool calls in %d turns", len(tr.Steps), tr.Turns)}
	if n := tr.Redacted.Total(); n > 0 {
		notes = append(notes, tr.Redacted.String()+" before sending")
	}
	if tr.Stopped != "" {
		notes = append(notes, "stopped by its limit on "+tr.Stopped)
	}
	if tr.Fallback != "" {
		notes = append(notes, "one-shot: "+tr.Fallback)
	}
	fmt.Fprintf(stderr, "(%s)\n", strings.Join(notes, "; "))
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
