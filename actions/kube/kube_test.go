package kube

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// Every action of the issue is registered, so `medic playbooks validate`
// knows it and its parameters.
func TestActionsRegistered(t *testing.T) {
	names := strings.Join(registered.Names(), ",")
	for _, n := range []string{
		"logs_enricher", "pod_events_enricher", "resource_events_enricher", "pod_status_enricher",
		"pod_issue_investigator", "deployment_status_enricher", "statefulset_status_enricher",
		"daemonset_status_enricher", "job_info_enricher", "related_pods", "node_status_enricher", "resource_yaml",
	} {
		if !strings.Contains(","+names+",", ","+n+",") {
			t.Errorf("action %s is not registered", n)
		}
	}
}

// Parameters are checked at load time, with the line of the problem.
func TestParamsValidation(t *testing.T) {
	tests := []struct {
		action, params, wantErr string
	}{
		{"logs_enricher", "tail_lines: 50\nprevious: true\nfilter_regex: 'error|panic'\nredact: ['token=(\\S+)']", ""},
		{"logs_enricher", "tail_lines: 0", "tail_lines must be between 1 and 5000"},
		{"logs_enricher", "filter_regex: '(['", "filter_regex: error parsing regexp"},
		{"logs_enricher", "redact: ['ok', '(x']", "redact[1]: error parsing regexp"},
		{"logs_enricher", "tail: 10", `unknown parameter "tail"`},
		{"pod_events_enricher", "max_events: 0", "max_events must be between 1 and 500"},
		{"resource_events_enricher", "kind: Deployment\nname: '{{ .Labels.deployment }}'\nwarnings_only: true", ""},
		{"resource_events_enricher", "name: '{{ .Labels.x'", "template name"},
		{"resource_yaml", "kind: Secret", "never shows Secrets"},
		{"resource_yaml", "api_version: v1\nresource: secrets", "never shows Secrets"},
		{"resource_yaml", "api_version: monitoring.coreos.com/v1", "api_version and resource go together"},
		{"related_pods", "max_pods: 1000", "max_pods must be between 1 and 500"},
		{"pod_issue_investigator", "logs: false", ""},
		{"node_status_enricher", "max_pods: 5", ""},
	}
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.params, func(t *testing.T) {
			_, err := buildErr(tt.action, tt.params)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestSubjectOf(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   event.Subject
	}{
		{map[string]string{"namespace": "shop", "pod": "cart-1", "container": "app", "node": "n1"},
			event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-1", Container: "app", Node: "n1"}},
		{map[string]string{"namespace": "shop", "deployment": "cart"}, event.Subject{Kind: "Deployment", Namespace: "shop", Name: "cart"}},
		{map[string]string{"namespace": "db", "statefulset": "pg"}, event.Subject{Kind: "StatefulSet", Namespace: "db", Name: "pg"}},
		{map[string]string{"namespace": "kube-system", "daemonset": "cilium"}, event.Subject{Kind: "DaemonSet", Namespace: "kube-system", Name: "cilium"}},
		{map[string]string{"namespace": "batch", "job_name": "backup-1", "job": "kube-state-metrics"}, event.Subject{Kind: "Job", Namespace: "batch", Name: "backup-1"}},
		{map[string]string{"node": "n2", "instance": "10.0.0.5:9100"}, event.Subject{Kind: "Node", Name: "n2", Node: "n2"}},
		{map[string]string{"instance": "10.0.0.5:9100", "job": "node-exporter"}, event.Subject{}},
	}
	for _, tt := range tests {
		ev := &event.Event{Kind: event.KindPrometheusAlert, Labels: tt.labels}
		if got := SubjectOf(ev); got != tt.want {
			t.Errorf("SubjectOf(%v) = %+v, want %+v", tt.labels, got, tt.want)
		}
	}
	// A Kubernetes trigger's subject wins over labels.
	ev := &event.Event{Kind: event.KindPodCrashLoop, Subject: event.Subject{Kind: "Pod", Namespace: "a", Name: "b"}, Labels: map[string]string{"pod": "other", "container": "c"}}
	if got := SubjectOf(ev); got != (event.Subject{Kind: "Pod", Namespace: "a", Name: "b", Container: "c"}) {
		t.Errorf("subject of a pod event = %+v", got)
	}
}

// logs_enricher reads the failing container's previous instance through
// GetLogs and shows the fake's canned text with its source.
func TestLogsEnricherPrevious(t *testing.T) {
	pod := samplePod(t, "crashloopbackoff/gitops-engine__pod-crashloop.yaml")
	c := newCluster(t, pod)
	f := runActions(t, c.env(), podEvent(event.KindPodCrashLoop, pod, ""), [2]string{"logs_enricher", "previous: true"})
	e := enrichment(t, f, "logs_enricher")
	if len(e.Blocks) != 1 || e.Blocks[0].Kind != event.BlockLog {
		t.Fatalf("want one log block, got %+v", e.Blocks)
	}
	lb := e.Blocks[0].Log
	if lb.Source != "argocd/my-pod container main (previous)" || lb.Text != "fake logs\n" || lb.Truncated {
		t.Errorf("log block = %+v", lb)
	}
	reqs := c.logRequests()
	if len(reqs) != 1 || reqs[0].Container != "main" || !reqs[0].Previous || reqs[0].TailLines == nil || *reqs[0].TailLines != 100 {
		t.Errorf("GetLogs options = %+v", reqs)
	}
}

// Without a previous instance the current logs are shown, and the source
// says so rather than failing.
func TestLogsEnricherNoPreviousInstance(t *testing.T) {
	pod := samplePod(t, "imagepullbackoff/gitops-engine__pod-imagepullbackoff.yaml")
	c := newCluster(t, pod)
	f := runActions(t, c.env(), podEvent(event.KindImagePullBackoff, pod, ""), [2]string{"logs_enricher", "previous: true"})
	lb := enrichment(t, f, "logs_enricher").Blocks[0].Log
	if !strings.Contains(lb.Source, "(current: no previous instance)") {
		t.Errorf("source = %q", lb.Source)
	}
	if reqs := c.logRequests(); len(reqs) != 1 || reqs[0].Previous {
		t.Errorf("GetLogs options = %+v", reqs)
	}
}

// Tail, filter and redaction apply to what the API returned.
func TestLogsEnricherProcessesText(t *testing.T) {
	pod := samplePod(t, "crashloopbackoff/holmesgpt__158__kubectl_get_yaml_pod_frontend-service.txt")
	c := newCluster(t, pod)
	c.logs("stress: info: [1] dispatching hogs: 100 cpu, 0 io, 0 vm, 0 hdd\n" +
		"connecting to postgres://app:hunter2@db:5432/app\n" +
		"stress: FAIL: [1] (415) <-- worker 7 got signal 9\n" +
		"stress: WARN: [1] (417) now reaping child worker processes\n" +
		"stress: FAIL: [1] (451) failed run completed in 0s\n")
	f := runActions(t, c.env(), podEvent(event.KindPodCrashLoop, pod, "stress"),
		[2]string{"logs_enricher", "previous: true\nfilter_regex: 'FAIL|postgres'\ntail_lines: 2"})
	lb := enrichment(t, f, "logs_enricher").Blocks[0].Log
	want := "stress: FAIL: [1] (415) <-- worker 7 got signal 9\nstress: FAIL: [1] (451) failed run completed in 0s\n"
	if lb.Text != want || !lb.Truncated {
		t.Errorf("text = %q (truncated %v), want %q truncated", lb.Text, lb.Truncated, want)
	}
	if lb.Source != "default/frontend-service container stress (previous, lines matching /FAIL|postgres/)" {
		t.Errorf("source = %q", lb.Source)
	}
	if reqs := c.logRequests(); len(reqs) != 1 || *reqs[0].TailLines != maxTailLines {
		t.Errorf("with a filter, more lines are fetched than shown: %+v", reqs)
	}
}

// The four ways the cluster can fail to answer each become a note; the
// action returns nil so the playbook carries on.
func TestActionsDegradeToNotes(t *testing.T) {
	pod := samplePod(t, "crashloopbackoff/gitops-engine__pod-crashloop.yaml")
	ev := podEvent(event.KindPodCrashLoop, pod, "main")
	tests := []struct {
		name    string
		setup   func(c *cluster)
		env     func(c *cluster) *actions.Env
		action  string
		params  string
		wantMsg string
	}{
		{"logs forbidden", func(c *cluster) { c.deny("get", "pods", "log") }, nil, "logs_enricher", "previous: true",
			"⚠ forbidden: cannot get pods/log in namespace argocd"},
		{"pod forbidden", func(c *cluster) { c.deny("get", "pods", "") }, nil, "pod_status_enricher", "",
			"⚠ forbidden: cannot get pods in namespace argocd"},
		{"pod not found", func(c *cluster) { c.missing("pods") }, nil, "logs_enricher", "",
			"⚠ pod argocd/my-pod not found"},
		{"events forbidden", func(c *cluster) { c.deny("list", "events", "") }, nil, "pod_events_enricher", "",
			"⚠ forbidden: cannot list events in namespace argocd"},
		{"no cluster", nil, func(*cluster) *actions.Env { return &actions.Env{} }, "pod_issue_investigator", "",
			"⚠ no Kubernetes cluster configured"},
		{"unknown container", nil, nil, "logs_enricher", "container: sidecar",
			`⚠ pod argocd/my-pod has no container "sidecar" (it has main)`},
		{"deployment not found", nil, nil, "deployment_status_enricher", "",
			"⚠ pod argocd/my-pod has no controller, so no deployment"},
		{"node forbidden", func(c *cluster) { c.deny("get", "nodes", "") }, nil, "node_status_enricher", "",
			"⚠ forbidden: cannot get nodes (medic's service account needs \"get\" on \"nodes\")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, pod)
			if tt.setup != nil {
				tt.setup(c)
			}
			env := c.env()
			if tt.env != nil {
				env = tt.env(c)
			}
			f := runActions(t, env, ev, [2]string{tt.action, tt.params})
			got := noteOf(t, enrichment(t, f, tt.action))
			if !strings.HasPrefix(got, tt.wantMsg) {
				t.Errorf("note = %q, want it to start with %q", got, tt.wantMsg)
			}
		})
	}
}

// A pod that is gone is still described from the copy the Kubernetes
// trigger put in the event, with a note saying so.
func TestPodStatusFromEventSnapshot(t *testing.T) {
	pod := samplePod(t, "oomkilled/is-healthy__oomkilled-unhealthy.yaml")
	c := newCluster(t) // the pod was deleted since
	ev := podEvent(event.KindPodOOMKilled, pod, "oomkilled")
	var err error
	if ev.Raw, err = json.Marshal(pod); err != nil {
		t.Fatal(err)
	}
	f := runActions(t, c.env(), ev, [2]string{"pod_status_enricher", ""}, [2]string{"pod_issue_investigator", "logs: false"})
	st := text(enrichment(t, f, "pod_status_enricher"))
	if !strings.Contains(st, "⚠ pod mission-control/oomkilled-pod not found; showing the pod as recorded in the event.") ||
		!strings.Contains(st, "OOMKilled (exit 1)") {
		t.Errorf("status from snapshot:\n%s", st)
	}
	inv := text(enrichment(t, f, "pod_issue_investigator"))
	if !strings.Contains(inv, "Container oomkilled was OOMKilled (exit code 1); memory limit 200Mi") {
		t.Errorf("investigation from snapshot:\n%s", inv)
	}
}

// pod_events_enricher lists only the pod's events, warnings first.
func TestPodEventsEnricher(t *testing.T) {
	pod, evs := describePod(t, "oomkilled/holmesgpt__01_oom_kill__kubectl_describe.txt")
	other := evs[0].DeepCopy()
	other.Name, other.InvolvedObject.Name, other.Message = "other.1", "another-pod", "not this pod's"
	c := newCluster(t, append(eventsToObjects(evs), pod, other)...)
	f := runActions(t, c.env(), podEvent(event.KindPodOOMKilled, pod, ""), [2]string{"pod_events_enricher", ""})
	e := enrichment(t, f, "pod_events_enricher")
	rows := e.Blocks[0].Table.Rows
	if len(rows) != len(evs) {
		t.Fatalf("got %d rows, want the pod's %d events", len(rows), len(evs))
	}
	if rows[0][0] != "Warning" || rows[0][1] != "BackOff" || rows[0][3] != "23" {
		t.Errorf("first row = %v, want the BackOff warning (x23)", rows[0])
	}
	if strings.Contains(text(e), "not this pod's") {
		t.Error("another pod's event is listed")
	}

	f = runActions(t, c.env(), podEvent(event.KindPodOOMKilled, pod, ""), [2]string{"pod_events_enricher", "warnings_only: true\nmax_events: 5"})
	if rows := enrichment(t, f, "pod_events_enricher").Blocks[0].Table.Rows; len(rows) != 1 {
		t.Errorf("warnings only: %d rows, want 1", len(rows))
	}
}

// resource_events_enricher reads any object's events: the alert's
// deployment, and a node's, recorded in the default namespace.
func TestResourceEventsEnricher(t *testing.T) {
	depEvent := corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "cart.1", Namespace: "shop"},
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "shop", Name: "cart"},
		Type:           "Normal", Reason: "ScalingReplicaSet", Message: "Scaled up replica set cart-7d9f8 to 3",
		Source: corev1.EventSource{Component: "deployment-controller"}, Count: 1, LastTimestamp: metav1.NewTime(sampleBase),
	}
	nodeEvent := corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "n1.1", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "n1"},
		Type:           "Warning", Reason: "OOMKilling", Message: "Memory cgroup out of memory: Kill process 4481 (stress) score 1994 or sacrifice child",
		Source: corev1.EventSource{Component: "kernel-monitor"}, Count: 1, LastTimestamp: metav1.NewTime(sampleBase),
	}
	c := newCluster(t, &depEvent, &nodeEvent)
	f := runActions(t, c.env(), alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "shop", "deployment": "cart"}),
		[2]string{"resource_events_enricher", ""})
	if s := text(enrichment(t, f, "resource_events_enricher")); !strings.Contains(s, "Scaled up replica set cart-7d9f8 to 3") {
		t.Errorf("deployment events:\n%s", s)
	}
	f = runActions(t, c.env(), alertEvent("KubeNodeNotReady", map[string]string{"node": "n1"}), [2]string{"resource_events_enricher", ""})
	if s := text(enrichment(t, f, "resource_events_enricher")); !strings.Contains(s, "Memory cgroup out of memory") {
		t.Errorf("node events:\n%s", s)
	}
	f = runActions(t, c.env(), alertEvent("Custom", map[string]string{"namespace": "shop", "app": "cart"}),
		[2]string{"resource_events_enricher", "kind: deployments\nname: '{{ .Labels.app }}'"})
	if s := text(enrichment(t, f, "resource_events_enricher")); !strings.Contains(s, "Events of deployment shop/cart") {
		t.Errorf("templated object:\n%s", s)
	}
	f = runActions(t, c.env(), alertEvent("Quiet", map[string]string{"namespace": "shop", "statefulset": "db"}), [2]string{"resource_events_enricher", ""})
	if s := text(enrichment(t, f, "resource_events_enricher")); !strings.Contains(s, "No events for statefulset shop/db") {
		t.Errorf("no events:\n%s", s)
	}
}

// A deployment alert's pod actions look at the deployment's least healthy
// pod; a pod alert's deployment action finds the pod's deployment through
// its ReplicaSet.
func TestWorkloadResolution(t *testing.T) {
	dep, rs, pods := cartDeployment(t)
	_, evs := describePod(t, "failedscheduling/holmesgpt__12_KubePodNotReady__kubectl_describe.txt")
	objs := append(eventsToObjects(evs), dep, rs)
	for i := range pods {
		objs = append(objs, &pods[i])
	}
	c := newCluster(t, objs...)
	f := runActions(t, c.env(), alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "default", "deployment": "user-profile-resources"}),
		[2]string{"pod_issue_investigator", ""})
	inv := text(enrichment(t, f, "pod_issue_investigator"))
	if !strings.Contains(inv, "least healthy of deployment default/user-profile-resources's 2 pods") ||
		!strings.Contains(inv, "Insufficient nvidia.com/gpu") {
		t.Errorf("investigation of the deployment's worst pod:\n%s", inv)
	}
	f = runActions(t, c.env(), alertEvent("KubePodNotReady", map[string]string{"namespace": "default", "pod": pods[0].Name}),
		[2]string{"deployment_status_enricher", ""}, [2]string{"related_pods", ""})
	if s := text(enrichment(t, f, "deployment_status_enricher")); !strings.Contains(s, "Deployment default/user-profile-resources") {
		t.Errorf("deployment of the pod:\n%s", s)
	}
	if s := text(enrichment(t, f, "related_pods")); !strings.Contains(s, "Pods of deployment default/user-profile-resources (2)") {
		t.Errorf("related pods:\n%s", s)
	}
	// Without read access to ReplicaSets the deployment name comes from
	// the pod-template-hash.
	c.deny("get", "replicasets", "")
	f = runActions(t, c.env(), alertEvent("KubePodNotReady", map[string]string{"namespace": "default", "pod": pods[0].Name}),
		[2]string{"deployment_status_enricher", ""})
	if s := text(enrichment(t, f, "deployment_status_enricher")); !strings.Contains(s, "Deployment default/user-profile-resources") {
		t.Errorf("deployment of the pod without ReplicaSet access:\n%s", s)
	}
}

// node_status_enricher finds the node of an instance label by address.
func TestNodeByInstanceAddress(t *testing.T) {
	node, pods := notReadyNode()
	objs := []runtime.Object{node}
	for i := range pods {
		objs = append(objs, &pods[i])
	}
	c := newCluster(t, objs...)
	f := runActions(t, c.env(), alertEvent("NodeFilesystemAlmostOutOfSpace", map[string]string{"instance": "10.0.3.17:9100"}),
		[2]string{"node_status_enricher", ""})
	if s := text(enrichment(t, f, "node_status_enricher")); !strings.Contains(s, "Node ip-10-0-3-17.eu-west-1.compute.internal") {
		t.Errorf("node by address:\n%s", s)
	}
}

// resource_yaml never shows a Secret, even when a template names one.
func TestResourceYAMLRefusesSecrets(t *testing.T) {
	sec := &corev1.Secret{TypeMeta: metav1.TypeMeta{Kind: "Secret", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"}, Data: map[string][]byte{"password": []byte("hunter2")}}
	c := newCluster(t, sec)
	f := runActions(t, c.env(), alertEvent("X", map[string]string{"namespace": "shop", "kind": "Secret", "name": "db"}),
		[2]string{"resource_yaml", "kind: '{{ .Labels.kind }}'\nname: '{{ .Labels.name }}'"})
	e := enrichment(t, f, "resource_yaml")
	if got := noteOf(t, e); !strings.Contains(got, "never shows Secrets") || strings.Contains(text(e), "hunter2") {
		t.Errorf("secret: %q", text(e))
	}
}

func TestResourceYAML(t *testing.T) {
	dep, _, _ := cartDeployment(t)
	dep.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"spec":{}}`}
	dep.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
	c := newCluster(t, dep)
	f := runActions(t, c.env(), alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "default", "deployment": dep.Name}),
		[2]string{"resource_yaml", ""})
	s := text(enrichment(t, f, "resource_yaml"))
	if !strings.Contains(s, "kind: Deployment") || !strings.Contains(s, "nvidia.com/gpu") ||
		strings.Contains(s, "managedFields") || strings.Contains(s, "last-applied") {
		t.Errorf("YAML:\n%s", s)
	}
	f = runActions(t, c.env(), alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "default", "deployment": dep.Name}),
		[2]string{"resource_yaml", "max_lines: 5"})
	if s := enrichment(t, f, "resource_yaml").Blocks[0].Log.Text; strings.Count(s, "\n") != 6 || !strings.Contains(s, "more lines (max_lines: 5)") {
		t.Errorf("max_lines:\n%s", s)
	}
	c.dynamic.PrependReactor("get", "deployments", func(a k8sAction) (bool, runtime.Object, error) {
		return true, nil, forbidden("deployments", dep.Name)
	})
	f = runActions(t, c.env(), alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "default", "deployment": dep.Name}),
		[2]string{"resource_yaml", ""})
	if got := noteOf(t, enrichment(t, f, "resource_yaml")); !strings.HasPrefix(got, "⚠ forbidden: cannot get deployments in namespace default") {
		t.Errorf("forbidden YAML: %q", got)
	}
}
