package agent_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/agent/agenttest"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/llm"
)

// builtinActions are the actions medic ships, behind the evidence tools.
var builtinActions = plugins.Builtin().Actions

func tool(t *testing.T, tools []agent.Tool, name string) agent.Tool {
	t.Helper()
	for _, tl := range tools {
		if tl.Spec().Name == name {
			return tl
		}
	}
	t.Fatalf("no tool %s", name)
	return nil
}

// TestToolSchemasComeFromTheActionRegistry: each evidence tool offers its
// action's parameters with the schema the playbook schema has (one
// definition, two callers), minus the redaction switches, plus the object
// to look at.
func TestToolSchemasComeFromTheActionRegistry(t *testing.T) {
	t.Parallel()
	tools, err := agent.Toolbox{Actions: builtinActions, Env: &actions.Env{}, KB: agenttest.KB(t)}.Tools(event.Event{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools {
		names = append(names, tl.Spec().Name)
	}
	want := []string{"pod_logs", "pod_events", "object_events", "pod_status", "pod_diagnosis", "resource_yaml", "related_pods",
		"workload_status", "job_status", "node_status", "list_pods", "rollout_history", "search_runbooks", "fetch_runbook"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("tools %v, want %v (prometheus_query only with Prometheus)", names, want)
	}
	logs := tool(t, tools, "pod_logs").Spec().Parameters["properties"].(map[string]any)
	var def actions.Definition
	for _, d := range builtinActions.Definitions() {
		if d.Name == "logs_enricher" {
			def = d
		}
	}
	registry := playbooks.ParamsSchema(def.NewParams())["properties"].(map[string]any)
	for name, s := range registry {
		if name == "redact" || name == "redact_defaults" {
			if _, offered := logs[name]; offered {
				t.Errorf("pod_logs offers %s: medic always redacts what reaches the model", name)
			}
			continue
		}
		if !reflect.DeepEqual(logs[name], s) {
			t.Errorf("pod_logs.%s = %v, registry says %v", name, logs[name], s)
		}
	}
	for _, p := range []string{"namespace", "pod", "container", "tail_lines", "previous", "filter_regex"} {
		if _, ok := logs[p]; !ok {
			t.Errorf("pod_logs lacks %s", p)
		}
	}
}

// TestActionToolsRunTheActions: calls reach the cluster through the very
// actions the playbooks run, arguments are checked as strictly as a
// playbook's, and denied namespaces are refused before the cluster is asked.
func TestActionToolsRunTheActions(t *testing.T) {
	t.Parallel()
	env := agenttest.Cluster(agenttest.CrashLog, agenttest.CrashingPod())
	base := event.Event{Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9"}}
	tools, err := agent.Toolbox{Actions: builtinActions, Env: env, Policy: agent.NamespacePolicy{Deny: []string{"kube-*"}}}.Tools(base)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		tool, args string
		want       []string
		wantErr    string
	}{
		{"pod_logs", `{"previous": true, "tail_lines": 20}`, []string{"panic: assignment to entry in nil map", "shop/cart-7d9"}, ""},
		{"pod_logs", `{"pod": "cart-7d9", "namespace": "shop", "filter_regex": "panic"}`, []string{"panic: assignment"}, ""},
		{"pod_status", `{}`, []string{"CrashLoopBackOff", "7"}, ""},
		{"pod_diagnosis", `{}`, []string{"panic: assignment to entry in nil map"}, ""},
		{"pod_logs", `{"tail": 5}`, nil, `unknown parameter "tail"`},
		{"pod_logs", `{"tail_lines": 999999}`, nil, "tail_lines must be between 1 and 5000"},
		{"pod_logs", `{"namespace": "kube-system", "pod": "coredns-1"}`, nil, `namespace "kube-system" is not open to the investigation`},
		{"object_events", `{"kind": "Pod", "namespace": "kube-public", "name": "x"}`, nil, `namespace "kube-public" is not open`},
		{"pod_logs", `not json`, nil, "not a JSON object"},
		{"list_pods", `{}`, []string{"cart-7d9", "CrashLoopBackOff"}, ""},
		{"list_pods", `{"label_selector": "app=none"}`, []string{"No pods for namespace shop (app=none)"}, ""},
		{"list_pods", `{"namespace": "kube-system"}`, nil, `namespace "kube-system" is not open`},
	}
	for _, c := range cases {
		out, err := tool(t, tools, c.tool).Call(context.Background(), json.RawMessage(c.args))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s %s: error %v, want %q", c.tool, c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", c.tool, c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s %s lacks %q:\n%s", c.tool, c.args, w, out)
			}
		}
	}
}

// TestKnowledgeBaseTools: search finds the runbook for the alert, fetch
// reads it whole, and both name it for the transcript.
func TestKnowledgeBaseTools(t *testing.T) {
	t.Parallel()
	tools, err := agent.Toolbox{Actions: builtinActions, KB: agenttest.KB(t)}.Tools(event.Event{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tool(t, tools, "search_runbooks").Call(context.Background(), json.RawMessage(`{"query": "KubePodCrashLooping"}`))
	if err != nil || !strings.Contains(out, "url: https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping") {
		t.Fatalf("search: %v\n%s", err, out)
	}
	out, err = tool(t, tools, "fetch_runbook").Call(context.Background(), json.RawMessage(`{"alert": "KubePodCrashLooping"}`))
	if err != nil || !strings.Contains(out, "Kube Pod Crash Looping") || strings.Count(out, "\n") < 20 {
		t.Fatalf("fetch: %v\n%s", err, out)
	}
	if _, err := tool(t, tools, "search_runbooks").Call(context.Background(), json.RawMessage(`{"q": "x"}`)); err == nil {
		t.Error("unknown argument accepted")
	}
}

// TestInvestigatorFallsBackToOneShot: a model that refuses tools gets the
// one-shot prompt; the answer says so, and the next question does not try
// tools again.
func TestInvestigatorFallsBackToOneShot(t *testing.T) {
	t.Parallel()
	srv := agenttest.New(t, agenttest.Steps(agenttest.Reply{Text: "## What is happening\nIt crashes."}))
	srv.RefuseTools()
	client := newModel(t, srv)
	in := &agent.Investigator{Model: client, ModelName: "scripted", OneShot: oneShot(client), Toolbox: agent.Toolbox{Actions: builtinActions}}
	for range 2 {
		res, _, err := in.Investigate(context.Background(), agent.Request{Question: "why does cart crash?"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Answer, "It crashes.") || !strings.Contains(res.Answer, "This model cannot call tools") || res.Transcript.Fallback == "" {
			t.Errorf("answer %q, fallback %q", res.Answer, res.Transcript.Fallback)
		}
	}
	withTools := 0
	for _, r := range srv.Requests() {
		if len(r.Tools) > 0 {
			withTools++
		}
	}
	if n := len(srv.Requests()); n != 3 || withTools != 1 {
		t.Errorf("%d requests, %d with tools; want 3 (refused, one-shot, one-shot) and 1", n, withTools)
	}
}

// TestLanguage: ai.language reaches the prompt (with the headings to use)
// and medic's own titles.
func TestLanguage(t *testing.T) {
	t.Parallel()
	srv := agenttest.New(t, agenttest.Steps(agenttest.Reply{Text: "## Was passiert\nDer Pod stürzt ab."}))
	in := &agent.Investigator{Model: newModel(t, srv), ModelName: "scripted", Language: "de", Toolbox: agent.Toolbox{Actions: builtinActions}}
	es, err := in.InvestigateFinding(context.Background(), &event.Finding{Title: "cart crashes"}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	sys := srv.Requests()[0].Messages[0].Content
	if !strings.Contains(sys, "in the language de") || !strings.Contains(sys, "Was passiert, Wahrscheinliche Ursachen") {
		t.Errorf("system prompt:\n%s", sys)
	}
	if len(es) != 1 || es[0].Title != "KI-Erklärung" || !strings.Contains(es[0].Blocks[0].Markdown, "Der Pod stürzt ab.") {
		t.Errorf("enrichments %+v", es)
	}
}

// oneShot is the real one-shot answer function over the same client.
func oneShot(c *llm.Client) *rag.Service { return &rag.Service{Chat: oneShotChat{c}} }

type oneShotChat struct{ *llm.Client }

// TestRolloutHistory: a deployment's revisions newest first and what
// changed in the pod template, never an environment value.
func TestRolloutHistory(t *testing.T) {
	t.Parallel()
	ctrl := true
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: "shop", UID: "d1"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}}},
	}
	rs := func(rev, image, flags, mem string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "cart-" + rev, Namespace: "shop", Labels: map[string]string{"app": "cart"},
				Annotations:     map[string]string{"deployment.kubernetes.io/revision": rev},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "cart", UID: "d1", Controller: &ctrl}}},
			Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: image, Env: []corev1.EnvVar{{Name: "FEATURE_FLAGS", Value: flags}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)}},
			}}}}},
		}
	}
	env := agenttest.Cluster("", d, rs("1", "shop/cart:1.4.2", "s3cret-old", "256Mi"), rs("2", "shop/cart:1.5.0", "s3cret-new", "128Mi"))
	tools, err := agent.Toolbox{Actions: builtinActions, Env: env}.Tools(event.Event{Subject: event.Subject{Kind: "Deployment", Namespace: "shop", Name: "cart"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tool(t, tools, "rollout_history").Call(context.Background(), json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 revisions", "Changed from revision 1 to 2", "image shop/cart:1.4.2 → shop/cart:1.5.0",
		"env FEATURE_FLAGS changed (value not shown)", "limits.memory=256Mi → limits.memory=128Mi"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "2 | ") > strings.Index(out, "1 | ") || strings.Contains(out, "s3cret") {
		t.Errorf("not newest first, or a value shown:\n%s", out)
	}
}
