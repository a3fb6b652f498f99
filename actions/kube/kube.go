// Package kube holds the actions that gather Kubernetes evidence for a
// finding: logs, events, a compact describe of pods, workloads and nodes, a
// one-line diagnosis of a failing pod, and an object's YAML.
//
// Every action finds the object it looks at from the event (Subject): a
// Kubernetes trigger names it directly, and a Prometheus alert names it in
// its labels (pod, namespace, container, deployment, statefulset, daemonset,
// job_name, node, instance). When the cluster cannot answer (no cluster
// configured, object gone, RBAC forbids it) the action adds an enrichment
// that says so ("⚠ pod shop/cart not found", "⚠ forbidden: cannot get
// pods/log in namespace shop") and returns nil, so the playbook carries on
// and the on-call engineer sees why the evidence is missing.
//
// The text each action renders is built by pure functions over API objects
// (PodStatusBlocks, Diagnose, ProcessLogs, EventsTable, …), tested against
// real pod manifests and kubectl describe outputs.
package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// errNoCluster is reported when medic runs without a cluster connection.
var errNoCluster = errors.New("no Kubernetes cluster configured: medic runs without a kubeconfig or in-cluster service account")

// kubeDeps is what most of the package's actions use of actions.Env: the
// typed client. The few that need more (resource_yaml's dynamic client, the
// templates' cluster name) declare it on their own.
type kubeDeps = interface{ KubeClient() kubernetes.Interface }

// Register adds package kube's actions: the Kubernetes evidence (logs,
// events, pod, workload and node status, the investigator, YAML, Helm
// releases, recent changes, scheduling) and the Kubernetes silencers.
func Register(r *actions.Registry) {
	addPodStatus(r)
	addLogs(r)
	addEvents(r)
	addOOM(r)
	addInvestigator(r)
	addScheduling(r)
	addNode(r)
	addWorkloads(r)
	addYAML(r)
	addHelm(r)
	addRecent(r)
	addChanges(r)
	addSilencers(r)
}

// client returns the clientset or errNoCluster.
func client(d kubeDeps) (kubernetes.Interface, error) {
	kc := d.KubeClient()
	if kc == nil {
		return nil, errNoCluster
	}
	return kc, nil
}

// problem is why evidence is missing: it becomes a note, not an error, so
// the playbook carries on.
type problem struct{ msg string }

func (p *problem) Error() string { return p.msg }

// problemf returns a problem with a formatted message.
func problemf(format string, args ...any) error { return &problem{msg: fmt.Sprintf(format, args...)} }

// call names one API request, to word its failure for a human.
type call struct {
	verb      string // get, list
	resource  string // pods, pods/log, events, deployments, …
	namespace string
	name      string
}

// explain turns an API error into the sentence an on-call engineer needs:
// what was asked, and why the answer is missing.
func (c call) explain(err error) error {
	if err == nil {
		return nil
	}
	var p *problem
	if errors.As(err, &p) {
		return err
	}
	what := c.object()
	switch {
	case apierrors.IsNotFound(err):
		return problemf("%s not found", what)
	case apierrors.IsForbidden(err):
		where := ""
		if c.namespace != "" {
			where = " in namespace " + c.namespace
		}
		return problemf("forbidden: cannot %s %s%s (medic's service account needs %q on %q)",
			c.verb, c.resource, where, c.verb, c.resource)
	case apierrors.IsUnauthorized(err):
		return problemf("unauthorized: the cluster rejected medic's credentials when asked for %s", what)
	case errors.Is(err, context.DeadlineExceeded) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err):
		return problemf("timed out asking the cluster for %s", what)
	case errors.Is(err, context.Canceled):
		return err // shutting down: not the cluster's fault
	}
	return problemf("cannot %s %s: %v", c.verb, what, err)
}

// object words what was asked for: "pod shop/cart", "logs of pod shop/cart",
// "events in namespace shop".
func (c call) object() string {
	res, sub, _ := strings.Cut(c.resource, "/")
	kind := strings.TrimSuffix(res, "s")
	ref := c.name
	if c.namespace != "" && c.name != "" {
		ref = c.namespace + "/" + c.name
	}
	switch {
	case sub == "log":
		return "logs of pod " + ref
	case c.name == "" && c.namespace != "":
		return res + " in namespace " + c.namespace
	case c.name == "":
		return res
	}
	return kind + " " + ref
}

// note adds an enrichment saying why an action has no evidence to show.
func note(f *event.Finding, source, title string, err error) {
	if errors.Is(err, errNoCluster) {
		// Said once per finding: three actions each saying medic has no
		// cluster is noise, not evidence.
		text := "⚠ " + errNoCluster.Error()
		for _, e := range f.Enrichments {
			if len(e.Blocks) == 1 && e.Blocks[0].Markdown == text {
				return
			}
		}
		title = "Kubernetes"
	}
	f.Add(event.Enrichment{
		Title:  title,
		Source: source,
		Blocks: []event.Block{event.MarkdownBlock("⚠ " + err.Error())},
	})
}

// finish turns an action's error into a note unless it is the context
// ending (shutdown), which the engine reports itself.
func finish(f *event.Finding, source, title string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	note(f, source, title, err)
	return nil
}

// run wraps an action body: errors become notes.
func run[D any](source, title string, body func(ctx context.Context, deps D, f *event.Finding) error) actions.Runner[D] {
	return actions.RunFunc[D](func(ctx context.Context, deps D, f *event.Finding) error {
		return finish(f, source, title, body(ctx, deps, f))
	})
}

// runOnCluster is run for an action that reads the cluster through the
// typed client and nothing else of the Env: the body gets that client, and
// no cluster becomes the note.
func runOnCluster(source, title string, body func(ctx context.Context, kc kubernetes.Interface, f *event.Finding) error) actions.Runner[kubeDeps] {
	return run(source, title, func(ctx context.Context, d kubeDeps, f *event.Finding) error {
		kc, err := client(d)
		if err != nil {
			return err
		}
		return body(ctx, kc, f)
	})
}

// runOnPod is run for an action about one pod: the body gets the cluster
// client and the pod resolvePod chose, and no cluster or no pod becomes the
// note.
func runOnPod(source, title string, body func(ctx context.Context, kc kubernetes.Interface, rp *resolvedPod, f *event.Finding) error) actions.Runner[kubeDeps] {
	return runOnCluster(source, title, func(ctx context.Context, kc kubernetes.Interface, f *event.Finding) error {
		rp, err := resolvePod(ctx, kc, &f.Event)
		if err != nil {
			return err
		}
		return body(ctx, kc, rp, f)
	})
}

// ref renders namespace/name, or name alone for cluster-scoped objects.
func ref(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// timeLayout is how times appear in enrichments: absolute and in UTC, so a
// finding read hours later still says when things happened.
const timeLayout = "2006-01-02 15:04:05 UTC"

func fmtTime(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func fmtTimePtr(t *metav1.Time) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t)
}

// fmtDuration renders a duration the way kubectl does: 5m0s → 5m, 3h2m.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return strings.TrimSuffix(d.Truncate(time.Second).String(), "0s")
	}
	return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
}

// fmtResources renders a resource list as "cpu 100m, memory 256Mi" with cpu
// and memory first.
func fmtResources(rl corev1.ResourceList) string {
	if len(rl) == 0 {
		return ""
	}
	names := make([]string, 0, len(rl))
	for n := range rl {
		names = append(names, string(n))
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(resourceOrder(a), resourceOrder(b)) })
	parts := make([]string, 0, len(names))
	for _, n := range names {
		q := rl[corev1.ResourceName(n)]
		parts = append(parts, n+" "+q.String())
	}
	return strings.Join(parts, ", ")
}

// resourceOrder sorts cpu, memory, ephemeral-storage, pods before the rest.
func resourceOrder(n string) string {
	switch n {
	case "cpu":
		return "0"
	case "memory":
		return "1"
	case "ephemeral-storage":
		return "2"
	case "pods":
		return "3"
	}
	return "4" + n
}

// quantity renders q, or "-" when it is absent.
func quantity(rl corev1.ResourceList, name corev1.ResourceName) string {
	q, ok := rl[name]
	if !ok {
		return "-"
	}
	return q.String()
}

// percent is used/total as a whole percentage, or "" when total is zero.
func percent(used, total resource.Quantity) string {
	if total.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d%%", used.MilliValue()*100/total.MilliValue())
}

// oneLine squeezes whitespace and newlines so a message fits a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate shortens s to n runes with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if n <= 0 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// table returns a table block.
func table(headers []string, rows [][]string) event.Block {
	return event.Block{Kind: event.BlockTable, Table: &event.TableBlock{Headers: headers, Rows: rows}}
}

// kv returns a key-value block, skipping pairs with an empty value.
func kv(pairs ...[2]string) event.Block {
	kept := pairs[:0:0]
	for _, p := range pairs {
		if p[1] != "" {
			kept = append(kept, p)
		}
	}
	return event.KeyValueBlock(kept)
}

// conditionRow is one row of a conditions table.
func conditionRow(typ string, status corev1.ConditionStatus, reason, message string, since metav1.Time) []string {
	return []string{typ, string(status), reason, truncate(oneLine(message), 200), fmtTime(since)}
}

// withConditions appends the table of an object's conditions to blocks,
// row giving each condition's conditionRow; no conditions, no table. Every
// Kind has its own condition type with the same fields, hence the func.
func withConditions[C any](blocks []event.Block, conds []C, row func(C) []string) []event.Block {
	if len(conds) == 0 {
		return blocks
	}
	rows := make([][]string, 0, len(conds))
	for _, c := range conds {
		rows = append(rows, row(c))
	}
	return append(blocks, conditionsTable(rows))
}

// conditionsTable is a table of condition rows without the columns no row
// fills (a pod's conditions often carry neither reason nor message).
func conditionsTable(rows [][]string) event.Block {
	headers := []string{"condition", "status", "reason", "message", "since"}
	keep := make([]bool, len(headers))
	keep[0], keep[1] = true, true
	for _, r := range rows {
		for i := 2; i < len(r) && i < len(keep); i++ {
			keep[i] = keep[i] || r[i] != ""
		}
	}
	pick := func(r []string) []string {
		out := make([]string, 0, len(r))
		for i, c := range r {
			if i < len(keep) && keep[i] {
				out = append(out, c)
			}
		}
		return out
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = pick(r)
	}
	return table(pick(headers), out)
}

// humanBytes renders a byte count in binary units with one decimal:
// 7935436Ki → 7.6Gi.
func humanBytes(q resource.Quantity) string {
	b := q.Value()
	units := []string{"Ki", "Mi", "Gi", "Ti", "Pi"}
	if b < 1024 {
		return strconv.FormatInt(b, 10)
	}
	v := float64(b)
	u := ""
	for _, unit := range units {
		if v < 1024 {
			break
		}
		v /= 1024
		u = unit
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if v >= 100 {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strings.TrimSuffix(s, ".0") + u
}

// fmtQuantity renders memory and storage in binary units, the rest as is.
func fmtQuantity(name corev1.ResourceName, q resource.Quantity) string {
	switch name {
	case corev1.ResourceMemory, corev1.ResourceEphemeralStorage, corev1.ResourceStorage:
		return humanBytes(q)
	}
	return q.String()
}
