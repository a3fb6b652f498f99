package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/agent/agenttest"
	"github.com/medichq/medic/test/kubeapi"
)

func TestParseTarget(t *testing.T) {
	t.Parallel()
	cases := []struct {
		arg, ns, wantTitle, wantErr string
	}{
		{"pod/cart-7d9", "shop", "Pod shop/cart-7d9", ""},
		{"deploy/cart", "shop", "Deployment shop/cart", ""},
		{"no/worker-3", "", "Node worker-3", ""},
		{"ns/shop", "", "Namespace shop", ""},
		{"alert/KubePodCrashLooping", "shop", "Alert KubePodCrashLooping in namespace shop", ""},
		{"pod/cart-7d9", "", "", "-n NAMESPACE is required for a pod"},
		{"cart-7d9", "shop", "", "want TYPE/NAME"},
		{"secret/db", "shop", "", "want TYPE/NAME"},
	}
	for _, c := range cases {
		ev, err := parseTarget(c.arg, c.ns)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: error %v, want %q", c.arg, err, c.wantErr)
			}
			continue
		}
		if err != nil || ev.Title != c.wantTitle {
			t.Errorf("%s -n %s: %q, %v", c.arg, c.ns, ev.Title, err)
		}
	}
}

// TestInvestigateAgainstRealAPIServer: `medic investigate pod/… -n …` with
// medic's read-only ServiceAccount (deploy/rbac) against a real
// kube-apiserver and the scripted model: the model calls pod_status and
// pod_events, each call is printed as it happens, the results it gets back
// come from the API server, and the answer is printed.
func TestInvestigateAgainstRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	c, admin := kubeapi.StartReadOnly(t, "shop")
	ctx := context.Background()
	pod, err := admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9", Namespace: "shop"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/cart:1.4.2"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Now())
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "app", Image: "shop/cart:1.4.2", RestartCount: 6,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 5m0s restarting failed container"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 2, Reason: "Error", StartedAt: now, FinishedAt: now}},
	}}}
	if _, err := admin.CoreV1().Pods("shop").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Events("shop").Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "cart-7d9.backoff", Namespace: "shop"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", UID: pod.UID},
		Reason:         "BackOff", Message: "Back-off restarting failed container app in pod cart-7d9", Type: corev1.EventTypeWarning,
		Count: 31, FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "kubelet"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	srv := agenttest.New(t, agenttest.Steps(
		agenttest.Reply{Calls: []agenttest.Call{{Name: "pod_status", Args: map[string]any{}}, {Name: "pod_events", Args: map[string]any{"warnings_only": true}}}},
		agenttest.Reply{Text: "## What is happening\ncart-7d9 crash loops (exit 2, 6 restarts)."},
	))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := c.WriteKubeconfig(kubeconfig, kubeapi.MedicUser); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cfg := writeKBConfig(t, fmt.Sprintf("ai: {base_url: %q, chat_model: scripted, max_retries: 0}\nkubernetes: {kubeconfig: %q}\n", srv.BaseURL(), kubeconfig))

	out, stderr, err := runCLI(t, "investigate", "pod/cart-7d9", "-n", "shop", "--config", cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.HasPrefix(out, "## What is happening\ncart-7d9 crash loops") {
		t.Errorf("stdout:\n%s", out)
	}
	for _, want := range []string{"→ pod_status {}", `→ pod_events {"warnings_only":true}`, "pod_status: ", "CrashLoopBackOff", "2 tool calls in 2 turns"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	results := srv.ToolResults()
	if len(results) != 2 || !strings.Contains(results[0].Content, "CrashLoopBackOff") || !strings.Contains(results[0].Content, "exit 2") ||
		!strings.Contains(results[1].Content, "Back-off restarting failed container app") {
		t.Errorf("tool results from the API server: %+v", results)
	}
	first := srv.Requests()[0].Messages[1].Content
	if !strings.Contains(first, "Investigate pod/shop/cart-7d9") {
		t.Errorf("first message:\n%s", first)
	}

	// --json: the answer and its transcript.
	srv2 := agenttest.New(t, agenttest.Steps(agenttest.Reply{Calls: []agenttest.Call{{Name: "list_pods", Args: map[string]any{}}}}, agenttest.Reply{Text: "One pod, crash looping."}))
	cfg = writeKBConfig(t, fmt.Sprintf("ai: {base_url: %q, chat_model: scripted, max_retries: 0}\nkubernetes: {kubeconfig: %q}\n", srv2.BaseURL(), kubeconfig))
	out, stderr, err = runCLI(t, "investigate", "namespace/shop", "--json", "--config", cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var res agent.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if res.Answer != "One pod, crash looping." || len(res.Transcript.Steps) != 1 || res.Transcript.Steps[0].Tool != "list_pods" ||
		!strings.Contains(srv2.ToolResults()[0].Content, "cart-7d9") {
		t.Errorf("result %+v; tool results %+v", res, srv2.ToolResults())
	}
}
