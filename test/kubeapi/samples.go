package kubeapi

// Pods and events built from the real samples in
// internal/fixtures/testdata/payloads/k8s
// (see its SOURCES.md): Pod manifests (gitops-engine, is-healthy) and
// `kubectl describe` outputs recorded from real clusters (holmesgpt). The
// tests of sources/kubernetes drive the fake API with them, and the tests
// here drive a real API server with them.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/medichq/medic/internal/fixtures"
)

// SamplesDir is the folder of Kubernetes samples: the module's
// internal/fixtures/testdata/payloads/k8s, or $MEDIC_K8S_SAMPLES.
func SamplesDir() (string, error) {
	if d := os.Getenv("MEDIC_K8S_SAMPLES"); d != "" {
		return d, nil
	}
	d := fixtures.Path("payloads", "k8s")
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("kubernetes samples: %w (set MEDIC_K8S_SAMPLES)", err)
	}
	return d, nil
}

func readSample(rel string) ([]byte, error) {
	dir, err := SamplesDir()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, rel))
}

var (
	nowPlaceholder = regexp.MustCompile(`"?@now(-(\d+)([smhd]))?"?`)
	rfc3339        = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z`)
)

// LoadPodYAML reads a Pod manifest sample and moves it to now: is-healthy's
// "@now-5m" placeholders become times before now, its expected-*
// annotations go, and every timestamp shifts by the same amount so that the
// newest one is now (a 2018 crash loop is crash looping today, with its
// intervals intact). Identity fields the API server sets are cleared except
// the UID, which the fake API does not invent.
func LoadPodYAML(rel string, now time.Time) (*corev1.Pod, error) {
	raw, err := readSample(rel)
	if err != nil {
		return nil, err
	}
	text := nowPlaceholder.ReplaceAllStringFunc(string(raw), func(m string) string {
		sm := nowPlaceholder.FindStringSubmatch(m)
		t := now
		if sm[2] != "" {
			n, _ := strconv.Atoi(sm[2])
			unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[sm[3]]
			t = now.Add(-time.Duration(n) * unit)
		}
		return `"` + t.UTC().Format(time.RFC3339) + `"`
	})
	var newest time.Time
	for _, m := range rfc3339.FindAllString(text, -1) {
		if t, err := time.Parse(time.RFC3339, m); err == nil && t.After(newest) {
			newest = t
		}
	}
	if !newest.IsZero() {
		shift := now.Sub(newest).Truncate(time.Second)
		text = rfc3339.ReplaceAllStringFunc(text, func(m string) string {
			t, _ := time.Parse(time.RFC3339, m)
			return t.Add(shift).UTC().Format(time.RFC3339)
		})
	}
	var p corev1.Pod
	if err := yaml.Unmarshal([]byte(text), &p); err != nil {
		return nil, fmt.Errorf("sample %s: %w", rel, err)
	}
	for k := range p.Annotations {
		if strings.HasPrefix(k, "expected-") {
			delete(p.Annotations, k)
		}
	}
	p.ResourceVersion = ""
	p.SelfLink = ""
	p.CreationTimestamp = metav1.Time{}
	return &p, nil
}

// Described is what a `kubectl describe pod` sample says.
type Described struct {
	Name, Namespace, Node string
	Labels                map[string]string
	// ControlledBy is "ReplicaSet/name" or "".
	ControlledBy string
	Containers   []DescribedContainer
	Events       []DescribedEvent
}

// DescribedContainer is one container section.
type DescribedContainer struct {
	Name, Image  string
	State        string // Waiting, Running, Terminated
	StateReason  string
	LastState    string
	LastReason   string
	LastExitCode int
	LastStarted  time.Time
	LastFinished time.Time
	RestartCount int
	MemoryLimit  string
}

// DescribedEvent is one row of the Events table.
type DescribedEvent struct {
	Type, Reason, From, Message string
	// Age is how long ago it was last seen, Over the span of its repeats.
	Age, Over time.Duration
	Count     int
}

// LoadDescribe parses a holmesgpt `kubectl describe pod` recording (JSON
// header lines, "stdout:" (not always), the output, "stderr:").
func LoadDescribe(rel string) (*Described, error) {
	raw, err := readSample(rel)
	if err != nil {
		return nil, err
	}
	d := &Described{Labels: map[string]string{}}
	var (
		section string // "", Labels, Containers, Events, Other
		cur     *DescribedContainer
		sub     string // State, Last State, Limits
	)
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	inBody := false
	for sc.Scan() {
		line := sc.Text()
		if !inBody {
			// The JSON header lines, then an optional "stdout:".
			if strings.HasPrefix(line, "{") {
				continue
			}
			inBody = true
			if strings.TrimSpace(line) == "stdout:" {
				continue
			}
		}
		if strings.TrimSpace(line) == "stderr:" {
			break
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			continue
		}
		if indent == 0 {
			key, val, _ := strings.Cut(trimmed, ":")
			val = strings.TrimSpace(val)
			section = "Other"
			switch key {
			case "Name":
				d.Name = val
			case "Namespace":
				d.Namespace = val
			case "Node":
				d.Node, _, _ = strings.Cut(val, "/")
			case "Labels":
				section = "Labels"
				addLabel(d.Labels, val)
			case "Controlled By":
				d.ControlledBy = val
			case "Containers":
				section = "Containers"
			case "Events":
				section = "Events"
			}
			continue
		}
		switch section {
		case "Labels":
			if indent > 4 {
				addLabel(d.Labels, trimmed)
			}
		case "Containers":
			key, val, _ := strings.Cut(trimmed, ":")
			val = strings.TrimSpace(val)
			switch indent {
			case 2:
				d.Containers = append(d.Containers, DescribedContainer{Name: key})
				cur = &d.Containers[len(d.Containers)-1]
				sub = ""
			case 4:
				if cur == nil {
					continue
				}
				sub = key
				switch key {
				case "Image":
					cur.Image = val
				case "State":
					cur.State = val
				case "Last State":
					cur.LastState = val
				case "Restart Count":
					cur.RestartCount, _ = strconv.Atoi(val)
				}
			case 6:
				if cur == nil {
					continue
				}
				switch sub {
				case "State":
					if key == "Reason" {
						cur.StateReason = val
					}
				case "Last State":
					switch key {
					case "Reason":
						cur.LastReason = val
					case "Exit Code":
						cur.LastExitCode, _ = strconv.Atoi(val)
					case "Started":
						cur.LastStarted, _ = time.Parse(time.RFC1123Z, val)
					case "Finished":
						cur.LastFinished, _ = time.Parse(time.RFC1123Z, val)
					}
				case "Limits":
					if key == "memory" {
						cur.MemoryLimit = val
					}
				}
			}
		case "Events":
			if e, ok := parseEventRow(trimmed); ok {
				d.Events = append(d.Events, e)
			}
		}
	}
	if d.Name == "" {
		return nil, fmt.Errorf("sample %s: no pod name found", rel)
	}
	return d, sc.Err()
}

func addLabel(m map[string]string, kv string) {
	if kv == "" || kv == "<none>" {
		return
	}
	k, v, _ := strings.Cut(kv, "=")
	m[k] = v
}

var (
	eventRow = regexp.MustCompile(`^(Normal|Warning)\s+(\S+)\s+(\S+)(?:\s+\(x(\d+) over (\S+)\))?\s+(\S+)\s+(.*)$`)
)

func parseEventRow(s string) (DescribedEvent, bool) {
	m := eventRow.FindStringSubmatch(s)
	if m == nil {
		return DescribedEvent{}, false
	}
	e := DescribedEvent{Type: m[1], Reason: m[2], From: m[6], Message: strings.ReplaceAll(m[7], `\"`, `"`), Count: 1}
	e.Age = parseAge(m[3])
	e.Over = e.Age
	if m[4] != "" {
		e.Count, _ = strconv.Atoi(m[4])
		e.Over = parseAge(m[5])
	}
	return e, true
}

// parseAge reads kubectl ages: 38s, 6m45s, 5h43m, 2d3h.
func parseAge(s string) time.Duration {
	var days time.Duration
	if d, rest, ok := strings.Cut(s, "d"); ok {
		n, _ := strconv.Atoi(d)
		days = time.Duration(n) * 24 * time.Hour
		s = rest
	}
	if s == "" {
		return days
	}
	v, _ := time.ParseDuration(s)
	return days + v
}

// Pod builds the described pod as the API would hold it at now: the same
// names, labels, owner, node, images, states, exit codes, restart counts
// and memory limits, with the last termination moved so it ended just now.
// uid is set (the fake API does not invent one; a real one replaces it).
func (d *Described) Pod(uid string, now time.Time) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: d.Namespace, Labels: d.Labels, UID: typesUID(uid)},
		Spec:       corev1.PodSpec{NodeName: d.Node, RestartPolicy: corev1.RestartPolicyAlways},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if kind, name, ok := strings.Cut(d.ControlledBy, "/"); ok {
		api := "apps/v1"
		if kind == "Job" {
			api = "batch/v1"
		}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: api, Kind: kind, Name: name, UID: typesUID(uid + "-owner"), Controller: ptr.To(true)}}
	}
	for _, c := range d.Containers {
		spec := corev1.Container{Name: c.Name, Image: c.Image}
		if c.MemoryLimit != "" {
			q := resource.MustParse(c.MemoryLimit)
			spec.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: q}
			spec.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: q}
		}
		p.Spec.Containers = append(p.Spec.Containers, spec)
		st := corev1.ContainerStatus{Name: c.Name, Image: c.Image, RestartCount: int32(c.RestartCount)}
		switch c.State {
		case "Waiting":
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: c.StateReason}
		case "Running":
			st.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now)}
		}
		if c.LastState == "Terminated" {
			dur := c.LastFinished.Sub(c.LastStarted)
			st.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
				Reason: c.LastReason, ExitCode: int32(c.LastExitCode),
				StartedAt: metav1.NewTime(now.Add(-dur).Truncate(time.Second)), FinishedAt: metav1.NewTime(now.Truncate(time.Second)),
			}
		}
		if st.State.Waiting != nil && (st.State.Waiting.Reason == "ErrImagePull" || st.State.Waiting.Reason == "ImagePullBackOff") {
			p.Status.Phase = corev1.PodPending
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, st)
	}
	return p
}

// WarningEvents builds the Warning rows of the Events table as core/v1
// Events about the pod, timed relative to now.
func (d *Described) WarningEvents(now time.Time) []*corev1.Event {
	var out []*corev1.Event
	for i, e := range d.Events {
		if e.Type != corev1.EventTypeWarning {
			continue
		}
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s.%x", d.Name, i), Namespace: d.Namespace,
				UID: typesUID(fmt.Sprintf("%s-event-%d", d.Name, i)),
			},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: d.Namespace, Name: d.Name},
			Type:           corev1.EventTypeWarning,
			Reason:         e.Reason,
			Message:        e.Message,
			Count:          int32(e.Count),
			FirstTimestamp: metav1.NewTime(now.Add(-e.Over).Truncate(time.Second)),
			LastTimestamp:  metav1.NewTime(now.Add(-e.Age).Truncate(time.Second)),
			Source:         corev1.EventSource{Component: e.From, Host: d.Node},
		}
		if len(d.Containers) == 1 && strings.Contains(e.Message, "container") {
			ev.InvolvedObject.FieldPath = "spec.containers{" + d.Containers[0].Name + "}"
		}
		out = append(out, ev)
	}
	return out
}
