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

// getter is the Get of one typed client: kc.AppsV1().Deployments(ns) and
// the like.
type getter[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
}

// workloadKind is what one kind of workload means to the actions, in one
// row: the alert label that names it, how to read one, the selector of its
// pods and its status. The status enrichers, related_pods, job_info_enricher,
// workloadRef and resolvePod all read workloadKinds, so a kind is taught to
// medic here once rather than in a switch per action.
type workloadKind struct {
	kind string // "Deployment"
	// label names one on an alert (kube-state-metrics, kubernetes-mixin);
	// "" where no alert label does.
	label string
	// enricher is the kind's <kind>_status_enricher and help its
	// description; "" where the kind has none of its own (a Job's status
	// comes with its pods in job_info_enricher).
	enricher, help string
	read           func(ctx context.Context, kc kubernetes.Interface, namespace, name string) (workload, error)
}

// workload is one object read through its kind's row.
type workload struct {
	pods   *metav1.LabelSelector // selects its pods
	status func() []event.Block  // rendered only by those that show it
}

// reader is a row's read: get the object with its typed client, keep its
// pod selector and its status renderer.
func reader[T any](typed func(kc kubernetes.Interface, namespace string) getter[T], pods func(T) *metav1.LabelSelector, status func(T) []event.Block) func(context.Context, kubernetes.Interface, string, string) (workload, error) {
	return func(ctx context.Context, kc kubernetes.Interface, namespace, name string) (workload, error) {
		o, err := typed(kc, namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return workload{}, err
		}
		w := workload{pods: pods(o), status: func() []event.Block { return nil }}
		if status != nil {
			w.status = func() []event.Block { return status(o) }
		}
		return w, nil
	}
}

var workloadKinds = []workloadKind{
	{
		kind: "Deployment", label: "deployment", enricher: "deployment_status_enricher",
		help: "Add the deployment's replicas (desired, updated, ready, available), rollout strategy, images and conditions. The deployment is the subject, the deployment label, or the owner of the subject pod.",
		read: reader(func(kc kubernetes.Interface, ns string) getter[*appsv1.Deployment] {
			return kc.AppsV1().Deployments(ns)
		},
			func(d *appsv1.Deployment) *metav1.LabelSelector { return d.Spec.Selector }, DeploymentBlocks),
	},
	{
		kind: "StatefulSet", label: "statefulset", enricher: "statefulset_status_enricher",
		help: "Add the statefulset's replicas (desired, ready, current, updated), revisions, update strategy and conditions.",
		read: reader(func(kc kubernetes.Interface, ns string) getter[*appsv1.StatefulSet] {
			return kc.AppsV1().StatefulSets(ns)
		},
			func(s *appsv1.StatefulSet) *metav1.LabelSelector { return s.Spec.Selector }, StatefulSetBlocks),
	},
	{
		kind: "DaemonSet", label: "daemonset", enricher: "daemonset_status_enricher",
		help: "Add the daemonset's scheduled, ready, updated, available and misscheduled counts and conditions.",
		read: reader(func(kc kubernetes.Interface, ns string) getter[*appsv1.DaemonSet] { return kc.AppsV1().DaemonSets(ns) },
			func(d *appsv1.DaemonSet) *metav1.LabelSelector { return d.Spec.Selector }, DaemonSetBlocks),
	},
	{
		kind: "Job", label: "job_name",
		read: reader(func(kc kubernetes.Interface, ns string) getter[*batchv1.Job] { return kc.BatchV1().Jobs(ns) },
			jobPods, JobBlocks),
	},
	{
		kind: "ReplicaSet",
		read: reader(func(kc kubernetes.Interface, ns string) getter[*appsv1.ReplicaSet] {
			return kc.AppsV1().ReplicaSets(ns)
		},
			func(r *appsv1.ReplicaSet) *metav1.LabelSelector { return r.Spec.Selector }, nil),
	},
}

// jobPods is a job's pod selector; a job read without one is found by the
// job-name label the Job controller puts on its pods.
func jobPods(j *batchv1.Job) *metav1.LabelSelector {
	if j.Spec.Selector != nil {
		return j.Spec.Selector
	}
	return &metav1.LabelSelector{MatchLabels: map[string]string{"job-name": j.Name}}
}

// workloadKindOf returns kind's row; ok is false for a kind that is not a
// workload medic knows (a Pod, a Node, a CronJob).
func workloadKindOf(kind string) (k workloadKind, ok bool) {
	for _, k := range workloadKinds {
		if k.kind == kind {
			return k, true
		}
	}
	return workloadKind{}, false
}

// get reads the workload namespace/name, the failure worded for a human.
func (k workloadKind) get(ctx context.Context, kc kubernetes.Interface, namespace, name string) (workload, error) {
	w, err := k.read(ctx, kc, namespace, name)
	if err != nil {
		return workload{}, call{verb: "get", resource: strings.ToLower(k.kind) + "s", namespace: namespace, name: name}.explain(err)
	}
	return w, nil
}

// find reads the workload of this kind the event is about (see workloadRef).
func (k workloadKind) find(ctx context.Context, kc kubernetes.Interface, ev *event.Event) (namespace, name string, w workload, err error) {
	if namespace, name, err = workloadRef(ctx, kc, ev, k.kind); err != nil {
		return "", "", workload{}, err
	}
	w, err = k.get(ctx, kc, namespace, name)
	return namespace, name, w, err
}

func addWorkloads(r *actions.Registry) {
	for _, k := range workloadKinds {
		if k.enricher != "" {
			registerStatusEnricher(r, k)
		}
	}

	actions.Add(r, "job_info_enricher",
		"Add the job's status (completions, failures, backoff limit, conditions such as BackoffLimitExceeded) and its pods.",
		func() *PodsParams { return &PodsParams{MaxPods: 10} },
		func(p *PodsParams) (actions.Runner[kubeDeps], error) {
			maxPods := p.MaxPods
			jobs, _ := workloadKindOf("Job")
			return runOnCluster("job_info_enricher", "Job", func(ctx context.Context, kc kubernetes.Interface, f *event.Finding) error {
				ns, name, job, err := jobs.find(ctx, kc, &f.Event)
				if err != nil {
					return err
				}
				blocks := job.status()
				pods, err := selectPods(ctx, kc, ns, job.pods)
				if err != nil {
					blocks = append(blocks, event.MarkdownBlock("⚠ "+err.Error()))
				} else {
					blocks = append(blocks, PodsBlock(pods, maxPods, "job "+ref(ns, name)))
				}
				f.Add(event.Enrichment{Title: "Job " + ref(ns, name), Source: "job_info_enricher", Blocks: blocks})
				return nil
			}), nil
		})

	actions.Add(r, "related_pods",
		"Add a table of the pods of the subject's workload (deployment, statefulset, daemonset, job, replicaset, the subject pod's owner) or node: status, ready, restarts, node; least healthy first.",
		func() *PodsParams { return &PodsParams{MaxPods: 20} },
		func(p *PodsParams) (actions.Runner[kubeDeps], error) {
			maxPods := p.MaxPods
			return runOnCluster("related_pods", "Related pods", func(ctx context.Context, kc kubernetes.Interface, f *event.Finding) error {
				kind, ns, name, err := relatedOwner(ctx, kc, &f.Event)
				if err != nil {
					return err
				}
				var pods []corev1.Pod
				if kind == "Node" {
					pods, err = nodePods(ctx, kc, name)
				} else {
					pods, err = workloadPods(ctx, kc, kind, ns, name)
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

// registerStatusEnricher registers k's <kind>_status_enricher: the same
// action for every kind, its status rendered by the kind's row.
func registerStatusEnricher(r *actions.Registry, k workloadKind) {
	actions.Add(r, k.enricher, k.help,
		func() *actions.NoParams { return &actions.NoParams{} },
		func(*actions.NoParams) (actions.Runner[kubeDeps], error) {
			return runOnCluster(k.enricher, k.kind+" status", func(ctx context.Context, kc kubernetes.Interface, f *event.Finding) error {
				ns, name, w, err := k.find(ctx, kc, &f.Event)
				if err != nil {
					return err
				}
				f.Add(event.Enrichment{Title: k.kind + " " + ref(ns, name), Source: k.enricher, Blocks: w.status()})
				return nil
			}), nil
		})
}

// relatedOwner is the object whose pods related_pods lists.
func relatedOwner(ctx context.Context, kc kubernetes.Interface, ev *event.Event) (kind, namespace, name string, err error) {
	s := SubjectOf(ev)
	if _, ok := workloadKindOf(s.Kind); ok {
		return s.Kind, s.Namespace, s.Name, nil
	}
	switch s.Kind {
	case "Node":
		return "Node", "", s.Name, nil
	case "Pod":
		rp, err := resolvePod(ctx, kc, ev)
		if err != nil {
			return "", "", "", err
		}
		k, n := ownerWorkload(ctx, kc, rp.Pod)
		if _, ok := workloadKindOf(k); ok {
			return k, rp.Pod.Namespace, n, nil
		}
		if k == "" {
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
	return podTable(pods, max, []string{"pod", "status", "ready", "restarts", "node", "started"}, func(p *corev1.Pod) []string {
		return []string{ref(p.Namespace, p.Name), PodStatusWord(p), readyCount(p), strconv.Itoa(int(totalRestarts(p))),
			p.Spec.NodeName, fmtTimePtr(p.Status.StartTime)}
	})
}

// podTable is a table of pods, least healthy first, at most max rows and a
// last one counting those left out; row gives a pod's cells.
func podTable(pods []corev1.Pod, max int, headers []string, row func(*corev1.Pod) []string) event.Block {
	pods = append([]corev1.Pod(nil), pods...)
	sortPodsWorstFirst(pods)
	omitted := 0
	if max > 0 && len(pods) > max {
		omitted = len(pods) - max
		pods = pods[:max]
	}
	rows := make([][]string, 0, len(pods)+1)
	for i := range pods {
		rows = append(rows, row(&pods[i]))
	}
	if omitted > 0 {
		rows = append(rows, []string{fmt.Sprintf("… %d more", omitted)})
	}
	return table(headers, rows)
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
	return withConditions(blocks, st.Conditions, func(c appsv1.DeploymentCondition) []string {
		return conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime)
	})
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
	return withConditions(blocks, st.Conditions, func(c appsv1.StatefulSetCondition) []string {
		return conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime)
	})
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
	return withConditions(blocks, st.Conditions, func(c appsv1.DaemonSetCondition) []string {
		return conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime)
	})
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
	return withConditions(blocks, st.Conditions, func(c batchv1.JobCondition) []string {
		return conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime)
	})
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
