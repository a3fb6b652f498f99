package kube

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// PodsParams bound the pod tables of related_pods and job_info_enricher.
type PodsParams struct {
	// MaxPods bounds the rows shown, least healthy first.
	MaxPods int `yaml:"max_pods"`
}

// Validate checks bounds.
func (p *PodsParams) Validate() error {
	if p.MaxPods < 1 || p.MaxPods > 500 {
		return fmt.Errorf("max_pods must be between 1 and 500, got %d", p.MaxPods)
	}
	return nil
}

func init() {
	actions.Register("deployment_status_enricher",
		"Add the deployment's replicas (desired, updated, ready, available), rollout strategy, images and conditions. The deployment is the subject, the deployment label, or the owner of the subject pod.",
		func() *actions.NoParams { return &actions.NoParams{} },
		func(*actions.NoParams) (actions.Action, error) {
			return run("deployment_status_enricher", "Deployment status", func(ctx context.Context, env *actions.Env, f *event.Finding) error {
				kc, err := client(env)
				if err != nil {
					return err
				}
				ns, name, err := workloadRef(ctx, kc, &f.Event, "Deployment")
				if err != nil {
					return err
				}
				d, err := kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return call{verb: "get", resource: "deployments", namespace: ns, name: name}.explain(err)
				}
				f.Add(event.Enrichment{Title: "Deployment " + ref(ns, name), Source: "deployment_status_enricher", Blocks: DeploymentBlocks(d)})
				return nil
			}), nil
		})

	actions.Register("statefulset_status_enricher",
		"Add the statefulset's replicas (desired, ready, current, updated), revisions, update strategy and conditions.",
		func() *actions.NoParams { return &actions.NoParams{} },
		func(*actions.NoParams) (actions.Action, error) {
			return run("statefulset_status_enricher", "StatefulSet status", func(ctx context.Context, env *actions.Env, f *event.Finding) error {
				kc, err := client(env)
				if err != nil {
					return err
				}
				ns, name, err := workloadRef(ctx, kc, &f.Event, "StatefulSet")
				if err != nil {
					return err
				}
				s, err := kc.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return call{verb: "get", resource: "statefulsets", namespace: ns, name: name}.explain(err)
				}
				f.Add(event.Enrichment{Title: "StatefulSet " + ref(ns, name), Source: "statefulset_status_enricher", Blocks: StatefulSetBlocks(s)})
				return nil
			}), nil
		})

	actions.Register("daemonset_status_enricher",
		"Add the daemonset's scheduled, ready, updated, available and misscheduled counts and conditions.",
		func() *actions.NoParams { return &actions.NoParams{} },
		func(*actions.NoParams) (actions.Action, error) {
			return run("daemonset_status_enricher", "DaemonSet status", func(ctx context.Context, env *actions.Env, f *event.Finding) error {
				kc, err := client(env)
				if err != nil {
					return err
				}
				ns, name, err := workloadRef(ctx, kc, &f.Event, "DaemonSet")
				if err != nil {
					return err
				}
				d, err := kc.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return call{verb: "get", resource: "daemonsets", namespace: ns, name: name}.explain(err)
				}
				f.Add(event.Enrichment{Title: "DaemonSet " + ref(ns, name), Source: "daemonset_status_enricher", Blocks: DaemonSetBlocks(d)})
				return nil
			}), nil
		})

	actions.Register("job_info_enricher",
		"Add the job's status (completions, failures, backoff limit, conditions such as BackoffLimitExceeded) and its pods.",
		func() *PodsParams { return &PodsParams{MaxPods: 10} },
		func(p *PodsParams) (actions.Action, error) {
			maxPods := p.MaxPods
			return run("job_info_enricher", "Job", func(ctx context.Context, env *actions.Env, f *event.Finding) error {
				kc, err := client(env)
				if err != nil {
					return err
				}
				ns, name, err := workloadRef(ctx, kc, &f.Event, "Job")
				if err != nil {
					return err
				}
				job, err := kc.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return call{verb: "get", resource: "jobs", namespace: ns, name: name}.explain(err)
				}
				blocks := JobBlocks(job)
				sel := job.Spec.Selector
				if sel == nil {
					sel = &metav1.LabelSelector{MatchLabels: map[string]string{"job-name": name}}
				}
				pods, err := selectPods(ctx, kc, ns, sel)
				if err != nil {
					blocks = append(blocks, event.MarkdownBlock("⚠ "+err.Error()))
				} else {
					blocks = append(blocks, PodsBlock(pods, maxPods, "job "+ref(ns, name)))
				}
				f.Add(event.Enrichment{Title: "Job " + ref(ns, name), Source: "job_info_enricher", Blocks: blocks})
				return nil
			}), nil
		})

	actions.Register("related_pods",
		"Add a table of the pods of the subject's workload (deployment, statefulset, daemonset, job, replicaset, the subject pod's owner) or node: status, ready, restarts, node; least healthy first.",
		func() *PodsParams { return &PodsParams{MaxPods: 20} },
		func(p *PodsParams) (actions.Action, error) {
			maxPods := p.MaxPods
			return run("related_pods", "Related pods", func(ctx context.Context, env *actions.Env, f *event.Finding) error {
				kc, err := client(env)
				if err != nil {
					return err
				}
				kind, ns, name, err := relatedOwner(ctx, kc, &f.Event)
				if err != nil {
					return err
				}
				var pods []corev1.Pod
				if kind == "Node" {
					pods, err = nodePods(ctx, kc, name)
				} else {
					pods, _, err = workloadPods(ctx, kc, kind, ns, name)
				}
				if err != nil {
					return err
				}
				what := strings.ToLower(kind) + " " + ref(ns, name)
				f.Add(event.Enrichment{
					Title:  fmt.Sprintf("Pods of %s (%d)", what, len(pods)),
					Source: "related_pods",
					Blocks: []event.Block{PodsBlock(pods, maxPods, what)},
				})
				return nil
			}), nil
		})
}

// relatedOwner is the object whose pods related_pods lists.
func relatedOwner(ctx context.Context, kc kubernetes.Interface, ev *event.Event) (kind, namespace, name string, err error) {
	s := SubjectOf(ev)
	switch s.Kind {
	case "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet":
		return s.Kind, s.Namespace, s.Name, nil
	case "Node":
		return "Node", "", s.Name, nil
	case "Pod":
		rp, err := resolvePod(ctx, kc, ev)
		if err != nil {
			return "", "", "", err
		}
		k, n := ownerWorkload(ctx, kc, rp.Pod)
		switch k {
		case "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet":
			return k, rp.Pod.Namespace, n, nil
		case "":
			return "", "", "", problemf("pod %s has no controller, so no related pods", ref(s.Namespace, s.Name))
		}
		return "", "", "", problemf("pod %s belongs to %s %s, whose pods medic cannot list", ref(s.Namespace, s.Name), k, n)
	}
	return "", "", "", problemf("the event names no workload or node (labels deployment, statefulset, daemonset, job_name, pod, node)")
}

// PodsBlock is a table of pods, least healthy first, at most max rows.
func PodsBlock(pods []corev1.Pod, max int, what string) event.Block {
	if len(pods) == 0 {
		return event.MarkdownBlock("No pods for " + what + ".")
	}
	pods = append([]corev1.Pod(nil), pods...)
	sortPodsWorstFirst(pods)
	omitted := 0
	if max > 0 && len(pods) > max {
		omitted = len(pods) - max
		pods = pods[:max]
	}
	rows := make([][]string, 0, len(pods)+1)
	for i := range pods {
		p := &pods[i]
		rows = append(rows, []string{
			ref(p.Namespace, p.Name), PodStatusWord(p), readyCount(p), strconv.Itoa(int(totalRestarts(p))),
			p.Spec.NodeName, fmtTimePtr(p.Status.StartTime),
		})
	}
	if omitted > 0 {
		rows = append(rows, []string{fmt.Sprintf("… %d more", omitted)})
	}
	return table([]string{"pod", "status", "ready", "restarts", "node", "started"}, rows)
}

func i32(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func images(spec corev1.PodSpec) string {
	var out []string
	for _, c := range spec.Containers {
		out = append(out, c.Name+"="+c.Image)
	}
	return strings.Join(out, ", ")
}

func intOrString(v *intstr.IntOrString) string {
	if v == nil {
		return "-"
	}
	return v.String()
}

// rolloutState compares the controller's observed generation with the
// object's, the way `kubectl rollout status` does.
func rolloutState(generation, observed int64, updated, desired int32) string {
	switch {
	case observed < generation:
		return "the controller has not seen the latest change yet"
	case updated < desired:
		return fmt.Sprintf("rollout in progress: %d of %d replicas updated", updated, desired)
	}
	return "up to date"
}

// deploymentRollout adds the Progressing condition's verdict to the
// generation check: a rollout past its progress deadline is stuck.
func deploymentRollout(d *appsv1.Deployment, desired int32) string {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason != "" {
			return "stuck: " + c.Reason
		}
	}
	return rolloutState(d.Generation, d.Status.ObservedGeneration, d.Status.UpdatedReplicas, desired)
}

// DeploymentBlocks is the status of a deployment.
func DeploymentBlocks(d *appsv1.Deployment) []event.Block {
	desired := i32(d.Spec.Replicas, 1)
	st := d.Status
	strategy := string(d.Spec.Strategy.Type)
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		strategy += fmt.Sprintf(" (max surge %s, max unavailable %s)", intOrString(ru.MaxSurge), intOrString(ru.MaxUnavailable))
	}
	paused := ""
	if d.Spec.Paused {
		paused = "yes"
	}
	blocks := []event.Block{kv(
		[2]string{"replicas", fmt.Sprintf("%d desired, %d updated, %d ready, %d available, %d unavailable",
			desired, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas, st.UnavailableReplicas)},
		[2]string{"rollout", deploymentRollout(d, desired)},
		[2]string{"paused", paused},
		[2]string{"strategy", strategy},
		[2]string{"selector", selectorText(d.Spec.Selector)},
		[2]string{"images", images(d.Spec.Template.Spec)},
	)}
	if len(st.Conditions) > 0 {
		rows := make([][]string, 0, len(st.Conditions))
		for _, c := range st.Conditions {
			rows = append(rows, conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime))
		}
		blocks = append(blocks, conditionsTable(rows))
	}
	return blocks
}

// StatefulSetBlocks is the status of a statefulset.
func StatefulSetBlocks(s *appsv1.StatefulSet) []event.Block {
	desired := i32(s.Spec.Replicas, 1)
	st := s.Status
	revision := st.CurrentRevision
	if st.UpdateRevision != "" && st.UpdateRevision != st.CurrentRevision {
		revision += " → " + st.UpdateRevision + " (update in progress)"
	}
	blocks := []event.Block{kv(
		[2]string{"replicas", fmt.Sprintf("%d desired, %d current, %d updated, %d ready, %d available",
			desired, st.CurrentReplicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas)},
		[2]string{"rollout", rolloutState(s.Generation, st.ObservedGeneration, st.UpdatedReplicas, desired)},
		[2]string{"revision", revision},
		[2]string{"update strategy", string(s.Spec.UpdateStrategy.Type)},
		[2]string{"pod management", string(s.Spec.PodManagementPolicy)},
		[2]string{"service", s.Spec.ServiceName},
		[2]string{"images", images(s.Spec.Template.Spec)},
	)}
	if len(st.Conditions) > 0 {
		rows := make([][]string, 0, len(st.Conditions))
		for _, c := range st.Conditions {
			rows = append(rows, conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime))
		}
		blocks = append(blocks, conditionsTable(rows))
	}
	return blocks
}

// DaemonSetBlocks is the status of a daemonset.
func DaemonSetBlocks(d *appsv1.DaemonSet) []event.Block {
	st := d.Status
	blocks := []event.Block{kv(
		[2]string{"pods", fmt.Sprintf("%d desired, %d scheduled, %d ready, %d updated, %d available, %d unavailable",
			st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberReady, st.UpdatedNumberScheduled, st.NumberAvailable, st.NumberUnavailable)},
		[2]string{"misscheduled", nonZero(st.NumberMisscheduled)},
		[2]string{"rollout", rolloutState(d.Generation, st.ObservedGeneration, st.UpdatedNumberScheduled, st.DesiredNumberScheduled)},
		[2]string{"update strategy", string(d.Spec.UpdateStrategy.Type)},
		[2]string{"node selector", fmtMap(d.Spec.Template.Spec.NodeSelector)},
		[2]string{"images", images(d.Spec.Template.Spec)},
	)}
	if len(st.Conditions) > 0 {
		rows := make([][]string, 0, len(st.Conditions))
		for _, c := range st.Conditions {
			rows = append(rows, conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime))
		}
		blocks = append(blocks, conditionsTable(rows))
	}
	return blocks
}

func nonZero(n int32) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(int(n))
}

// JobBlocks is the status of a job, without its pods.
func JobBlocks(j *batchv1.Job) []event.Block {
	st := j.Status
	state := "running"
	for _, c := range st.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobFailed:
			state = "failed"
			if c.Reason != "" {
				state += " (" + c.Reason + ")"
			}
			if c.Message != "" {
				state += ": " + oneLine(c.Message)
			}
		case batchv1.JobComplete:
			state = "complete"
		case batchv1.JobSuspended:
			state = "suspended"
		}
	}
	var owner string
	if o := metav1.GetControllerOf(j); o != nil {
		owner = o.Kind + "/" + o.Name
	}
	duration := ""
	if st.StartTime != nil {
		end := st.CompletionTime
		for _, c := range st.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue && end == nil {
				t := c.LastTransitionTime
				end = &t
			}
		}
		if end != nil {
			duration = fmtDuration(end.Sub(st.StartTime.Time))
		}
	}
	blocks := []event.Block{kv(
		[2]string{"status", state},
		[2]string{"completions", fmt.Sprintf("%d of %d succeeded", st.Succeeded, i32(j.Spec.Completions, 1))},
		[2]string{"pods", fmt.Sprintf("%d active, %d succeeded, %d failed", st.Active, st.Succeeded, st.Failed)},
		[2]string{"parallelism", strconv.Itoa(int(i32(j.Spec.Parallelism, 1)))},
		[2]string{"backoff limit", strconv.Itoa(int(i32(j.Spec.BackoffLimit, 6)))},
		[2]string{"started", fmtTimePtr(st.StartTime)},
		[2]string{"completed", fmtTimePtr(st.CompletionTime)},
		[2]string{"duration", duration},
		[2]string{"controlled by", owner},
		[2]string{"images", images(j.Spec.Template.Spec)},
	)}
	if len(st.Conditions) > 0 {
		rows := make([][]string, 0, len(st.Conditions))
		for _, c := range st.Conditions {
			rows = append(rows, conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime))
		}
		blocks = append(blocks, conditionsTable(rows))
	}
	return blocks
}

func selectorText(sel *metav1.LabelSelector) string {
	if sel == nil {
		return ""
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return ""
	}
	return s.String()
}
