package remediate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/event"
)

// kubectlResources are what kubectl_command may read: the common kinds,
// never Secrets.
var kubectlResources = map[string]struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
}{
	"pods":                     {schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "Pod", true},
	"services":                 {schema.GroupVersionResource{Version: "v1", Resource: "services"}, "Service", true},
	"configmaps":               {schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ConfigMap", true},
	"events":                   {schema.GroupVersionResource{Version: "v1", Resource: "events"}, "Event", true},
	"persistentvolumeclaims":   {schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}, "PersistentVolumeClaim", true},
	"nodes":                    {schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, "Node", false},
	"namespaces":               {schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "Namespace", false},
	"deployments":              {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment", true},
	"statefulsets":             {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "StatefulSet", true},
	"daemonsets":               {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, "DaemonSet", true},
	"replicasets":              {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, "ReplicaSet", true},
	"jobs":                     {schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "Job", true},
	"cronjobs":                 {schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, "CronJob", true},
	"ingresses":                {schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}, "Ingress", true},
	"horizontalpodautoscalers": {schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}, "HorizontalPodAutoscaler", true},
}

// resourceNamed maps what kubectl accepts (pod, pods, Pod, deploy) to a
// resource of kubectlResources.
func resourceNamed(s string) (string, bool) {
	s = strings.ToLower(s)
	short := map[string]string{"po": "pods", "svc": "services", "cm": "configmaps", "ev": "events", "pvc": "persistentvolumeclaims",
		"no": "nodes", "ns": "namespaces", "deploy": "deployments", "sts": "statefulsets", "ds": "daemonsets", "rs": "replicasets",
		"cj": "cronjobs", "ing": "ingresses", "hpa": "horizontalpodautoscalers"}
	if r, ok := short[s]; ok {
		return r, true
	}
	for _, cand := range []string{s, s + "s", s + "es"} {
		if _, ok := kubectlResources[cand]; ok {
			return cand, true
		}
	}
	return "", false
}

// KubectlParams are kubectl_command's parameters.
type KubectlParams struct {
	Approval `yaml:",inline"`
	// Command is a read-only kubectl command line without "kubectl": get
	// <resource> [name], describe <resource>[/name], logs [pod] [-c
	// container] [--tail N], rollout status <kind>/<name>; -n sets the
	// namespace. Left out, the name and namespace are the event's subject.
	// Parsed at load time; never a template.
	Command string `yaml:"command"`
}

// kubectlCmd is a parsed command.
type kubectlCmd struct {
	verb      string // get, describe, logs, rollout-status
	resource  string // of kubectlResources
	name      string
	namespace string
	container string
	tail      int64
}

// Validate parses the command.
func (p *KubectlParams) Validate() error {
	_, err := parseKubectl(p.Command)
	return err
}

func parseKubectl(line string) (kubectlCmd, error) {
	args := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "kubectl "))
	c := kubectlCmd{tail: 100}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() (string, error) {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "-") {
				return v, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("command: %s needs a value", a)
			}
			i++
			return args[i], nil
		}
		switch flag, _, _ := strings.Cut(a, "="); flag {
		case "-n", "--namespace":
			v, err := val()
			if err != nil {
				return c, err
			}
			c.namespace = v
		case "-c", "--container":
			v, err := val()
			if err != nil {
				return c, err
			}
			c.container = v
		case "--tail":
			v, err := val()
			if err != nil {
				return c, err
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || n > 1000 {
				return c, fmt.Errorf("command: --tail %q is not between 1 and 1000", v)
			}
			c.tail = n
		default:
			if strings.HasPrefix(a, "-") {
				return c, fmt.Errorf("command: flag %s is not supported (only -n, -c, --tail)", a)
			}
			pos = append(pos, a)
		}
	}
	if len(pos) == 0 {
		return c, errors.New("command: required (get, describe, logs or rollout status)")
	}
	c.verb, pos = pos[0], pos[1:]
	if c.verb == "rollout" {
		if len(pos) == 0 || pos[0] != "status" {
			return c, errors.New("command: only \"rollout status\" is allowed of rollout")
		}
		c.verb, pos = "rollout-status", pos[1:]
	}
	switch c.verb {
	case "get", "describe", "rollout-status":
		if len(pos) == 0 {
			if c.verb == "get" {
				return c, errors.New("command: get needs a resource")
			}
			break // the event's subject
		}
		res, name, _ := strings.Cut(pos[0], "/")
		r, ok := resourceNamed(res)
		if !ok {
			return c, fmt.Errorf("command: resource %q is not one kubectl_command may read (secrets never are)", res)
		}
		c.resource, c.name = r, name
		if len(pos) > 1 && c.name == "" {
			c.name, pos = pos[1], pos[1:]
		}
		if len(pos) > 1 {
			return c, fmt.Errorf("command: unexpected %q", strings.Join(pos[1:], " "))
		}
		if c.verb == "rollout-status" && !slices.Contains([]string{"deployments", "statefulsets", "daemonsets"}, c.resource) {
			return c, fmt.Errorf("command: rollout status works on deployments, statefulsets and daemonsets, not %s", c.resource)
		}
	case "logs":
		if len(pos) > 1 {
			return c, fmt.Errorf("command: unexpected %q", strings.Join(pos[1:], " "))
		}
		if len(pos) == 1 {
			c.resource, c.name = "pods", strings.TrimPrefix(strings.TrimPrefix(pos[0], "pod/"), "pods/")
		}
	default:
		return c, fmt.Errorf("command: %q is not allowed: kubectl_command runs get, describe, logs and rollout status only", c.verb)
	}
	return c, nil
}

// kubectlDeps is what kubectl_command uses: Deps, and the dynamic client
// its get and describe read any kind with.
type kubectlDeps = interface {
	Deps
	DynamicClient() dynamic.Interface
}

type kubectl struct {
	c    kubectlCmd
	line string
}

// target fills what the command leaves out from the event's subject.
func (k kubectl) target(_ context.Context, _ kubectlDeps, f *event.Finding) (event.Subject, error) {
	s := kube.SubjectOf(&f.Event)
	t := event.Subject{Namespace: firstNonEmpty(k.c.namespace, s.Namespace), Name: k.c.name, Container: k.c.container}
	res := k.c.resource
	if res == "" || (k.c.name == "" && k.c.verb != "get") {
		r, ok := resourceNamed(s.Kind)
		if !ok || s.Name == "" || (res != "" && r != res) {
			return event.Subject{}, fmt.Errorf("%q names no object and the event is about %s", k.line, describe(s))
		}
		res, t.Name = r, s.Name
		if t.Container == "" {
			t.Container = s.Container
		}
	}
	if k.c.verb == "logs" && res != "pods" {
		return event.Subject{}, fmt.Errorf("%q reads a pod's logs and the event is about %s", k.line, describe(s))
	}
	t.Kind = kubectlResources[res].kind
	if !kubectlResources[res].namespaced {
		t.Namespace = ""
	} else if t.Namespace == "" {
		return event.Subject{}, fmt.Errorf("%q names no namespace and the event has none", k.line)
	}
	return t, nil
}

func (k kubectl) summary(t event.Subject) string {
	verb := strings.Replace(k.c.verb, "-", " ", 1)
	what := lower(t.Kind)
	if t.Name != "" {
		what += " " + t.Name
	}
	if t.Namespace != "" {
		what += " -n " + t.Namespace
	}
	return "kubectl " + verb + " " + what
}

func (k kubectl) execute(ctx context.Context, deps kubectlDeps, t event.Subject, _ Run) (Result, error) {
	kc, err := client(deps)
	if err != nil {
		return Result{}, err
	}
	src := k.summary(t)
	var res string
	for r, d := range kubectlResources {
		if d.kind == t.Kind {
			res = r
		}
	}
	d := kubectlResources[res]
	switch k.c.verb {
	case "logs":
		b, err := kc.CoreV1().Pods(t.Namespace).GetLogs(t.Name, &corev1.PodLogOptions{Container: t.Container, TailLines: ptr.To(k.c.tail)}).Do(ctx).Raw()
		if err != nil {
			return Result{}, fmt.Errorf("get pods/log %s: %w", ref(t.Namespace, t.Name), err)
		}
		return Result{Text: "done", Output: string(b), OutputSrc: src}, nil
	case "get":
		// The API server's own table, the columns kubectl get prints.
		req := kc.CoreV1().RESTClient().Get().AbsPath(absPath(d.gvr, t.Namespace, t.Name)...).
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
		var table metav1.Table
		if err := req.Do(ctx).Into(&table); err != nil {
			return Result{}, fmt.Errorf("get %s: %w", res, err)
		}
		return Result{Text: "done", Output: formatTable(&table), OutputSrc: src}, nil
	case "describe":
		if deps.DynamicClient() == nil {
			return Result{}, errNoCluster
		}
		var obj *unstructured.Unstructured
		if d.namespaced {
			obj, err = deps.DynamicClient().Resource(d.gvr).Namespace(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		} else {
			obj, err = deps.DynamicClient().Resource(d.gvr).Get(ctx, t.Name, metav1.GetOptions{})
		}
		if err != nil {
			return Result{}, fmt.Errorf("get %s %s: %w", res, ref(t.Namespace, t.Name), err)
		}
		text, cut, err := kube.ObjectYAML(obj, 400)
		if err != nil {
			return Result{}, err
		}
		return Result{Text: "done", Output: text, OutputSrc: src, Truncated: cut}, nil
	case "rollout-status":
		line, err := rolloutStatus(ctx, deps, t)
		if err != nil {
			return Result{}, err
		}
		return Result{Text: line}, nil
	}
	return Result{}, fmt.Errorf("unknown verb %q", k.c.verb)
}

func absPath(gvr schema.GroupVersionResource, namespace, name string) []string {
	p := []string{"api", gvr.Version}
	if gvr.Group != "" {
		p = []string{"apis", gvr.Group, gvr.Version}
	}
	if namespace != "" {
		p = append(p, "namespaces", namespace)
	}
	p = append(p, gvr.Resource)
	if name != "" {
		p = append(p, name)
	}
	return p
}

// formatTable prints a server-side table as kubectl does, columns padded.
func formatTable(t *metav1.Table) string {
	var cols []int
	for i, c := range t.ColumnDefinitions {
		if c.Priority == 0 {
			cols = append(cols, i)
		}
	}
	rows := [][]string{{}}
	for _, i := range cols {
		rows[0] = append(rows[0], strings.ToUpper(t.ColumnDefinitions[i].Name))
	}
	for _, r := range t.Rows {
		var row []string
		for _, i := range cols {
			if i < len(r.Cells) {
				row = append(row, fmt.Sprint(r.Cells[i]))
			}
		}
		rows = append(rows, row)
	}
	width := make([]int, len(cols))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			if i < len(r)-1 {
				fmt.Fprintf(&b, "%-*s   ", width[i], c)
			} else {
				b.WriteString(c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// rolloutStatus says what `kubectl rollout status` would, without waiting.
func rolloutStatus(ctx context.Context, deps Deps, t event.Subject) (string, error) {
	kc := deps.KubeClient()
	what := lower(t.Kind) + " " + ref(t.Namespace, t.Name)
	switch t.Kind {
	case "Deployment":
		d, err := kc.AppsV1().Deployments(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("get %s: %w", what, err)
		}
		return deploymentRollout(d), nil
	case "StatefulSet":
		s, err := kc.AppsV1().StatefulSets(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("get %s: %w", what, err)
		}
		want := ptr.Deref(s.Spec.Replicas, 1)
		if s.Status.ObservedGeneration < s.Generation || s.Status.UpdatedReplicas < want || s.Status.ReadyReplicas < want {
			return fmt.Sprintf("Waiting for statefulset %q rollout to finish: %d of %d updated pods are ready", t.Name, s.Status.ReadyReplicas, want), nil
		}
		return fmt.Sprintf("statefulset %q rolling update complete: %d pods at revision %s", t.Name, s.Status.ReadyReplicas, s.Status.UpdateRevision), nil
	case "DaemonSet":
		ds, err := kc.AppsV1().DaemonSets(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("get %s: %w", what, err)
		}
		st := ds.Status
		if st.ObservedGeneration < ds.Generation || st.UpdatedNumberScheduled < st.DesiredNumberScheduled || st.NumberAvailable < st.DesiredNumberScheduled {
			return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available", t.Name, st.NumberAvailable, st.DesiredNumberScheduled), nil
		}
		return fmt.Sprintf("daemon set %q successfully rolled out", t.Name), nil
	}
	return "", fmt.Errorf("rollout status does not apply to %s", what)
}

// deploymentRollout is kubectl's deployment status line.
func deploymentRollout(d *appsv1.Deployment) string {
	st, want := d.Status, ptr.Deref(d.Spec.Replicas, 1)
	switch {
	case d.Generation > st.ObservedGeneration:
		return "Waiting for deployment spec update to be observed..."
	case st.UpdatedReplicas < want:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, st.AvailableReplicas, st.UpdatedReplicas)
	}
	return fmt.Sprintf("deployment %q successfully rolled out", d.Name)
}

func addKubectl(r *actions.Registry) {
	register(r, "kubectl_command", "Run a read-only kubectl command (get, describe, logs, rollout status; never Secrets) and attach its output, redacted.",
		func() *KubectlParams { return &KubectlParams{Approval: Approval{RequireApproval: true}} },
		func(p *KubectlParams) (remedy[kubectlDeps], error) {
			c, err := parseKubectl(p.Command)
			if err != nil {
				return nil, err
			}
			return kubectl{c: c, line: strings.TrimSpace(p.Command)}, nil
		})
}
