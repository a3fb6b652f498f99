package remediate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// RestartedAtAnnotation is what `kubectl rollout restart` sets on the pod
// template; changing it rolls the workload's pods.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// ManagedByLabel marks the objects medic creates (Jobs, debug pods).
const ManagedByLabel = "app.kubernetes.io/managed-by"

// DeletePodParams are delete_pod's parameters.
type DeletePodParams struct {
	Approval `yaml:",inline"`
	// GracePeriodSeconds overrides the pod's termination grace period.
	GracePeriodSeconds *int64 `yaml:"grace_period_seconds"`
}

// Validate rejects a negative grace period.
func (p *DeletePodParams) Validate() error {
	if p.GracePeriodSeconds != nil && *p.GracePeriodSeconds < 0 {
		return errors.New("grace_period_seconds: must not be negative")
	}
	return nil
}

type deletePod struct{ p DeletePodParams }

func (d deletePod) target(_ context.Context, _ Deps, f *event.Finding) (event.Subject, error) {
	return podTarget(f)
}

func (d deletePod) summary(t event.Subject) string { return "delete pod " + ref(t.Namespace, t.Name) }

func (d deletePod) execute(ctx context.Context, deps Deps, t event.Subject, _ Run) (Result, error) {
	kc, err := client(deps)
	if err != nil {
		return Result{}, err
	}
	err = kc.CoreV1().Pods(t.Namespace).Delete(ctx, t.Name, metav1.DeleteOptions{GracePeriodSeconds: d.p.GracePeriodSeconds})
	switch {
	case apierrors.IsNotFound(err):
		return Result{Text: "pod " + ref(t.Namespace, t.Name) + " was already gone"}, nil
	case err != nil:
		return Result{}, fmt.Errorf("delete pod %s: %w", ref(t.Namespace, t.Name), err)
	}
	return Result{Text: "deleted pod " + ref(t.Namespace, t.Name)}, nil
}

// RolloutRestartParams are rollout_restart's parameters.
type RolloutRestartParams struct {
	Approval `yaml:",inline"`
}

type rolloutRestart struct{}

func (rolloutRestart) target(ctx context.Context, deps Deps, f *event.Finding) (event.Subject, error) {
	return workloadTarget(ctx, deps, f, "Deployment", "StatefulSet", "DaemonSet")
}

func (rolloutRestart) summary(t event.Subject) string {
	return "rollout restart " + lower(t.Kind) + " " + ref(t.Namespace, t.Name)
}

// execute patches the pod template's restartedAt annotation as kubectl
// does. The time is the run's, so executing the same run again is a no-op.
func (rolloutRestart) execute(ctx context.Context, deps Deps, t event.Subject, run Run) (Result, error) {
	kc, err := client(deps)
	if err != nil {
		return Result{}, err
	}
	at := run.At.UTC().Format(time.RFC3339)
	patch := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, RestartedAtAnnotation, at)
	opts := metav1.PatchOptions{FieldManager: "medic"}
	switch t.Kind {
	case "Deployment":
		_, err = kc.AppsV1().Deployments(t.Namespace).Patch(ctx, t.Name, types.StrategicMergePatchType, patch, opts)
	case "StatefulSet":
		_, err = kc.AppsV1().StatefulSets(t.Namespace).Patch(ctx, t.Name, types.StrategicMergePatchType, patch, opts)
	case "DaemonSet":
		_, err = kc.AppsV1().DaemonSets(t.Namespace).Patch(ctx, t.Name, types.StrategicMergePatchType, patch, opts)
	default:
		return Result{}, fmt.Errorf("cannot restart a %s", t.Kind)
	}
	if err != nil {
		return Result{}, fmt.Errorf("patch %s %s: %w", lower(t.Kind), ref(t.Namespace, t.Name), err)
	}
	return Result{Text: fmt.Sprintf("restarted %s %s (%s=%s)", lower(t.Kind), ref(t.Namespace, t.Name), RestartedAtAnnotation, at)}, nil
}

// ScaleWorkloadParams are scale_workload's parameters.
type ScaleWorkloadParams struct {
	Approval `yaml:",inline"`
	// Replicas is the number to scale to (required).
	Replicas *int32 `yaml:"replicas"`
}

// Validate requires a replica count.
func (p *ScaleWorkloadParams) Validate() error {
	if p.Replicas == nil {
		return errors.New("replicas: required")
	}
	if *p.Replicas < 0 {
		return errors.New("replicas: must not be negative")
	}
	return nil
}

type scaleWorkload struct{ replicas int32 }

func (s scaleWorkload) target(ctx context.Context, deps Deps, f *event.Finding) (event.Subject, error) {
	return workloadTarget(ctx, deps, f, "Deployment", "StatefulSet", "ReplicaSet")
}

func (s scaleWorkload) summary(t event.Subject) string {
	return fmt.Sprintf("scale %s %s to %d replicas", lower(t.Kind), ref(t.Namespace, t.Name), s.replicas)
}

// execute patches the scale subresource, as kubectl scale does: the role
// needs patch on <kind>s/scale only, not on the workload.
func (s scaleWorkload) execute(ctx context.Context, deps Deps, t event.Subject, _ Run) (Result, error) {
	kc, err := client(deps)
	if err != nil {
		return Result{}, err
	}
	var resource string
	switch t.Kind {
	case "Deployment", "StatefulSet", "ReplicaSet":
		resource = lower(t.Kind) + "s"
	default:
		return Result{}, fmt.Errorf("cannot scale a %s", t.Kind)
	}
	var scale autoscalingv1.Scale
	err = kc.AppsV1().RESTClient().Patch(types.MergePatchType).
		Namespace(t.Namespace).Resource(resource).Name(t.Name).SubResource("scale").
		Body(fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, s.replicas)).
		Do(ctx).Into(&scale)
	if err != nil {
		return Result{}, fmt.Errorf("patch %s/scale %s: %w", resource, ref(t.Namespace, t.Name), err)
	}
	return Result{Text: fmt.Sprintf("scaled %s %s to %d replicas", lower(t.Kind), ref(t.Namespace, t.Name), scale.Spec.Replicas)}, nil
}

// RunJobParams are run_job's parameters.
type RunJobParams struct {
	Approval `yaml:",inline"`
	// Image and Command (required) are the job's one container; Args follow.
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	// Namespace defaults to the event's namespace.
	Namespace string `yaml:"namespace"`
	// ServiceAccountName runs the job as this account (default: the
	// namespace's default account).
	ServiceAccountName string `yaml:"service_account_name"`
	// TTLSecondsAfterFinished removes the job after it finished (default 3600).
	TTLSecondsAfterFinished int32 `yaml:"ttl_seconds_after_finished"`
	// ActiveDeadlineSeconds bounds how long it runs (default 600).
	ActiveDeadlineSeconds int64 `yaml:"active_deadline_seconds"`
}

// Validate checks the container and the bounds.
func (p *RunJobParams) Validate() error {
	switch {
	case strings.TrimSpace(p.Image) == "":
		return errors.New("image: required")
	case len(p.Command) == 0:
		return errors.New("command: required (the container's command, a list)")
	case p.TTLSecondsAfterFinished <= 0:
		return errors.New("ttl_seconds_after_finished: must be positive (finished jobs must not pile up)")
	case p.ActiveDeadlineSeconds <= 0:
		return errors.New("active_deadline_seconds: must be positive")
	}
	return nil
}

type runJob struct{ p RunJobParams }

func (j runJob) target(_ context.Context, _ Deps, f *event.Finding) (event.Subject, error) {
	ns := j.p.Namespace
	s := f.Event.Subject
	if ns == "" {
		ns = firstNonEmpty(s.Namespace, f.Event.Labels["namespace"])
	}
	if ns == "" {
		return event.Subject{}, errors.New("the event names no namespace: set namespace")
	}
	return event.Subject{Kind: "Namespace", Name: ns}, nil
}

func (j runJob) summary(t event.Subject) string {
	return fmt.Sprintf("run job %s %s in namespace %s", j.p.Image, strings.Join(append(slicesClone(j.p.Command), j.p.Args...), " "), t.Name)
}

// execute creates the Job under a name derived from the run, so executing
// the same run twice creates it once.
func (j runJob) execute(ctx context.Context, deps Deps, t event.Subject, run Run) (Result, error) {
	kc, err := client(deps)
	if err != nil {
		return Result{}, err
	}
	name := "medic-job-" + shortHash(run.ID)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: t.Name,
			Labels:      map[string]string{ManagedByLabel: "medic"},
			Annotations: map[string]string{"medic.dev/run": run.ID},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			TTLSecondsAfterFinished: ptr.To(j.p.TTLSecondsAfterFinished),
			ActiveDeadlineSeconds:   ptr.To(j.p.ActiveDeadlineSeconds),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{ManagedByLabel: "medic"}},
				Spec: corev1.PodSpec{
					RestartPolicy:      corev1.RestartPolicyNever,
					ServiceAccountName: j.p.ServiceAccountName,
					Containers: []corev1.Container{{
						Name: "run", Image: j.p.Image, Command: j.p.Command, Args: j.p.Args,
						Env: []corev1.EnvVar{{Name: "MEDIC_RUN", Value: run.ID}},
					}},
				},
			},
		},
	}
	_, err = kc.BatchV1().Jobs(t.Name).Create(ctx, job, metav1.CreateOptions{FieldManager: "medic"})
	switch {
	case apierrors.IsAlreadyExists(err):
		return Result{Text: "job " + ref(t.Name, name) + " was already created for this run"}, nil
	case err != nil:
		return Result{}, fmt.Errorf("create job in namespace %s: %w", t.Name, err)
	}
	return Result{Text: "created job " + ref(t.Name, name) + " (removed " + strconv.Itoa(int(j.p.TTLSecondsAfterFinished)) + "s after it finishes)"}, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

func addWorkloads(r *actions.Registry) {
	register(r, "delete_pod", "Delete the event's pod (its controller recreates it); Robusta's delete_pod.",
		func() *DeletePodParams { return &DeletePodParams{Approval: Approval{RequireApproval: true}} },
		func(p *DeletePodParams) (remedy[Deps], error) { return deletePod{p: *p}, nil })
	register(r, "rollout_restart", "Restart the event's Deployment, StatefulSet or DaemonSet (or its pod's) like kubectl rollout restart.",
		func() *RolloutRestartParams { return &RolloutRestartParams{Approval: Approval{RequireApproval: true}} },
		func(*RolloutRestartParams) (remedy[Deps], error) { return rolloutRestart{}, nil })
	register(r, "scale_workload", "Scale the event's Deployment, StatefulSet or ReplicaSet (or its pod's) to replicas through the scale subresource.",
		func() *ScaleWorkloadParams { return &ScaleWorkloadParams{Approval: Approval{RequireApproval: true}} },
		func(p *ScaleWorkloadParams) (remedy[Deps], error) { return scaleWorkload{replicas: *p.Replicas}, nil })
	register(r, "run_job", "Create a Job (image, command) in the event's namespace, removed after ttl_seconds_after_finished; Robusta's alert_handling_job.",
		func() *RunJobParams {
			return &RunJobParams{Approval: Approval{RequireApproval: true}, TTLSecondsAfterFinished: 3600, ActiveDeadlineSeconds: 600}
		},
		func(p *RunJobParams) (remedy[Deps], error) { return runJob{p: *p}, nil })
}
