package kube

// Test pods and events built from the real samples in
// internal/fixtures/testdata/payloads/k8s (see its SOURCES.md): Pod manifests parse into
// corev1.Pod once the test-harness annotations and placeholder times are
// replaced; `kubectl describe` outputs are read by a small parser that keeps
// what the actions look at (container states, limits, node selector,
// volumes, conditions, events).

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/medichq/medic/internal/fixtures"
)

// sampleBase is the time describe ages are counted back from, and the
// "@now" of the is-healthy placeholders: the samples' own clocks are gone.
var sampleBase = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func samplePath(t *testing.T, rel string) string {
	t.Helper()
	p := fixtures.Path("payloads", "k8s", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("sample: %v", err)
	}
	return p
}

// sampleText reads a sample, dropping the two JSON header lines holmesgpt
// puts before the tool output, the "stdout:" marker and what follows
// "stderr:", and undoing the \" escaping one of them carries.
func sampleText(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(samplePath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, l := range strings.Split(string(b), "\n") {
		if i < 2 && strings.HasPrefix(l, "{") {
			continue
		}
		if l == "stdout:" {
			continue
		}
		if l == "stderr:" {
			break
		}
		out = append(out, strings.ReplaceAll(l, `\"`, `"`))
	}
	return strings.Join(out, "\n")
}

var (
	// holmesgpt 158 mocks dates as "2025-08-2312:02:32Z" (no T).
	squashedTimeRE = regexp.MustCompile(`(\d{4}-\d{2}-\d{2})(\d{2}:\d{2}:\d{2}Z)`)
	nowPlaceholder = regexp.MustCompile(`^@now(?:-(\w+))?$`)
)

// samplePod parses a Pod manifest sample into a corev1.Pod.
func samplePod(t *testing.T, rel string) *corev1.Pod {
	t.Helper()
	text := squashedTimeRE.ReplaceAllString(sampleText(t, rel), "${1}T${2}")
	var m map[string]any
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	// is-healthy's harness: expected-* annotations and "@now-5m" times.
	if md, ok := m["metadata"].(map[string]any); ok {
		if ann, ok := md["annotations"].(map[string]any); ok {
			for k := range ann {
				if strings.HasPrefix(k, "expected-") {
					delete(ann, k)
				}
			}
			if len(ann) == 0 {
				delete(md, "annotations")
			}
		}
	}
	replaceNow(t, m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(b, &pod); err != nil {
		t.Fatalf("%s is not a Pod: %v", rel, err)
	}
	return &pod
}

func replaceNow(t *testing.T, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok {
				if m := nowPlaceholder.FindStringSubmatch(s); m != nil {
					d := time.Duration(0)
					if m[1] != "" {
						var err error
						if d, err = time.ParseDuration(m[1]); err != nil {
							t.Fatalf("placeholder %q: %v", s, err)
						}
					}
					v[k] = sampleBase.Add(-d).Format(time.RFC3339)
				}
				continue
			}
			replaceNow(t, x)
		}
	case []any:
		for _, x := range v {
			replaceNow(t, x)
		}
	}
}

// describePod reads a `kubectl describe pod` sample into a Pod and its
// Events.
func describePod(t *testing.T, rel string) (*corev1.Pod, []corev1.Event) {
	t.Helper()
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}}
	var events []corev1.Event
	var (
		section   string
		container *corev1.Container
		status    *corev1.ContainerStatus
		sub       string // State, Last State, Limits, Requests, Labels
		cols      []int  // column starts of the events table
		volume    string
	)
	finishContainer := func() {
		if container != nil {
			pod.Spec.Containers = append(pod.Spec.Containers, *container)
			if status != nil {
				pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, *status)
			}
		}
		container, status = nil, nil
	}
	sc := bufio.NewScanner(strings.NewReader(sampleText(t, rel)))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		key, val, hasColon := strings.Cut(strings.TrimSpace(line), ":")
		val = strings.TrimSpace(val)
		if indent == 0 {
			finishContainer()
			section, sub = key, ""
			switch key {
			case "Name":
				pod.Name = val
			case "Namespace":
				pod.Namespace = val
			case "Node":
				if val != "<none>" {
					pod.Spec.NodeName, _, _ = strings.Cut(val, "/")
				}
			case "Status":
				pod.Status.Phase = corev1.PodPhase(val)
			case "Labels":
				sub = "Labels"
				addLabel(pod, val)
			case "Controlled By":
				kind, name, _ := strings.Cut(val, "/")
				yes := true
				pod.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &yes, APIVersion: "apps/v1"}}
			case "Node-Selectors":
				if val != "<none>" {
					k, v, _ := strings.Cut(val, "=")
					pod.Spec.NodeSelector = map[string]string{k: v}
				}
			case "QoS Class":
				pod.Status.QOSClass = corev1.PodQOSClass(val)
			case "Start Time":
				if ts, err := time.Parse(time.RFC1123Z, val); err == nil {
					st := metav1.NewTime(ts.UTC())
					pod.Status.StartTime = &st
				}
			}
			continue
		}
		switch section {
		case "Labels":
			addLabel(pod, strings.TrimSpace(line))
		case "Containers":
			switch {
			case indent == 2 && hasColon && val == "":
				finishContainer()
				container = &corev1.Container{Name: key}
			case container == nil:
			case indent == 4:
				sub = ""
				switch key {
				case "Image":
					container.Image = val
				case "State":
					status = ensureStatus(status, container)
					sub = "State"
					setState(&status.State, val)
				case "Last State":
					status = ensureStatus(status, container)
					sub = "Last State"
					setState(&status.LastTerminationState, val)
				case "Ready":
					status = ensureStatus(status, container)
					status.Ready = val == "True"
				case "Restart Count":
					status = ensureStatus(status, container)
					n, _ := strconv.Atoi(val)
					status.RestartCount = int32(n)
				case "Limits", "Requests":
					sub = key
				}
			case indent == 6 && hasColon:
				switch sub {
				case "State", "Last State":
					st := &status.State
					if sub == "Last State" {
						st = &status.LastTerminationState
					}
					setStateField(st, key, val)
				case "Limits", "Requests":
					rl := &container.Resources.Limits
					if sub == "Requests" {
						rl = &container.Resources.Requests
					}
					if *rl == nil {
						*rl = corev1.ResourceList{}
					}
					(*rl)[corev1.ResourceName(key)] = resource.MustParse(val)
				}
			}
		case "Conditions":
			f := strings.Fields(line)
			if len(f) == 2 && f[0] != "Type" {
				pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: corev1.PodConditionType(f[0]), Status: corev1.ConditionStatus(f[1])})
			}
		case "Volumes":
			if indent == 2 && hasColon && val == "" {
				volume = key
			} else if key == "ClaimName" {
				pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: volume,
					VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: val}}})
			}
		case "Events":
			trimmed := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(trimmed, "Type") && strings.Contains(trimmed, "Message"):
				for _, h := range []string{"Type", "Reason", "Age", "From", "Message"} {
					cols = append(cols, strings.Index(line, h))
				}
			case strings.HasPrefix(trimmed, "----"):
			case len(cols) == 5 && len(line) > cols[4]:
				cell := func(i int) string { return strings.TrimSpace(line[cols[i]:cols[i+1]]) }
				events = append(events, describeEvent(pod, len(events), cell(0), cell(1), cell(2), cell(3), strings.TrimSpace(line[cols[4]:])))
			}
		}
	}
	finishContainer()
	if pod.Name == "" {
		t.Fatalf("%s: no pod name found", rel)
	}
	return pod, events
}

func addLabel(pod *corev1.Pod, s string) {
	if s == "" || s == "<none>" {
		return
	}
	k, v, _ := strings.Cut(s, "=")
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[k] = v
}

func ensureStatus(s *corev1.ContainerStatus, c *corev1.Container) *corev1.ContainerStatus {
	if s == nil {
		s = &corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	}
	return s
}

func setState(st *corev1.ContainerState, val string) {
	switch val {
	case "Waiting":
		st.Waiting = &corev1.ContainerStateWaiting{}
	case "Running":
		st.Running = &corev1.ContainerStateRunning{}
	case "Terminated":
		st.Terminated = &corev1.ContainerStateTerminated{}
	}
}

func setStateField(st *corev1.ContainerState, key, val string) {
	ts := func() metav1.Time {
		t, err := time.Parse(time.RFC1123Z, val)
		if err != nil {
			return metav1.Time{}
		}
		return metav1.NewTime(t.UTC())
	}
	switch {
	case st.Waiting != nil && key == "Reason":
		st.Waiting.Reason = val
	case st.Waiting != nil && key == "Message":
		st.Waiting.Message = val
	case st.Running != nil && key == "Started":
		st.Running.StartedAt = ts()
	case st.Terminated != nil:
		switch key {
		case "Reason":
			st.Terminated.Reason = val
		case "Exit Code":
			n, _ := strconv.Atoi(val)
			st.Terminated.ExitCode = int32(n)
		case "Started":
			st.Terminated.StartedAt = ts()
		case "Finished":
			st.Terminated.FinishedAt = ts()
		case "Message":
			st.Terminated.Message = val
		}
	}
}

// ageRE reads describe's Age column: "87s (x23 over 6m33s)", "38s".
var ageRE = regexp.MustCompile(`^(\S+)(?: \(x(\d+) over (\S+)\))?$`)

// describeEvent builds the core/v1 Event behind one describe row, timed
// back from sampleBase by its age.
func describeEvent(pod *corev1.Pod, i int, typ, reason, age, from, msg string) corev1.Event {
	count := int32(1)
	last := sampleBase
	first := sampleBase
	if m := ageRE.FindStringSubmatch(age); m != nil {
		if d, err := time.ParseDuration(m[1]); err == nil {
			last = sampleBase.Add(-d)
			first = last
		}
		if m[2] != "" {
			n, _ := strconv.Atoi(m[2])
			count = int32(n)
			if d, err := time.ParseDuration(m[3]); err == nil {
				first = sampleBase.Add(-d)
			}
		}
	}
	return corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      pod.Name + "." + strconv.Itoa(1000+i),
			Namespace: pod.Namespace,
		},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, APIVersion: "v1"},
		Type:           typ,
		Reason:         reason,
		Message:        msg,
		Source:         corev1.EventSource{Component: from},
		Count:          count,
		FirstTimestamp: metav1.NewTime(first),
		LastTimestamp:  metav1.NewTime(last),
	}
}

// TestSamplesParse checks the loaders on every sample, so a change in the
// fixtures shows here first.
func TestSamplesParse(t *testing.T) {
	for _, rel := range []string{
		"crashloopbackoff/gitops-engine__pod-crashloop.yaml",
		"crashloopbackoff/holmesgpt__158__kubectl_get_yaml_pod_frontend-service.txt",
		"imagepullbackoff/gitops-engine__pod-imagepullbackoff.yaml",
		"oomkilled/is-healthy__oomkilled-unhealthy.yaml",
	} {
		pod := samplePod(t, rel)
		if pod.Name == "" || len(pod.Spec.Containers) == 0 || len(pod.Status.ContainerStatuses) == 0 {
			t.Errorf("%s: parsed pod is incomplete: %+v", rel, pod.ObjectMeta)
		}
		if len(pod.Annotations) > 0 && pod.Annotations["expected-status"] != "" {
			t.Errorf("%s: harness annotations left in", rel)
		}
	}
	for _, tt := range []struct {
		rel        string
		containers int
		events     int
	}{
		{"crashloopbackoff/holmesgpt__11_KubePodCrashLooping__kubectl_describe.txt", 1, 9},
		{"oomkilled/holmesgpt__01_oom_kill__kubectl_describe.txt", 1, 10},
		{"oomkilled/holmesgpt__02_what_is_wrong_with_pod__kubectl_describe.txt", 1, 5},
		{"imagepullbackoff/holmesgpt__04_image_pull_backoff__kubectl_describe.txt", 1, 6},
		{"imagepullbackoff/holmesgpt__54__kubectl_describe_fast-fail-pod.txt", 1, 6},
		{"failedscheduling/holmesgpt__13a_pending_node_selector__kubectl_describe.txt", 1, 1},
		{"failedscheduling/holmesgpt__12_KubePodNotReady__kubectl_describe.txt", 1, 1},
		{"failedscheduling/holmesgpt__24a_misconfigured_pvc__kubectl_describe.txt", 1, 1},
	} {
		pod, evs := describePod(t, tt.rel)
		if len(pod.Spec.Containers) != tt.containers || len(evs) != tt.events {
			t.Errorf("%s: %d containers and %d events, want %d and %d", tt.rel, len(pod.Spec.Containers), len(evs), tt.containers, tt.events)
		}
		for _, e := range evs {
			if e.Reason == "" || e.Message == "" || e.Type == "" {
				t.Errorf("%s: incomplete event %+v", tt.rel, e)
			}
		}
	}
}
