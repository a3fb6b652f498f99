// Package kubeevent is the vocabulary of the events the Kubernetes source
// publishes: the labels and annotations it sets, the operations of a
// change, the diff an update carries, the group/version/resource format.
//
// It sits below both sides so that neither imports the other: the source
// (sources/kubernetes, with its informers) writes events in this
// vocabulary, the pure matchers (triggers/kubernetes) and the evidence
// actions (actions/kube) read them.
package kubeevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/medichq/medic/event"
)

// Source is the event source of everything the Kubernetes source publishes.
const Source = "kubernetes"

// Labels the Kubernetes source sets on events besides the object's own
// labels; the triggers filter on them and templates can show them. Facts
// win over an object label of the same name.
const (
	LabelNamespace    = "namespace"
	LabelPod          = "pod"
	LabelContainer    = "container"
	LabelNode         = "node"
	LabelJob          = "job"
	LabelName         = "name"
	LabelKind         = "kind"
	LabelReason       = "reason"
	LabelRestartCount = "restart_count"
	LabelExitCode     = "exit_code"
	LabelOwnerKind    = "owner_kind"
	LabelOwnerName    = "owner_name"
	LabelImage        = "image"
	LabelFireDelay    = "fire_delay"    // image_pull_backoff: the delay this event was held for
	LabelNotReadyFor  = "not_ready_for" // node_not_ready: the duration this event waited for
	LabelStatus       = "condition_status"
	LabelOperation    = "operation" // kubernetes_resource: create, update, delete
	LabelResource     = "resource"  // kubernetes_resource: group/version/resource
	LabelChanged      = "changed"   // kubernetes_resource updates: top-level fields that changed
	LabelCount        = "count"     // kubernetes_warning_event
	LabelInvolvedKind = "involved_kind"
	LabelInvolvedName = "involved_name"
	LabelSource       = "source_component"
	// AnnotationMessage carries a warning event's or a status's message.
	AnnotationMessage = "message"
)

// LabelRateLimitSubject names what a Kubernetes trigger's rate_limit
// counts per; the detector sets it on every event it publishes and the
// triggers' LimitKey reads it (the engine applies the limit). The value is
// a stable, opaque string the detector derives from the cluster, where the
// matchers cannot look:
//
//   - pod events (crash loop, OOM kill, image pull, eviction) and job
//     failures: the owning workload, "<namespace>/<Kind>/<name>" of the
//     Deployment, StatefulSet, DaemonSet, CronJob, Job or bare Pod found
//     through the ReplicaSet and Job owners, so the pods of one Deployment
//     share one window; container_oom_killed adds "/<container>";
//   - node_not_ready: "node/<name>";
//   - kubernetes_warning_event: the involved object's UID (or
//     "<Kind>/<namespace>/<name>" without one) and "/<reason>";
//   - kubernetes_resource and the change triggers:
//     "<group/version/resource>/<namespace>/<name>";
//   - helm_release: "helm/<namespace>/<release>".
//
// The strings are the ones the detector keyed its own limits by before the
// engine applied them, so windows claimed then still hold.
const LabelRateLimitSubject = "rate_limit_subject"

// Operations of on_kubernetes_resource.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// KindHelmRelease is the kind of the events about Helm releases.
const KindHelmRelease event.Kind = "helm_release"

// Labels of helm_release events.
const (
	LabelRelease      = "release"
	LabelRevision     = "revision"
	LabelHelmStatus   = "helm_status"
	LabelChart        = "chart"
	LabelChartVersion = "chart_version"
	LabelAppVersion   = "app_version"
	LabelHelmEvent    = "helm_event"  // deploy, fail, uninstall, unhealthy
	LabelPendingFor   = "pending_for" // unhealthy: the duration the release stayed pending
)

// Helm events: the values of LabelHelmEvent.
const (
	HelmDeploy    = "deploy"
	HelmFail      = "fail"
	HelmUninstall = "uninstall"
	HelmUnhealthy = "unhealthy"
)

// ParseGVR reads "group/version/resource", "version/resource" (the core
// group) or "/version/resource".
func ParseGVR(s string) (schema.GroupVersionResource, error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	var gvr schema.GroupVersionResource
	switch len(parts) {
	case 2:
		gvr = schema.GroupVersionResource{Version: parts[0], Resource: parts[1]}
	case 3:
		gvr = schema.GroupVersionResource{Group: parts[0], Version: parts[1], Resource: parts[2]}
	default:
		return gvr, fmt.Errorf("%q is not group/version/resource (e.g. apps/v1/deployments, v1/configmaps)", s)
	}
	if gvr.Version == "" || gvr.Resource == "" {
		return gvr, fmt.Errorf("%q is not group/version/resource (e.g. apps/v1/deployments, v1/configmaps)", s)
	}
	if gvr.Resource != strings.ToLower(gvr.Resource) || strings.ContainsAny(gvr.Resource, ". ") {
		return gvr, fmt.Errorf("%q: the resource is the lower-case plural (deployments, not Deployment)", s)
	}
	return gvr, nil
}

// FormatGVR is the inverse of ParseGVR: "apps/v1/deployments", "v1/pods".
func FormatGVR(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return gvr.Version + "/" + gvr.Resource
	}
	return gvr.Group + "/" + gvr.Version + "/" + gvr.Resource
}

// AnnotationChanges is the event annotation that holds an update's diff as
// JSON ([]Change); EventChanges reads it back.
const AnnotationChanges = "changes"

// Change ops.
const (
	ChangeAdded   = "added"
	ChangeRemoved = "removed"
	ChangeChanged = "changed"
	// ChangeMore is the last entry of a cut diff: New says "and N more".
	ChangeMore = "more"
)

// Change is one field an update changed.
type Change struct {
	// Path is a JSON path with list indexes, as fields_to_monitor names it:
	// spec.template.spec.containers[0].image, metadata.labels["app.kubernetes.io/name"].
	Path string `json:"path"`
	// Label is the path for people: spec prefixes dropped and list items
	// named by their name (containers[api].image, replicas).
	Label string `json:"label"`
	Op    string `json:"op"`
	// Old and New are the values, compact JSON for lists and maps, cut to
	// the source's MaxChangeValue. Empty for a Secret's data: only the key is told.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// String renders one change: "image: api:1.4.2 → api:1.5.0".
func (c Change) String() string {
	switch c.Op {
	case ChangeMore:
		return c.New
	case ChangeAdded:
		if c.New == "" {
			return c.Label + " added"
		}
		return c.Label + " added: " + c.New
	case ChangeRemoved:
		if c.Old == "" {
			return c.Label + " removed"
		}
		return c.Label + " removed (was " + c.Old + ")"
	}
	if c.Old == "" && c.New == "" {
		return c.Label + " changed"
	}
	return c.Label + ": " + c.Old + " → " + c.New
}

// summaryChanges is how many changes the one-line summary names.
const summaryChanges = 4

// SummarizeChanges renders the first few changes on one line.
func SummarizeChanges(cs []Change) string {
	parts := make([]string, 0, summaryChanges+1)
	for i, c := range cs {
		if i == summaryChanges {
			parts = append(parts, fmt.Sprintf("and %d more", countChanges(cs)-summaryChanges))
			break
		}
		parts = append(parts, c.String())
	}
	return strings.Join(parts, "; ")
}

// countChanges counts the changes cs stands for, the cut ones included.
func countChanges(cs []Change) int {
	n := 0
	for _, c := range cs {
		if c.Op == ChangeMore {
			m, _ := strconv.Atoi(strings.Fields(c.New + " 0")[1])
			n += m
			continue
		}
		n++
	}
	return n
}

// EventChanges reads the diff an update event carries; nil when none.
func EventChanges(ev *event.Event) []Change {
	raw := ev.Annotations[AnnotationChanges]
	if raw == "" {
		return nil
	}
	var cs []Change
	if err := json.Unmarshal([]byte(raw), &cs); err != nil {
		return nil
	}
	return cs
}

// FilterChanges keeps the changes at or below one of paths; a path names
// itself and everything below it (spec.template names every template field).
func FilterChanges(cs []Change, paths []string) []Change {
	var out []Change
	for _, c := range cs {
		for _, p := range paths {
			if c.Path == p || strings.HasPrefix(c.Path, p+".") || strings.HasPrefix(c.Path, p+"[") {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

var pathRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\]|\["[^"]+"\])*$`)

// CheckPath checks a fields_to_monitor path.
func CheckPath(p string) error {
	if !pathRE.MatchString(p) {
		return errors.New(`want a path like spec.replicas, spec.template.spec.containers[0].image or metadata.labels["app"]`)
	}
	return nil
}

// ValidPath reports whether p is a fields_to_monitor path.
func ValidPath(p string) bool { return CheckPath(p) == nil }
