package kube

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// InvestigatorParams are the parameters of pod_issue_investigator.
type InvestigatorParams struct {
	// Logs reads the last lines of a crashing container's previous
	// instance, to name a missing environment variable or show the last
	// line it printed.
	Logs bool `yaml:"logs"`
}

func addInvestigator(r *actions.Registry) {
	actions.Add(r, "pod_issue_investigator",
		"Say in one line why a pod fails, where the cause is known: image pull error, OOMKilled with the limit, unschedulable with the scheduler's reason, failing probe, missing ConfigMap/Secret/key, crash with its exit code.",
		func() *InvestigatorParams { return &InvestigatorParams{Logs: true} },
		func(p *InvestigatorParams) (actions.Runner[kubeDeps], error) {
			withLogs := p.Logs
			return runOnPod("pod_issue_investigator", "Investigation", func(ctx context.Context, kc kubernetes.Interface, rp *resolvedPod, f *event.Finding) error {
				pod := rp.Pod
				in := DiagnoseInput{Pod: pod}
				var missing []string
				if evs, err := objectEvents(ctx, kc, "Pod", pod.Namespace, pod.Name); err != nil {
					missing = append(missing, "events: "+err.Error())
				} else {
					in.Events = evs
				}
				if withLogs {
					if c := crashingContainer(pod); c != "" {
						lb, err := fetchLogs(ctx, kc, pod, c, true, LogOptions{TailLines: 20, Redact: DefaultRedactions()})
						if err != nil {
							missing = append(missing, "logs: "+err.Error())
						} else {
							in.Logs = map[string]string{c: lb.Text}
						}
					}
				}
				d := Diagnose(in)
				blocks := rp.preface()
				blocks = append(blocks, event.MarkdownBlock(d.Summary))
				if len(d.Evidence) > 0 {
					blocks = append(blocks, event.KeyValueBlock(d.Evidence))
				}
				if len(missing) > 0 {
					blocks = append(blocks, event.MarkdownBlock("Not looked at: "+strings.Join(missing, "; ")+"."))
				}
				f.Add(event.Enrichment{Title: "Investigation", Source: "pod_issue_investigator", Blocks: blocks})
				return nil
			}), nil
		})
}

// DiagnoseInput is what Diagnose looks at.
type DiagnoseInput struct {
	Pod    *corev1.Pod
	Events []corev1.Event
	// Logs maps a container to the tail of its previous instance's log.
	Logs map[string]string
}

// Diagnosis is why a pod fails.
type Diagnosis struct {
	// Cause is a short code: Unschedulable, Evicted,
	// CreateContainerConfigError (or CreateContainerError,
	// RunContainerError), ImagePull, FailedMount (or FailedAttachVolume,
	// FailedCreatePodSandBox), OOMKilled, ProbeFailure, MissingEnv,
	// CrashLoopBackOff, Crashed, NotReady, Pending, Healthy, Unknown, or
	// the reason a container waits.
	Cause string
	// Container is the container at fault, if one is.
	Container string
	// Summary is the one line an on-call engineer reads first.
	Summary string
	// Evidence lists where the summary comes from (status fields, events).
	Evidence [][2]string
}

// Diagnose says why a pod fails, checking the causes in the order in which
// they block each other: a pod that is not scheduled has no containers to
// crash, a container that cannot be created has no logs, and so on.
func Diagnose(in DiagnoseInput) Diagnosis {
	pod := in.Pod
	for _, check := range []func(DiagnoseInput) (Diagnosis, bool){
		diagnoseUnschedulable,
		diagnoseEvicted,
		diagnoseConfig,
		diagnoseImagePull,
		diagnoseMount,
		diagnoseOOM,
		diagnoseProbe,
		diagnoseCrash,
	} {
		if d, ok := check(in); ok {
			return d
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, s := range statuses {
		if w := s.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" {
			summary := fmt.Sprintf("Container %s is waiting: %s", s.Name, w.Reason)
			if m := oneLine(w.Message); m != "" {
				summary += ": " + truncate(m, 300)
			}
			return Diagnosis{Cause: w.Reason, Container: s.Name, Summary: summary,
				Evidence: [][2]string{{"container " + s.Name, "waiting: " + w.Reason}}}
		}
	}
	if pod.Status.Phase == corev1.PodPending {
		return Diagnosis{Cause: "Pending", Summary: fmt.Sprintf("Pod %s is Pending; no cause found in its status or events.", ref(pod.Namespace, pod.Name))}
	}
	for _, s := range pod.Status.ContainerStatuses {
		if !s.Ready && s.State.Running != nil {
			return Diagnosis{Cause: "NotReady", Container: s.Name,
				Summary: fmt.Sprintf("Container %s is running but not ready, and no probe failure is recorded.", s.Name)}
		}
	}
	if pod.Status.Phase == corev1.PodRunning || pod.Status.Phase == corev1.PodSucceeded {
		return Diagnosis{Cause: "Healthy", Summary: fmt.Sprintf("No problem found: pod %s is %s and %s containers are ready.",
			ref(pod.Namespace, pod.Name), PodStatusWord(pod), readyCount(pod))}
	}
	return Diagnosis{Cause: "Unknown", Summary: fmt.Sprintf("Pod %s is %s; no known cause found.", ref(pod.Namespace, pod.Name), PodStatusWord(pod))}
}

// preemptionRE cuts the scheduler's preemption post-mortem, which says only
// that evicting other pods would not help.
var preemptionRE = regexp.MustCompile(`\s*preemption: .*$`)

func diagnoseUnschedulable(in DiagnoseInput) (Diagnosis, bool) {
	pod := in.Pod
	if pod.Spec.NodeName != "" {
		return Diagnosis{}, false
	}
	var msg, from string
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			msg, from = c.Message, "condition PodScheduled"
			if msg == "" && c.Reason == "" {
				from = ""
			}
		}
	}
	if e := latestEvent(in.Events, "FailedScheduling", ""); e != nil {
		if msg == "" {
			from = eventLabel(e)
		}
		msg = firstNonEmpty(msg, e.Message)
	}
	if msg == "" {
		return Diagnosis{}, false
	}
	reason := strings.TrimSpace(preemptionRE.ReplaceAllString(oneLine(msg), ""))
	summary := "Pod cannot be scheduled: " + reason
	var hints []string
	if strings.Contains(reason, "node affinity/selector") || strings.Contains(reason, "node selector") {
		if sel := fmtMap(pod.Spec.NodeSelector); sel != "" {
			hints = append(hints, "its node selector is "+sel)
		} else if pod.Spec.Affinity != nil && pod.Spec.Affinity.NodeAffinity != nil {
			hints = append(hints, "check its node affinity")
		}
	}
	if strings.Contains(reason, "PersistentVolumeClaim") {
		var claims []string
		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				claims = append(claims, v.PersistentVolumeClaim.ClaimName)
			}
		}
		if len(claims) > 0 {
			hints = append(hints, "claims: "+strings.Join(claims, ", "))
		}
	}
	if strings.Contains(reason, "Insufficient") {
		if req := podRequests(pod); req != "" {
			hints = append(hints, "it requests "+req)
		}
	}
	if len(hints) > 0 {
		summary = strings.TrimSuffix(summary, ".") + " (" + strings.Join(hints, "; ") + ")."
	}
	d := Diagnosis{Cause: "Unschedulable", Summary: summary}
	if from != "" {
		d.Evidence = append(d.Evidence, [2]string{from, truncate(oneLine(msg), 300)})
	}
	return d, true
}

// podRequests sums the containers' requests, for "Insufficient cpu".
func podRequests(pod *corev1.Pod) string {
	sum := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		for n, q := range c.Resources.Requests {
			cur := sum[n]
			cur.Add(q)
			sum[n] = cur
		}
	}
	return fmtResources(sum)
}

func diagnoseEvicted(in DiagnoseInput) (Diagnosis, bool) {
	pod := in.Pod
	if pod.Status.Phase != corev1.PodFailed || pod.Status.Reason != "Evicted" {
		return Diagnosis{}, false
	}
	msg := oneLine(pod.Status.Message)
	summary := "Pod was evicted"
	if pod.Spec.NodeName != "" {
		summary += " from node " + pod.Spec.NodeName
	}
	if msg != "" {
		summary += ": " + truncate(msg, 300)
	}
	return Diagnosis{Cause: "Evicted", Summary: summary, Evidence: [][2]string{{"status.reason", "Evicted"}}}, true
}

// configErrorREs pull the object and key out of the kubelet's
// CreateContainerConfigError messages.
var (
	missingKeyRE    = regexp.MustCompile(`couldn't find key (\S+) in (Secret|ConfigMap) (\S+?)/(\S+)$`)
	missingObjectRE = regexp.MustCompile(`^(secret|configmap) "([^"]+)" not found`)
)

func diagnoseConfig(in DiagnoseInput) (Diagnosis, bool) {
	pod := in.Pod
	for _, s := range allStatuses(pod) {
		w := s.State.Waiting
		if w == nil || (w.Reason != "CreateContainerConfigError" && w.Reason != "CreateContainerError" && w.Reason != "RunContainerError") {
			continue
		}
		msg := oneLine(w.Message)
		if msg == "" {
			if e := latestEvent(in.Events, "Failed", s.Name); e != nil {
				msg = strings.TrimPrefix(oneLine(e.Message), "Error: ")
			}
		}
		summary := fmt.Sprintf("Container %s cannot start (%s)", s.Name, w.Reason)
		if msg != "" {
			summary += ": " + truncate(msg, 300)
			if use := configReference(pod, s.Name, msg); use != "" {
				summary += ", " + use
			}
		}
		return Diagnosis{Cause: w.Reason, Container: s.Name, Summary: summary + ".",
			Evidence: [][2]string{{"container " + s.Name + " waiting", w.Reason + ": " + truncate(msg, 300)}}}, true
	}
	return Diagnosis{}, false
}

// configReference says which part of the container's spec refers to the
// missing Secret, ConfigMap or key: "referenced by env DB_URL".
func configReference(pod *corev1.Pod, container, msg string) string {
	var kind, name, key string
	if m := missingKeyRE.FindStringSubmatch(msg); m != nil {
		key, kind, name = m[1], m[2], m[4]
	} else if m := missingObjectRE.FindStringSubmatch(msg); m != nil {
		kind, name = map[string]string{"secret": "Secret", "configmap": "ConfigMap"}[m[1]], m[2]
	} else {
		return ""
	}
	var c *corev1.Container
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == container {
			c = &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == container {
			c = &pod.Spec.Containers[i]
		}
	}
	if c == nil {
		return ""
	}
	var refs []string
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		switch {
		case kind == "Secret" && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name &&
			(key == "" || e.ValueFrom.SecretKeyRef.Key == key):
			refs = append(refs, "env "+e.Name)
		case kind == "ConfigMap" && e.ValueFrom.ConfigMapKeyRef != nil && e.ValueFrom.ConfigMapKeyRef.Name == name &&
			(key == "" || e.ValueFrom.ConfigMapKeyRef.Key == key):
			refs = append(refs, "env "+e.Name)
		}
	}
	for _, ef := range c.EnvFrom {
		if (kind == "Secret" && ef.SecretRef != nil && ef.SecretRef.Name == name) ||
			(kind == "ConfigMap" && ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == name) {
			refs = append(refs, "envFrom")
		}
	}
	if len(refs) == 0 {
		return ""
	}
	return "referenced by " + strings.Join(refs, ", ")
}

// registryPrefixRE strips the layers containerd and the kubelet wrap
// around a registry's answer.
var registryPrefixRE = regexp.MustCompile(`^(?:Failed to pull image "[^"]*": |failed to pull and unpack image "[^"]*": |failed to resolve reference "[^"]*": |rpc error: code = \w+ desc = |Error response from daemon: )`)

// registryError returns the registry's own words from a pull failure.
func registryError(msg string) string {
	msg = oneLine(msg)
	for {
		next := registryPrefixRE.ReplaceAllString(msg, "")
		if next == msg {
			return msg
		}
		msg = next
	}
}

func diagnoseImagePull(in DiagnoseInput) (Diagnosis, bool) {
	pod := in.Pod
	for _, s := range allStatuses(pod) {
		w := s.State.Waiting
		if w == nil {
			continue
		}
		switch w.Reason {
		case "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable", "SignatureValidationFailed":
		default:
			continue
		}
		image := containerImage(pod, s.Name, s.Image)
		d := Diagnosis{Cause: "ImagePull", Container: s.Name,
			Evidence: [][2]string{{"container " + s.Name + " waiting", w.Reason}}}
		// The registry's error is in the newest Failed event that quotes
		// it, or in the waiting message (ErrImagePull carries it; the
		// back-off message only repeats the image).
		var cause string
		if e := latestEventMatching(in.Events, "Failed", s.Name, "Failed to pull image"); e != nil {
			cause = registryError(e.Message)
			d.Evidence = append(d.Evidence, [2]string{eventLabel(e), truncate(oneLine(e.Message), 400)})
		} else if m := oneLine(w.Message); m != "" && !strings.HasPrefix(m, "Back-off pulling image") {
			cause = registryError(m)
		}
		d.Summary = fmt.Sprintf("Container %s cannot pull image %q (%s)", s.Name, image, w.Reason)
		if cause != "" {
			d.Summary += ": " + truncate(cause, 400)
		}
		d.Summary = strings.TrimSuffix(d.Summary, ".") + "."
		return d, true
	}
	return Diagnosis{}, false
}

func containerImage(pod *corev1.Pod, name, fallback string) string {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == name && c.Image != "" {
				return c.Image
			}
		}
	}
	return fallback
}

// diagnoseMount reports what keeps a pod's containers from being created:
// a volume that cannot be mounted or attached, or a sandbox (network) the
// runtime cannot set up.
func diagnoseMount(in DiagnoseInput) (Diagnosis, bool) {
	// These matter while containers are still being created.
	for _, s := range allStatuses(in.Pod) {
		if s.State.Running != nil {
			return Diagnosis{}, false
		}
	}
	for _, reason := range []string{"FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox"} {
		e := latestEvent(in.Events, reason, "")
		if e == nil {
			continue
		}
		msg := oneLine(e.Message)
		short := strings.Replace(msg, "MountVolume.SetUp failed for volume", "volume", 1)
		summary := "Pod cannot start: " + truncate(short, 400)
		return Diagnosis{Cause: reason, Summary: strings.TrimSuffix(summary, ".") + ".",
			Evidence: [][2]string{{eventLabel(e), truncate(msg, 400)}}}, true
	}
	return Diagnosis{}, false
}

func diagnoseOOM(in DiagnoseInput) (Diagnosis, bool) {
	pod := in.Pod
	for _, s := range allStatuses(pod) {
		t := s.LastTerminationState.Terminated
		if s.State.Terminated != nil && s.State.Terminated.Reason == "OOMKilled" {
			t = s.State.Terminated
		}
		if t == nil || t.Reason != "OOMKilled" {
			continue
		}
		summary := fmt.Sprintf("Container %s was OOMKilled (exit code %d)", s.Name, t.ExitCode)
		if lim := memoryLimit(pod, s.Name); lim != "" {
			summary += "; memory limit " + lim
		} else {
			summary += "; it has no memory limit, so the node ran out of memory"
		}
		if s.RestartCount > 0 {
			summary += fmt.Sprintf("; restarted %d times", s.RestartCount)
		}
		if m := oneLine(t.Message); m != "" {
			summary += ": " + truncate(m, 200)
		}
		return Diagnosis{Cause: "OOMKilled", Container: s.Name, Summary: summary + ".",
			Evidence: [][2]string{{"container " + s.Name + " last termination", terminationText(t)}}}, true
	}
	return Diagnosis{}, false
}

func memoryLimit(pod *corev1.Pod, container string) string {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == container {
				if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
					return q.String()
				}
			}
		}
	}
	return ""
}

// probeRE reads the kubelet's Unhealthy events: "Liveness probe failed: …".
var probeRE = regexp.MustCompile(`^(Liveness|Readiness|Startup) probe (?:failed|errored): ?(.*)$`)

func diagnoseProbe(in DiagnoseInput) (Diagnosis, bool) {
	// Liveness and startup failures restart the container: they come first.
	var best *corev1.Event
	var bestKind string
	for i := range in.Events {
		e := &in.Events[i]
		if e.Reason != "Unhealthy" {
			continue
		}
		m := probeRE.FindStringSubmatch(oneLine(e.Message))
		if m == nil {
			continue
		}
		rank := func(k string) int {
			if k == "Readiness" {
				return 0
			}
			return 1
		}
		if best == nil || rank(m[1]) > rank(bestKind) || (rank(m[1]) == rank(bestKind) && lastSeen(e).After(lastSeen(best))) {
			best, bestKind = e, m[1]
		}
	}
	if best == nil {
		return Diagnosis{}, false
	}
	container := fieldPathContainer(best.InvolvedObject.FieldPath)
	// A readiness failure on a container that is ready again is history.
	if bestKind == "Readiness" {
		if s := containerStatus(in.Pod.Status.ContainerStatuses, container); s != nil && s.Ready {
			return Diagnosis{}, false
		}
	}
	detail := probeRE.FindStringSubmatch(oneLine(best.Message))[2]
	who := "container " + container
	if container == "" {
		who = "pod " + ref(in.Pod.Namespace, in.Pod.Name)
	}
	summary := fmt.Sprintf("%s probe of %s fails: %s", bestKind, who, truncate(detail, 300))
	if n := eventCount(best); n > 1 {
		summary += fmt.Sprintf(" (%d times)", n)
	}
	switch bestKind {
	case "Readiness":
		summary += "; the pod gets no traffic while it fails"
	default:
		summary += "; the kubelet restarts the container"
		if s := containerStatus(in.Pod.Status.ContainerStatuses, container); s != nil && s.RestartCount > 0 {
			summary += fmt.Sprintf(" (restarted %d times)", s.RestartCount)
		}
	}
	return Diagnosis{Cause: "ProbeFailure", Container: container, Summary: summary + ".",
		Evidence: [][2]string{{eventLabel(best), truncate(oneLine(best.Message), 300)}}}, true
}

// fieldPathContainer reads "spec.containers{app}".
func fieldPathContainer(fp string) string {
	_, rest, ok := strings.Cut(fp, "{")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "}")
	return name
}

// missingEnvREs recognise an application saying that it lacks an
// environment variable, in the forms commonly logged.
var missingEnvREs = []*regexp.Regexp{
	regexp.MustCompile(`(?i)env(?:ironment)?(?:\s+variable|\s+var)?\s+["'$]?\{?([A-Za-z_][A-Za-z0-9_]*)\}?["']?\s+(?:is\s+)?(?:undefined|not set|not defined|missing|required|empty|unset)`),
	regexp.MustCompile(`(?i)(?:missing|undefined|unset)\s+(?:required\s+)?env(?:ironment)?(?:\s+variable|\s+var)?[:\s]+["'$]?\{?([A-Za-z_][A-Za-z0-9_]*)`),
	regexp.MustCompile(`(?i)["'$]?\{?([A-Z_][A-Z0-9_]*)\}?["']? (?:environment variable|env var) (?:is )?(?:not set|undefined|missing|required)`),
}

// crashingContainer is the container (init containers first) that crashes
// (has terminated before and is not running now), or "".
func crashingContainer(pod *corev1.Pod) string {
	for _, s := range allStatuses(pod) {
		if s.LastTerminationState.Terminated == nil && (s.State.Terminated == nil || s.State.Terminated.ExitCode == 0) {
			continue
		}
		if s.State.Running != nil && s.Ready {
			continue
		}
		return s.Name
	}
	return ""
}

func diagnoseCrash(in DiagnoseInput) (Diagnosis, bool) {
	pod := in.Pod
	name := crashingContainer(pod)
	if name == "" {
		return Diagnosis{}, false
	}
	var s corev1.ContainerStatus
	for _, x := range allStatuses(pod) {
		if x.Name == name {
			s = x
		}
	}
	t := s.LastTerminationState.Terminated
	if t == nil {
		t = s.State.Terminated
	}
	state := "keeps crashing"
	cause := "CrashLoopBackOff"
	if s.State.Waiting == nil || s.State.Waiting.Reason != "CrashLoopBackOff" {
		state, cause = "crashed", "Crashed"
	}
	exit := ""
	if t != nil {
		exit = fmt.Sprintf("exit code %d", t.ExitCode)
		if t.Reason != "" {
			exit = t.Reason + ", " + exit
		}
	}
	lastLine, lastWhat := ErrorLine(in.Logs[name]), "its last error"
	if lastLine == "" {
		lastLine, lastWhat = lastLogLine(in.Logs[name]), "its last log line"
	}
	var env string
	for _, l := range strings.Split(in.Logs[name], "\n") {
		for _, re := range missingEnvREs {
			if m := re.FindStringSubmatch(l); m != nil {
				env, lastLine, lastWhat = m[1], strings.TrimSpace(l), "its last log line"
			}
		}
	}
	d := Diagnosis{Cause: cause, Container: name}
	if t != nil {
		d.Evidence = append(d.Evidence, [2]string{"container " + name + " last termination", terminationText(t)})
	}
	summary := fmt.Sprintf("Container %s %s", name, state)
	if env != "" {
		d.Cause = "MissingEnv"
		summary = fmt.Sprintf("Container %s %s because environment variable %s is not set", name, state, env)
		if isDeclared(pod, name, env) {
			summary = fmt.Sprintf("Container %s %s: it reports environment variable %s as missing or empty", name, state, env)
		}
	}
	var details []string
	if exit != "" {
		details = append(details, exit)
	}
	if s.RestartCount > 0 {
		details = append(details, "restarted "+strconv.Itoa(int(s.RestartCount))+" times")
	}
	if len(details) > 0 {
		summary += " (" + strings.Join(details, "; ") + ")"
	}
	if lastLine != "" {
		summary += fmt.Sprintf("; %s: %q", lastWhat, truncate(lastLine, 200))
		d.Evidence = append(d.Evidence, [2]string{"log of the previous instance", truncate(lastLine, 300)})
	}
	d.Summary = summary + "."
	return d, true
}

// isDeclared says whether the container's spec sets the variable.
func isDeclared(pod *corev1.Pod, container, env string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name != container {
			continue
		}
		for _, e := range c.Env {
			if e.Name == env {
				return true
			}
		}
	}
	return false
}

// Lines that say why a program died, strongest first: a panic, a fatal
// error, an exception, a Python-style "ValueError:"; then any error-like
// line. Go's "exit status 2" after a panic, stack frames and blank lines
// never are the reason.
var (
	strongErrorRE = regexp.MustCompile(`(?i)(^|[\s\]:|])(panic:|fatal|exception|traceback|segmentation fault|out of memory|[a-z]+(error|exception):)`)
	errorLineRE   = regexp.MustCompile(`(?i)\b(error|err=|failed|failure|cannot|can't|unable to|refused|denied|invalid|not found|timed? ?out)\b`)
	notReasonRE   = regexp.MustCompile(`(?i)^(exit status \d+|goroutine \d+ \[|at [\w$.<>]+\(|\.\.\. \d+ more|file ".*", line \d+)`)
)

// ErrorLine is the last meaningful error line of a log: the last panic,
// fatal error or exception if there is one, else the last line that reads
// like an error; "" when none does. The crash investigator's "why" and the
// investigation's transcript both show it.
func ErrorLine(text string) string {
	lines := strings.Split(text, "\n")
	for _, re := range []*regexp.Regexp{strongErrorRE, errorLineRE} {
		for i := len(lines) - 1; i >= 0; i-- {
			l := strings.TrimSpace(lines[i])
			if l == "" || notReasonRE.MatchString(l) {
				continue
			}
			if re.MatchString(l) {
				return l
			}
		}
	}
	return ""
}

func lastLogLine(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}

func allStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(pod.Status.InitContainerStatuses)+len(pod.Status.ContainerStatuses))
	out = append(out, pod.Status.InitContainerStatuses...)
	return append(out, pod.Status.ContainerStatuses...)
}

// latestEvent is the newest event with reason about container (any
// container when empty).
func latestEvent(evs []corev1.Event, reason, container string) *corev1.Event {
	return latestEventMatching(evs, reason, container, "")
}

func latestEventMatching(evs []corev1.Event, reason, container, prefix string) *corev1.Event {
	var best *corev1.Event
	for i := range evs {
		e := &evs[i]
		if e.Reason != reason || !strings.HasPrefix(e.Message, prefix) {
			continue
		}
		if c := fieldPathContainer(e.InvolvedObject.FieldPath); container != "" && c != "" && c != container {
			continue
		}
		if best == nil || lastSeen(e).After(lastSeen(best)) {
			best = e
		}
	}
	return best
}

// eventLabel names an event in the evidence: "event Warning Failed (x3)".
func eventLabel(e *corev1.Event) string {
	s := "event " + strings.TrimSpace(e.Type+" "+e.Reason)
	if n := eventCount(e); n > 1 {
		s += fmt.Sprintf(" (x%d)", n)
	}
	return s
}
