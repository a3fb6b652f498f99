package remediate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// maxOutput bounds a command's output kept in the finding; the rest is cut
// (and said so).
const maxOutput = 64 << 10

// PodBashParams are pod_bash_enricher's parameters.
type PodBashParams struct {
	Approval `yaml:",inline"`
	// BashCommand runs with `sh -c` in the event's pod (Robusta's name;
	// sh because many images have no bash). It is never a template: alert
	// labels must not reach a shell.
	BashCommand string `yaml:"bash_command"`
	// Container defaults to the event's container, else the pod's first.
	Container string `yaml:"container"`
	// Timeout bounds the command (default 30s).
	Timeout time.Duration `yaml:"timeout"`
}

// Validate requires a command and a sane timeout.
func (p *PodBashParams) Validate() error {
	switch {
	case strings.TrimSpace(p.BashCommand) == "":
		return errors.New("bash_command: required")
	case p.Timeout <= 0 || p.Timeout > 10*time.Minute:
		return errors.New("timeout: must be between 0s and 10m")
	}
	return nil
}

type podBash struct{ p PodBashParams }

// execDeps is what pod_bash_enricher uses: Deps, and the REST configuration
// its exec stream is opened with.
type execDeps = interface {
	Deps
	KubeRESTConfig() *rest.Config
}

func (b podBash) target(_ context.Context, _ execDeps, f *event.Finding) (event.Subject, error) {
	t, err := podTarget(f)
	if b.p.Container != "" {
		t.Container = b.p.Container
	}
	return t, err
}

func (b podBash) summary(t event.Subject) string {
	where := "pod " + ref(t.Namespace, t.Name)
	if t.Container != "" {
		where += " container " + t.Container
	}
	return fmt.Sprintf("run `%s` in %s", oneLine(b.p.BashCommand), where)
}

// execute runs the command through the pods/exec subresource (WebSocket,
// falling back to SPDY, as kubectl exec does).
func (b podBash) execute(ctx context.Context, deps execDeps, t event.Subject, _ Run) (Result, error) {
	kc, err := client(deps)
	if err != nil {
		return Result{}, err
	}
	if deps.KubeRESTConfig() == nil {
		return Result{}, errors.New("commands in pods need the cluster's REST configuration, which this medic was not given")
	}
	ctx, cancel := context.WithTimeout(ctx, b.p.Timeout)
	defer cancel()
	req := kc.CoreV1().RESTClient().Post().Resource("pods").Namespace(t.Namespace).Name(t.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: t.Container, Command: []string{"sh", "-c", b.p.BashCommand}, Stdout: true, Stderr: true,
		}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(deps.KubeRESTConfig(), "GET", req.URL().String())
	if err != nil {
		return Result{}, fmt.Errorf("exec in pod %s: %w", ref(t.Namespace, t.Name), err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(deps.KubeRESTConfig(), "POST", req.URL())
	if err != nil {
		return Result{}, fmt.Errorf("exec in pod %s: %w", ref(t.Namespace, t.Name), err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return Result{}, err
	}
	out := &capped{max: maxOutput}
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: out, Stderr: out})
	src := "pod " + ref(t.Namespace, t.Name) + ": sh -c " + oneLine(b.p.BashCommand)
	if err != nil {
		return Result{Output: out.String(), OutputSrc: src, Truncated: out.cut},
			fmt.Errorf("exec in pod %s: %w", ref(t.Namespace, t.Name), err)
	}
	return Result{Text: "the command finished", Output: out.String(), OutputSrc: src, Truncated: out.cut}, nil
}

// NodeBashParams are node_bash_enricher's parameters.
type NodeBashParams struct {
	Approval `yaml:",inline"`
	// BashCommand runs with `chroot /host sh -c` in a privileged pod on the
	// node, like `kubectl debug node`; never a template.
	BashCommand string `yaml:"bash_command"`
	// Image is the debug pod's image (default busybox:1.37).
	Image string `yaml:"image"`
	// Namespace is where the debug pod is created (default "default"); the
	// remediation role must let medic create pods there.
	Namespace string `yaml:"namespace"`
	// Timeout bounds the pod's run; it is deleted after (default 60s).
	Timeout time.Duration `yaml:"timeout"`
}

// Validate requires a command and a sane timeout.
func (p *NodeBashParams) Validate() error {
	switch {
	case strings.TrimSpace(p.BashCommand) == "":
		return errors.New("bash_command: required")
	case p.Image == "":
		return errors.New("image: required")
	case p.Namespace == "":
		return errors.New("namespace: required")
	case p.Timeout <= 0 || p.Timeout > 10*time.Minute:
		return errors.New("timeout: must be between 0s and 10m")
	}
	return nil
}

type nodeBash struct{ p NodeBashParams }

func (b nodeBash) target(ctx context.Context, deps Deps, f *event.Finding) (event.Subject, error) {
	return nodeTarget(ctx, deps, f)
}

func (b nodeBash) summary(t event.Subject) string {
	return fmt.Sprintf("run `%s` on node %s (privileged debug pod)", oneLine(b.p.BashCommand), t.Name)
}

// DebugPod is the privileged pod node_bash_enricher creates on a node: the
// host's root at /host, its PID, network and IPC namespaces, as `kubectl
// debug node` does.
func DebugPod(name, namespace, node, image, command string, timeout time.Duration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{ManagedByLabel: "medic"}},
		Spec: corev1.PodSpec{
			NodeName: node, HostPID: true, HostNetwork: true, HostIPC: true,
			RestartPolicy:         corev1.RestartPolicyNever,
			ActiveDeadlineSeconds: ptr.To(int64(timeout / time.Second)),
			Tolerations:           []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Volumes: []corev1.Volume{{Name: "host-root", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}},
			Containers: []corev1.Container{{
				Name: "debug", Image: image,
				Command:         []string{"chroot", "/host", "sh", "-c", command},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
				VolumeMounts:    []corev1.VolumeMount{{Name: "host-root", MountPath: "/host"}},
			}},
		},
	}
}

// execute creates the debug pod (named after the run, so a second run of
// the same approval finds it), waits for it to finish, reads its log and
// deletes it whatever happened.
func (b nodeBash) execute(ctx context.Context, deps Deps, t event.Subject, run Run) (Result, error) {
	kc, err := client(deps)
	if err != nil {
		return Result{}, err
	}
	name := "medic-node-debug-" + shortHash(run.ID)
	pods := kc.CoreV1().Pods(b.p.Namespace)
	_, err = pods.Create(ctx, DebugPod(name, b.p.Namespace, t.Name, b.p.Image, b.p.BashCommand, b.p.Timeout), metav1.CreateOptions{FieldManager: "medic"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return Result{}, fmt.Errorf("create debug pod on node %s: %w", t.Name, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := pods.Delete(dctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
			deps.Log().Warn("could not delete the node debug pod", "pod", ref(b.p.Namespace, name), "err", err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, b.p.Timeout)
	defer cancel()
	phase, err := waitFinished(wctx, func(ctx context.Context) (corev1.PodPhase, error) {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return p.Status.Phase, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("debug pod %s on node %s did not finish within %s: %w", ref(b.p.Namespace, name), t.Name, b.p.Timeout, err)
	}
	logs, err := pods.GetLogs(name, &corev1.PodLogOptions{LimitBytes: ptr.To[int64](maxOutput)}).Do(ctx).Raw()
	src := "node " + t.Name + ": sh -c " + oneLine(b.p.BashCommand)
	if err != nil {
		return Result{}, fmt.Errorf("read the debug pod's output: %w", err)
	}
	res := Result{Text: "the command finished (" + string(phase) + ")", Output: string(logs), OutputSrc: src, Truncated: len(logs) >= maxOutput}
	if phase == corev1.PodFailed {
		return res, errors.New("the command failed on the node")
	}
	return res, nil
}

// waitFinished polls the pod's phase every second until it succeeded or
// failed, or ctx ends.
func waitFinished(ctx context.Context, phase func(context.Context) (corev1.PodPhase, error)) (corev1.PodPhase, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p, err := phase(ctx)
		if err != nil {
			return "", err
		}
		if p == corev1.PodSucceeded || p == corev1.PodFailed {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("still %s", cmpOr(string(p), "Pending"))
		case <-tick.C:
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// capped keeps the first max bytes written to it.
type capped struct {
	bytes.Buffer
	max int
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room < len(p) {
		c.cut = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

var _ io.Writer = (*capped)(nil)

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		return string(r[:200]) + "…"
	}
	return s
}

func addCommands(r *actions.Registry) {
	register(r, "pod_bash_enricher", "Run a shell command (sh -c) in the event's pod and attach its output, redacted; Robusta's pod_bash_enricher.",
		func() *PodBashParams {
			return &PodBashParams{Approval: Approval{RequireApproval: true}, Timeout: 30 * time.Second}
		},
		func(p *PodBashParams) (remedy[execDeps], error) { return podBash{p: *p}, nil })
	register(r, "node_bash_enricher", "Run a shell command on the event's node in a short-lived privileged debug pod (like kubectl debug node) and attach its output, redacted.",
		func() *NodeBashParams {
			return &NodeBashParams{Approval: Approval{RequireApproval: true}, Image: "busybox:1.37", Namespace: "default", Timeout: time.Minute}
		},
		func(p *NodeBashParams) (remedy[Deps], error) { return nodeBash{p: *p}, nil })
}
