package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/llm"
)

// subjectKind says which object arguments a tool takes besides its
// action's parameters.
type subjectKind int

const (
	subjectNone     subjectKind = iota
	subjectPod                  // namespace, pod, container
	subjectWorkload             // kind, namespace, name
	subjectNode                 // node
)

// actionTool offers one evidence action to the model. The arguments are the
// subject (which object) and the action's own parameters, decoded and
// checked by the same registry as a playbook's, so a model's mistake reads
// like a playbook's ("unknown parameter "tail" (did you mean "tail_lines"?)").
type actionTool struct {
	name    string
	action  string
	doc     string
	subject subjectKind
	// hide are parameters not offered (redaction switches: medic always
	// redacts what reaches the model); fixed are set whatever the model says.
	hide  []string
	fixed map[string]any
}

// evidenceTools are the read-only evidence actions, under names a model
// reads easily. Nothing here writes to the cluster.
var evidenceTools = []actionTool{
	{name: "pod_logs", action: "logs_enricher", subject: subjectPod, hide: []string{"redact", "redact_defaults"},
		doc: "Read a container's logs: current, or previous: true for the instance that crashed; tail_lines, filter_regex (RE2) to grep."},
	{name: "pod_events", action: "pod_events_enricher", subject: subjectPod,
		doc: "Kubernetes events of a pod (warnings first, newest first)."},
	{name: "object_events", action: "resource_events_enricher",
		doc: "Kubernetes events of any object: kind (Deployment, Node, PersistentVolumeClaim, …), namespace, name."},
	{name: "pod_status", action: "pod_status_enricher", subject: subjectPod,
		doc: "Compact kubectl describe of a pod: phase, node, conditions, each container's state, exit code, restarts, last termination, requests and limits."},
	{name: "pod_diagnosis", action: "pod_issue_investigator", subject: subjectPod,
		doc: "One line on why a pod fails where the cause is known (image pull, OOMKilled, unschedulable, probe, missing ConfigMap/Secret, crash and its last error line)."},
	{name: "resource_yaml", action: "resource_yaml",
		doc: "An object's YAML (kind, namespace, name; api_version and resource for custom resources). Secrets are never shown."},
	{name: "related_pods", action: "related_pods", subject: subjectWorkload,
		doc: "The pods of a workload (Deployment, StatefulSet, DaemonSet, Job, ReplicaSet, or a pod's owner) or node: status, ready, restarts, node; least healthy first."},
	{name: "workload_status", action: "deployment_status_enricher", subject: subjectWorkload,
		doc: "A deployment's replicas (desired, updated, ready, available), rollout strategy, images and conditions (a stuck rollout shows here)."},
	{name: "job_status", action: "job_info_enricher", subject: subjectWorkload,
		doc: "A job's completions, failures, backoff limit, conditions and pods."},
	{name: "node_status", action: "node_status_enricher", subject: subjectNode,
		doc: "A node's conditions (MemoryPressure, DiskPressure, Ready), taints, allocatable resources against requests, and its pods."},
	{name: "prometheus_query", action: "prometheus_enricher", fixed: map[string]any{"graph": false}, hide: []string{"graph", "title"},
		doc: "Run a PromQL query against Prometheus: instant, or range (e.g. 1h) for a series over time, summarised as a table."},
}

// EvidenceToolNames lists the evidence tools, for docs and tests.
func EvidenceToolNames() []string {
	out := make([]string, len(evidenceTools))
	for i, t := range evidenceTools {
		out[i] = t.name
	}
	return out
}

// boundTool is an actionTool with what it runs against.
type boundTool struct {
	actionTool
	reg    *actions.Registry // builds the action for each call
	env    *actions.Env
	base   event.Event // the finding's event: defaults for the subject and the templates
	policy NamespacePolicy
	params map[string]any // the action's parameter schema properties
	spec   llm.ToolSpec
}

// NamespacePolicy limits the namespaces tools may read. Patterns are shell
// globs (path.Match): "team-*". Deny wins; an empty Allow allows all.
type NamespacePolicy struct {
	Allow, Deny []string
}

// Check says why namespace may not be read, or nil.
func (p NamespacePolicy) Check(namespace string) error {
	if namespace == "" {
		return nil
	}
	for _, d := range p.Deny {
		if ok, _ := path.Match(d, namespace); ok {
			return fmt.Errorf("namespace %q is not open to the investigation (ai.agent.namespaces.deny)", namespace)
		}
	}
	if len(p.Allow) == 0 {
		return nil
	}
	for _, a := range p.Allow {
		if ok, _ := path.Match(a, namespace); ok {
			return nil
		}
	}
	return fmt.Errorf("namespace %q is not open to the investigation (not in ai.agent.namespaces.allow)", namespace)
}

func (t *boundTool) Spec() llm.ToolSpec { return t.spec }

func (t *actionTool) bind(reg *actions.Registry, env *actions.Env, base event.Event, policy NamespacePolicy) (*boundTool, error) {
	def, ok := definition(reg, t.action)
	if !ok {
		return nil, fmt.Errorf("agent: action %q is not in Toolbox.Actions (internal/plugins.Builtin registers it)", t.action)
	}
	s := playbooks.ParamsSchema(def.NewParams())
	props, _ := s["properties"].(map[string]any)
	props = maps.Clone(props)
	for _, h := range t.hide {
		delete(props, h)
	}
	for k := range t.fixed {
		delete(props, k)
	}
	all := maps.Clone(props)
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	switch t.subject {
	case subjectPod:
		all["namespace"] = str("The pod's namespace (default: the finding's).")
		all["pod"] = str("The pod's name, or a workload's (its least healthy pod is used); default: the finding's subject.")
		if _, ok := all["container"]; !ok {
			all["container"] = str("The container (default: the failing one).")
		}
	case subjectWorkload:
		all["kind"] = map[string]any{"type": "string", "enum": []any{"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod", "Node"},
			"description": "The kind of object (default: the finding's subject)."}
		all["namespace"] = str("Its namespace (default: the finding's).")
		all["name"] = str("Its name (default: the finding's subject).")
	case subjectNode:
		all["node"] = str("The node's name (default: the finding's node).")
	}
	return &boundTool{actionTool: *t, reg: reg, env: env, base: base, policy: policy, params: props, spec: llm.ToolSpec{
		Name: t.name, Description: t.doc,
		Parameters: map[string]any{"type": "object", "properties": all, "additionalProperties": false},
	}}, nil
}

func definition(reg *actions.Registry, name string) (actions.Definition, bool) {
	for _, d := range reg.Definitions() {
		if d.Name == name {
			return d, true
		}
	}
	return actions.Definition{}, false
}

// Call runs the action against an event naming the object asked for and
// returns its enrichments as text.
func (t *boundTool) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var args map[string]any
	if err := dec.Decode(&args); err != nil {
		return "", fmt.Errorf("arguments are not a JSON object: %v", err)
	}
	ev := t.base
	ev.ID, ev.Kind = "investigation", event.KindManual
	ev.Labels, ev.Annotations = maps.Clone(ev.Labels), maps.Clone(ev.Annotations)
	subj := ev.Subject
	take := func(key string) string {
		v, ok := args[key]
		delete(args, key)
		if !ok || v == nil {
			return ""
		}
		return strings.TrimSpace(fmt.Sprint(v))
	}
	switch t.subject {
	case subjectPod:
		ns, pod := take("namespace"), take("pod")
		container := ""
		if _, isParam := t.params["container"]; !isParam {
			container = take("container")
		}
		if pod != "" && pod != subj.Name {
			subj = event.Subject{Kind: "Pod", Namespace: firstNonEmpty(ns, subj.Namespace), Name: pod, Container: container}
			ev.Raw = nil
		} else if ns != "" {
			subj.Namespace = ns
		}
		if container != "" {
			subj.Container = container
		}
	case subjectWorkload:
		kind, ns, name := take("kind"), take("namespace"), take("name")
		if name != "" && (name != subj.Name || (kind != "" && kind != subj.Kind)) {
			subj = event.Subject{Kind: firstNonEmpty(kind, "Deployment"), Namespace: firstNonEmpty(ns, subj.Namespace), Name: name}
			if subj.Kind == "Node" {
				subj.Namespace, subj.Node = "", name
			}
			ev.Raw = nil
		} else if ns != "" {
			subj.Namespace = ns
		}
	case subjectNode:
		if node := take("node"); node != "" {
			subj = event.Subject{Kind: "Node", Name: node, Node: node}
			ev.Raw = nil
		}
	}
	ev.Subject = subj
	if subj.Kind != "" && subj.Kind != "Node" {
		// The alert's labels must not name another object than the one asked for.
		for _, l := range []string{"pod", "pod_name", "deployment", "statefulset", "daemonset", "job_name", "container", "container_name"} {
			delete(ev.Labels, l)
		}
		if subj.Namespace != "" && ev.Labels != nil {
			ev.Labels["namespace"] = subj.Namespace
		}
	}
	if err := t.policy.Check(subj.Namespace); err != nil {
		return "", err
	}
	if ns, ok := args["namespace"].(string); ok {
		if err := t.policy.Check(ns); err != nil {
			return "", err
		}
	}
	if ns := ev.Labels["namespace"]; ns != "" {
		if err := t.policy.Check(ns); err != nil {
			return "", err
		}
	}
	for k, v := range t.fixed {
		args[k] = v
	}
	node, err := argsNode(args)
	if err != nil {
		return "", err
	}
	a, err := t.reg.Build(t.action, node)
	if err != nil {
		return "", fmt.Errorf("%s: %v", t.name, err)
	}
	f := event.NewFinding(ev, time.Now())
	if err := a.Run(ctx, t.env, f); err != nil {
		return "", fmt.Errorf("%s: %w", t.name, err)
	}
	return RenderEnrichments(f.Enrichments), nil
}

// argsNode turns the model's arguments into the YAML node the registry
// decodes (JSON is YAML; the line numbers in errors are the JSON's).
func argsNode(args map[string]any) (*yaml.Node, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("arguments: %v", err)
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	return doc.Content[0], nil
}

// RenderEnrichments is enrichments as plain text for a model: titles,
// markdown, tables as rows, logs, links.
func RenderEnrichments(es []event.Enrichment) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "## %s\n", e.Title)
		for _, bl := range e.Blocks {
			switch bl.Kind {
			case event.BlockMarkdown:
				b.WriteString(strings.TrimSpace(bl.Markdown))
				b.WriteByte('\n')
			case event.BlockTable:
				if bl.Table == nil {
					continue
				}
				if len(bl.Table.Headers) > 0 {
					b.WriteString(strings.Join(bl.Table.Headers, " | "))
					b.WriteByte('\n')
				}
				for _, r := range bl.Table.Rows {
					b.WriteString(strings.Join(r, " | "))
					b.WriteByte('\n')
				}
			case event.BlockLog:
				if bl.Log == nil {
					continue
				}
				fmt.Fprintf(&b, "--- %s", bl.Log.Source)
				if bl.Log.Truncated {
					b.WriteString(" (earlier lines left out)")
				}
				b.WriteString("\n")
				b.WriteString(strings.TrimRight(bl.Log.Text, "\n"))
				b.WriteByte('\n')
			case event.BlockLinks:
				for _, l := range bl.Links {
					fmt.Fprintf(&b, "%s: %s\n", l.Label, l.URL)
				}
			case event.BlockImage:
				// a picture says nothing to a text model; the table beside it does
			}
		}
	}
	return b.String()
}

// listPodsTool lists the pods of a namespace, or those a label selector
// picks: what an on-demand investigation of a namespace starts from.
type listPodsTool struct {
	env    *actions.Env
	base   event.Event
	policy NamespacePolicy
}

func (listPodsTool) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: "list_pods", Description: "List the pods of a namespace (least healthy first: status, ready, restarts, node), optionally only those a label selector picks (app=cart,tier!=db).",
		Parameters: map[string]any{"type": "object", "additionalProperties": false,
			"properties": map[string]any{
				"namespace":      map[string]any{"type": "string", "description": "The namespace (default: the finding's)."},
				"label_selector": map[string]any{"type": "string", "description": "A Kubernetes label selector."},
				"max_pods":       map[string]any{"type": "integer", "description": "Rows shown (default 30)."},
			}}}
}

func (t *listPodsTool) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	var a struct {
		Namespace     string `json:"namespace"`
		LabelSelector string `json:"label_selector"`
		MaxPods       int    `json:"max_pods"`
	}
	if err := strictJSON(raw, &a); err != nil {
		return "", err
	}
	ns := firstNonEmpty(a.Namespace, t.base.Subject.Namespace, t.base.Labels["namespace"])
	if ns == "" {
		return "", errors.New("namespace is required")
	}
	if err := t.policy.Check(ns); err != nil {
		return "", err
	}
	if t.env == nil || t.env.Kube == nil {
		return "", errors.New("no Kubernetes cluster is configured")
	}
	if a.MaxPods <= 0 || a.MaxPods > 200 {
		a.MaxPods = 30
	}
	list, err := t.env.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: a.LabelSelector})
	if err != nil {
		return "", fmt.Errorf("list pods in %s: %w", ns, err)
	}
	what := "namespace " + ns
	if a.LabelSelector != "" {
		what += " (" + a.LabelSelector + ")"
	}
	return RenderEnrichments([]event.Enrichment{{
		Title: fmt.Sprintf("Pods of %s (%d)", what, len(list.Items)), Blocks: []event.Block{kube.PodsBlock(list.Items, a.MaxPods, what)},
	}}), nil
}

// runbookTool is a tool whose results name runbooks for the transcript.
type runbookTool interface {
	runbooksIn(out string) []Runbook
}

// kbSearchTool searches the knowledge base.
type kbSearchTool struct {
	kb   *rag.Retriever
	topK int
}

// kbFetchTool reads one runbook whole.
type kbFetchTool struct {
	kb *rag.Retriever
}

func (kbSearchTool) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: "search_runbooks", Description: "Search the knowledge base of runbooks (the team's and medic's) for a symptom, an alert name or an error message. Returns the best runbooks with an excerpt; fetch_runbook reads one whole.",
		Parameters: map[string]any{"type": "object", "additionalProperties": false, "required": []any{"query"},
			"properties": map[string]any{"query": map[string]any{"type": "string", "description": "What to search for: alert name, error line, symptom."}}}}
}

func (t *kbSearchTool) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	var a struct {
		Query string `json:"query"`
	}
	if err := strictJSON(raw, &a); err != nil {
		return "", err
	}
	if strings.TrimSpace(a.Query) == "" {
		return "", errors.New("query is required")
	}
	hits, err := t.kb.Search(ctx, a.Query, t.topK, 1)
	if err != nil {
		return "", fmt.Errorf("knowledge-base search: %w", err)
	}
	if len(hits) == 0 {
		return "No runbook matches.", nil
	}
	var b strings.Builder
	for i, h := range hits {
		fmt.Fprintf(&b, "[%d] %s\n", i+1, h.Title)
		if h.URL != "" {
			fmt.Fprintf(&b, "url: %s\n", h.URL)
		}
		fmt.Fprintf(&b, "source: %s\n", h.Source)
		if len(h.RunbookFor) > 0 {
			fmt.Fprintf(&b, "runbook for: %s\n", strings.Join(h.RunbookFor, ", "))
		}
		fmt.Fprintf(&b, "excerpt: %s\n\n", clip(h.Text, 600))
	}
	return b.String(), nil
}

func (t *kbSearchTool) runbooksIn(out string) []Runbook { return parseRunbooks(out) }

func (kbFetchTool) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: "fetch_runbook", Description: "Read one runbook whole: by its url (from search_runbooks) or by the alert name it is the runbook for.",
		Parameters: map[string]any{"type": "object", "additionalProperties": false,
			"properties": map[string]any{
				"url":   map[string]any{"type": "string", "description": "The runbook's URL."},
				"alert": map[string]any{"type": "string", "description": "An alert name, e.g. KubePodCrashLooping."},
			}}}
}

// maxRunbookChunks bounds one fetch (the loop's output limit cuts it too).
const maxRunbookChunks = 40

func (t *kbFetchTool) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	var a struct {
		URL   string `json:"url"`
		Alert string `json:"alert"`
	}
	if err := strictJSON(raw, &a); err != nil {
		return "", err
	}
	if a.URL == "" && a.Alert == "" {
		return "", errors.New("url or alert is required")
	}
	if t.kb == nil || t.kb.Store == nil {
		return "", errors.New("no knowledge base")
	}
	hits, err := t.kb.Store.Search(ctx, rag.Query{RunbookURL: a.URL, Alert: a.Alert, TopK: maxRunbookChunks})
	if err != nil {
		return "", fmt.Errorf("knowledge base: %w", err)
	}
	if len(hits) == 0 {
		return "No such runbook.", nil
	}
	first := hits[0]
	var b strings.Builder
	fmt.Fprintf(&b, "[1] %s\n", first.Title)
	if first.URL != "" {
		fmt.Fprintf(&b, "url: %s\n", first.URL)
	}
	fmt.Fprintf(&b, "source: %s\n\n", first.Source)
	for _, h := range hits {
		if h.Source != first.Source || h.Root != first.Root {
			continue
		}
		if h.Heading != "" {
			fmt.Fprintf(&b, "### %s\n", h.Heading)
		}
		b.WriteString(strings.TrimSpace(h.Text))
		b.WriteString("\n\n")
	}
	return b.String(), nil
}

func (t *kbFetchTool) runbooksIn(out string) []Runbook { return parseRunbooks(out) }

// parseRunbooks reads back the runbooks a KB tool listed ("[n] title",
// "url: …", "source: …").
func parseRunbooks(out string) []Runbook {
	var rbs []Runbook
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "[") && strings.Contains(line, "] "):
			_, title, _ := strings.Cut(line, "] ")
			rbs = append(rbs, Runbook{Title: title})
		case len(rbs) > 0 && strings.HasPrefix(line, "url: "):
			rbs[len(rbs)-1].URL = strings.TrimPrefix(line, "url: ")
		case len(rbs) > 0 && strings.HasPrefix(line, "source: "):
			rbs[len(rbs)-1].Source = strings.TrimPrefix(line, "source: ")
		}
	}
	return rbs
}

func strictJSON(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("arguments: %v", err)
	}
	return nil
}

// Toolbox is what tools run against.
type Toolbox struct {
	// Actions builds the evidence tools' actions (internal/plugins.Builtin's
	// registry); required.
	Actions *actions.Registry
	// Env is what those actions and the tools run with, as in playbooks.
	Env    *actions.Env
	KB     *rag.Retriever
	Policy NamespacePolicy
	// TopK is how many runbooks a search returns.
	TopK int
	// Only, when set, limits the tools to these names.
	Only []string
	// Alertmanager, when set, adds the active_alerts tool.
	Alertmanager *Alertmanager
	// Extra are tools from elsewhere: the configured MCP servers'.
	Extra []Tool
}

// Tools returns the tools for an investigation of base (the finding's event,
// or what `medic investigate` was pointed at). Evidence tools that need a
// capability medic lacks are still offered: they say what is missing.
func (tb Toolbox) Tools(base event.Event) ([]Tool, error) {
	if tb.Actions == nil {
		return nil, errors.New("agent: Toolbox.Actions is nil: pass the binary's action registry (internal/plugins.Builtin)")
	}
	var out []Tool
	for i := range evidenceTools {
		t := &evidenceTools[i]
		if len(tb.Only) > 0 && !slices.Contains(tb.Only, t.name) {
			continue
		}
		if t.action == "prometheus_enricher" && tb.Env.PrometheusAPI() == nil {
			continue // no Prometheus: a tool that always fails only costs turns
		}
		bt, err := t.bind(tb.Actions, tb.Env, base, tb.Policy)
		if err != nil {
			return nil, err
		}
		out = append(out, bt)
	}
	if lp := (&listPodsTool{env: tb.Env, base: base, policy: tb.Policy}); len(tb.Only) == 0 || slices.Contains(tb.Only, "list_pods") {
		out = append(out, lp)
	}
	if len(tb.Only) == 0 || slices.Contains(tb.Only, "rollout_history") {
		out = append(out, &rolloutTool{env: tb.Env, base: base, policy: tb.Policy})
	}
	if tb.Alertmanager != nil && tb.Alertmanager.URL != "" && (len(tb.Only) == 0 || slices.Contains(tb.Only, "active_alerts")) {
		out = append(out, &alertsTool{am: tb.Alertmanager, policy: tb.Policy})
	}
	if tb.KB != nil && tb.KB.Store != nil {
		topK := tb.TopK
		if topK <= 0 {
			topK = 3
		}
		for _, t := range []Tool{&kbSearchTool{kb: tb.KB, topK: topK}, &kbFetchTool{kb: tb.KB}} {
			if len(tb.Only) == 0 || slices.Contains(tb.Only, t.Spec().Name) {
				out = append(out, t)
			}
		}
	}
	for _, t := range tb.Extra {
		if len(tb.Only) == 0 || slices.Contains(tb.Only, t.Spec().Name) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Specs are the specifications of every built-in tool, their actions'
// parameters read from reg, as a model is offered them when medic has a
// cluster, Prometheus and a knowledge base (the evaluation mocks their
// results).
func Specs(reg *actions.Registry) ([]llm.ToolSpec, error) {
	var out []llm.ToolSpec
	for i := range evidenceTools {
		bt, err := evidenceTools[i].bind(reg, nil, event.Event{}, NamespacePolicy{})
		if err != nil {
			return nil, err
		}
		out = append(out, bt.Spec())
	}
	return append(out, listPodsTool{}.Spec(), rolloutTool{}.Spec(), alertsTool{}.Spec(), kbSearchTool{}.Spec(), kbFetchTool{}.Spec()), nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
