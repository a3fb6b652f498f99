package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// The silencers that look at the cluster (Robusta's pod_status_silencer and
// node_restart_silencer, same names and parameters). When the cluster
// cannot answer they do not silence: a finding delivered with a note saying
// why the silencer could not decide is better than one lost to a guess.

// PodStatusSilencerParams are pod_status_silencer's parameters.
type PodStatusSilencerParams struct {
	// Include: silence unless the pod's status is one of these.
	Include []string `yaml:"include"`
	// Exclude: silence when the pod's status is one of these.
	Exclude []string `yaml:"exclude"`
}

// Validate requires a list: without one the action would do nothing.
func (p *PodStatusSilencerParams) Validate() error {
	if len(p.Include) == 0 && len(p.Exclude) == 0 {
		return errors.New("include and exclude are both empty: list the pod statuses (Pending, Evicted, ContainerCreating, …) to keep or to silence")
	}
	return nil
}

// NodeRestartSilencerParams are node_restart_silencer's parameters.
type NodeRestartSilencerParams struct {
	// PostRestartSilence is how long after the node became Ready alerts
	// about its pods are silenced, in seconds.
	PostRestartSilence int `yaml:"post_restart_silence"`
}

// Validate rejects a negative period.
func (p *NodeRestartSilencerParams) Validate() error {
	if p.PostRestartSilence < 0 {
		return fmt.Errorf("post_restart_silence is %d: it is a number of seconds, 0 or more", p.PostRestartSilence)
	}
	return nil
}

func addSilencers(r *actions.Registry) {
	actions.Add(r, "pod_status_silencer",
		"Silence the finding by the status of its pod: unless the status is in include, or when it is in exclude. A pod's statuses are its phase (Pending, Running, …), its reason (Evicted, …), its containers' waiting or terminated reasons (ContainerCreating, CrashLoopBackOff, OOMKilled, …) and Terminating while it is deleted. Robusta's pod_status_silencer.",
		func() *PodStatusSilencerParams { return &PodStatusSilencerParams{} },
		func(p *PodStatusSilencerParams) (actions.Runner[kubeDeps], error) {
			include, exclude := slices.Clone(p.Include), slices.Clone(p.Exclude)
			return runSilencer("pod_status_silencer", "Pod status silencer", func(_ context.Context, _ kubernetes.Interface, pod *corev1.Pod, f *event.Finding) error {
				if reason := podStatusSilence(podStatuses(pod), include, exclude); reason != "" {
					actions.Silence(f, "pod_status_silencer", "pod "+ref(pod.Namespace, pod.Name)+" "+reason)
				}
				return nil
			}), nil
		})
	actions.Add(r, "node_restart_silencer",
		"Silence a pod's finding when the pod's node became Ready less than post_restart_silence seconds ago (the node's Ready condition, or its creation without one). Findings about other objects are left alone. Robusta's node_restart_silencer.",
		func() *NodeRestartSilencerParams { return &NodeRestartSilencerParams{PostRestartSilence: 300} },
		func(p *NodeRestartSilencerParams) (actions.Runner[kubeDeps], error) {
			period := time.Duration(p.PostRestartSilence) * time.Second
			return runSilencer("node_restart_silencer", "Node restart silencer", func(ctx context.Context, kc kubernetes.Interface, pod *corev1.Pod, f *event.Finding) error {
				nodeName := pod.Spec.NodeName
				if nodeName == "" {
					return nil // not scheduled: no node to have restarted
				}
				c := call{verb: "get", resource: "nodes", name: nodeName}
				node, err := kc.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
				if err != nil {
					return c.explain(err)
				}
				since := nodeUpSince(node)
				if up := time.Since(since); up < period {
					actions.Silence(f, "node_restart_silencer", fmt.Sprintf("node %s of pod %s became ready %s ago (at %s), within post_restart_silence %s",
						nodeName, ref(pod.Namespace, pod.Name), fmtDuration(up), since.UTC().Format(timeLayout), fmtDuration(period)))
				}
				return nil
			}), nil
		})
}

// runSilencer is run for a silencer, which decides on the subject pod: the
// body gets the typed client and that pod. Any other subject is nothing to
// decide (no note, and no cluster needed), as Robusta's silencers skip
// events without a pod.
func runSilencer(source, title string, body func(ctx context.Context, kc kubernetes.Interface, pod *corev1.Pod, f *event.Finding) error) actions.Runner[kubeDeps] {
	return run(source, title, func(ctx context.Context, d kubeDeps, f *event.Finding) error {
		if SubjectOf(&f.Event).Kind != "Pod" {
			return nil
		}
		kc, err := client(d)
		if err != nil {
			return err
		}
		rp, err := resolvePod(ctx, kc, &f.Event)
		if err != nil {
			return err
		}
		return body(ctx, kc, rp.Pod, f)
	})
}

// podStatuses lists the words kubectl and Robusta users call a pod's
// status: its phase, its reason, each container's waiting or terminated
// reason, and Terminating while it is being deleted.
func podStatuses(pod *corev1.Pod) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(string(pod.Status.Phase))
	add(pod.Status.Reason)
	if pod.DeletionTimestamp != nil {
		add("Terminating")
	}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			switch {
			case cs.State.Waiting != nil:
				add(cs.State.Waiting.Reason)
			case cs.State.Terminated != nil:
				add(cs.State.Terminated.Reason)
			}
		}
	}
	return out
}

// podStatusSilence says why a pod with statuses is silenced, or "".
func podStatusSilence(statuses, include, exclude []string) string {
	in := func(list []string) string {
		for _, s := range statuses {
			if slices.ContainsFunc(list, func(w string) bool { return strings.EqualFold(w, s) }) {
				return s
			}
		}
		return ""
	}
	if len(include) > 0 && in(include) == "" {
		return "is " + strings.Join(statuses, ", ") + ", none of include (" + strings.Join(include, ", ") + ")"
	}
	if s := in(exclude); s != "" {
		return "is " + s + ", in exclude"
	}
	return ""
}

// nodeUpSince is when a node last became Ready (the Ready condition's last
// transition), or its creation when it reports no Ready condition yet.
func nodeUpSince(node *corev1.Node) time.Time {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return node.CreationTimestamp.Time
}
