package kube

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/medichq/medic/event"
)

// The investigator's one-liners for each cause, on pods built from the
// real samples. Probe failures and missing ConfigMap/Secret keys have no
// recorded sample; those pods carry the messages the kubelet writes
// (pkg/kubelet/prober: "HTTP probe failed with statuscode: %d";
// pkg/kubelet/kubelet_pods.go: "couldn't find key %v in Secret %v/%v",
// and the API's `secret "x" not found`).
func TestDiagnoseSamples(t *testing.T) {
	fromDescribe := func(rel string) func(t *testing.T) DiagnoseInput {
		return func(t *testing.T) DiagnoseInput {
			pod, evs := describePod(t, rel)
			return DiagnoseInput{Pod: pod, Events: evs}
		}
	}
	fromYAML := func(rel string) func(t *testing.T) DiagnoseInput {
		return func(t *testing.T) DiagnoseInput { return DiagnoseInput{Pod: samplePod(t, rel)} }
	}
	tests := []struct {
		name  string
		input func(t *testing.T) DiagnoseInput
		cause string
		want  string // the whole line, or
		parts []string
	}{
		{
			name:  "image pull: repository does not exist or needs authorization",
			input: fromDescribe("imagepullbackoff/holmesgpt__04_image_pull_backoff__kubectl_describe.txt"),
			cause: "ImagePull",
			want: `Container crw-main-container cannot pull image "yourcompany/crw:latest" (ErrImagePull): ` +
				`pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed.`,
		},
		{
			name:  "image pull: registry host does not resolve",
			input: fromDescribe("imagepullbackoff/holmesgpt__54__kubectl_describe_fast-fail-pod.txt"),
			cause: "ImagePull",
			want: `Container fail-container cannot pull image "totallynonexistentregistry12345.io/doesnotexist/invalid:latest" (ImagePullBackOff): ` +
				`failed to do request: Head "https://totallynonexistentregistry12345.io/v2/doesnotexist/invalid/manifests/latest": ` +
				`dial tcp: lookup totallynonexistentregistry12345.io on 67.207.67.2:53: no such host.`,
		},
		{
			name:  "image pull: only the back-off in the status",
			input: fromYAML("imagepullbackoff/gitops-engine__pod-imagepullbackoff.yaml"),
			cause: "ImagePull",
			want:  `Container errimagepullbackoff cannot pull image "gcr.io/heptio-images/ks-guestbook-demo:0.3" (ImagePullBackOff).`,
		},
		{
			name:  "OOMKilled at the 100Mi limit",
			input: fromDescribe("oomkilled/holmesgpt__01_oom_kill__kubectl_describe.txt"),
			cause: "OOMKilled",
			want:  "Container memory-eater was OOMKilled (exit code 137); memory limit 100Mi; restarted 6 times.",
		},
		{
			name:  "OOMKilled at the 50Mi limit",
			input: fromDescribe("oomkilled/holmesgpt__02_what_is_wrong_with_pod__kubectl_describe.txt"),
			cause: "OOMKilled",
			want:  "Container main was OOMKilled (exit code 137); memory limit 50Mi; restarted 16 times.",
		},
		{
			name:  "OOMKilled with the runtime's message",
			input: fromYAML("oomkilled/is-healthy__oomkilled-unhealthy.yaml"),
			cause: "OOMKilled",
			want:  "Container oomkilled was OOMKilled (exit code 1); memory limit 200Mi; restarted 9 times: system has run out of memory.",
		},
		{
			name:  "unschedulable: node selector",
			input: fromDescribe("failedscheduling/holmesgpt__13a_pending_node_selector__kubectl_describe.txt"),
			cause: "Unschedulable",
			want:  "Pod cannot be scheduled: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector (its node selector is label=someLabel).",
		},
		{
			name:  "unschedulable: insufficient GPUs",
			input: fromDescribe("failedscheduling/holmesgpt__12_KubePodNotReady__kubectl_describe.txt"),
			cause: "Unschedulable",
			want:  "Pod cannot be scheduled: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu (it requests cpu 3, memory 5Gi, nvidia.com/gpu 5).",
		},
		{
			name:  "unschedulable: unbound PVC",
			input: fromDescribe("failedscheduling/holmesgpt__24a_misconfigured_pvc__kubectl_describe.txt"),
			cause: "Unschedulable",
			want:  "Pod cannot be scheduled: 0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims (claims: redis-standard-pvc).",
		},
		{
			name: "crash loop: the app says an environment variable is missing",
			input: func(t *testing.T) DiagnoseInput {
				in := fromDescribe("crashloopbackoff/holmesgpt__11_KubePodCrashLooping__kubectl_describe.txt")(t)
				// What the container's command prints (its Args in the sample).
				in.Logs = map[string]string{"payment-processing-container": "Environment variable DEPLOY_ENV is undefined\n"}
				return in
			},
			cause: "MissingEnv",
			want: "Container payment-processing-container keeps crashing because environment variable DEPLOY_ENV is not set " +
				`(Completed, exit code 0; restarted 14 times); its last log line: "Environment variable DEPLOY_ENV is undefined".`,
		},
		{
			name:  "crash loop: exit code and restarts",
			input: fromYAML("crashloopbackoff/gitops-engine__pod-crashloop.yaml"),
			cause: "CrashLoopBackOff",
			want:  "Container main keeps crashing (Error, exit code 1; restarted 3 times).",
		},
		{
			name: "crash loop: with the last log line",
			input: func(t *testing.T) DiagnoseInput {
				return DiagnoseInput{Pod: samplePod(t, "crashloopbackoff/holmesgpt__158__kubectl_get_yaml_pod_frontend-service.txt"),
					Logs: map[string]string{"stress": "stress: info: [1] dispatching hogs: 100 cpu, 0 io, 0 vm, 0 hdd\nstress: FAIL: [1] (451) failed run completed in 0s\n"}}
			},
			cause: "CrashLoopBackOff",
			want:  `Container stress keeps crashing (Error, exit code 255; restarted 7 times); its last error: "stress: FAIL: [1] (451) failed run completed in 0s".`,
		},
		{
			name: "crash loop: the panic, not the exit status after it",
			input: func(t *testing.T) DiagnoseInput {
				return DiagnoseInput{Pod: samplePod(t, "crashloopbackoff/holmesgpt__158__kubectl_get_yaml_pod_frontend-service.txt"),
					Logs: map[string]string{"stress": "listening on :8080\npanic: assignment to entry in nil map\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:42 +0x1d\nexit status 2\n"}}
			},
			cause: "CrashLoopBackOff",
			want:  `Container stress keeps crashing (Error, exit code 255; restarted 7 times); its last error: "panic: assignment to entry in nil map".`,
		},
		{
			name: "crash loop: a log without an error names its last line",
			input: func(t *testing.T) DiagnoseInput {
				return DiagnoseInput{Pod: samplePod(t, "crashloopbackoff/holmesgpt__158__kubectl_get_yaml_pod_frontend-service.txt"),
					Logs: map[string]string{"stress": "starting\nshutting down\n"}}
			},
			cause: "CrashLoopBackOff",
			want:  `Container stress keeps crashing (Error, exit code 255; restarted 7 times); its last log line: "shutting down".`,
		},
		{
			name:  "liveness probe",
			input: probeInput("Liveness probe failed: HTTP probe failed with statuscode: 500", 12, false),
			cause: "ProbeFailure",
			want:  "Liveness probe of container app fails: HTTP probe failed with statuscode: 500 (12 times); the kubelet restarts the container (restarted 4 times).",
		},
		{
			name:  "readiness probe",
			input: probeInput(`Readiness probe failed: Get "http://10.244.0.7:8080/ready": dial tcp 10.244.0.7:8080: connect: connection refused`, 31, false),
			cause: "ProbeFailure",
			want:  `Readiness probe of container app fails: Get "http://10.244.0.7:8080/ready": dial tcp 10.244.0.7:8080: connect: connection refused (31 times); the pod gets no traffic while it fails.`,
		},
		{
			name:  "readiness probe failure that is over",
			input: probeInput(`Readiness probe failed: HTTP probe failed with statuscode: 503`, 2, true),
			cause: "Healthy",
		},
		{
			name:  "missing Secret key",
			input: configInput("couldn't find key DB_URL in Secret taskboard/taskboard-secrets"),
			cause: "CreateContainerConfigError",
			want:  "Container api cannot start (CreateContainerConfigError): couldn't find key DB_URL in Secret taskboard/taskboard-secrets, referenced by env DATABASE_URL.",
		},
		{
			name:  "missing Secret",
			input: configInput(`secret "taskboard-secrets" not found`),
			cause: "CreateContainerConfigError",
			want:  `Container api cannot start (CreateContainerConfigError): secret "taskboard-secrets" not found, referenced by env DATABASE_URL.`,
		},
		{
			name:  "missing ConfigMap key",
			input: configInput("couldn't find key LOG_LEVEL in ConfigMap taskboard/taskboard-config"),
			cause: "CreateContainerConfigError",
			want:  "Container api cannot start (CreateContainerConfigError): couldn't find key LOG_LEVEL in ConfigMap taskboard/taskboard-config, referenced by env LOG_LEVEL.",
		},
		{
			name:  "missing ConfigMap for envFrom",
			input: configInput(`configmap "taskboard-flags" not found`),
			cause: "CreateContainerConfigError",
			want:  `Container api cannot start (CreateContainerConfigError): configmap "taskboard-flags" not found, referenced by envFrom.`,
		},
		{
			name: "missing ConfigMap for a volume",
			input: func(t *testing.T) DiagnoseInput {
				in := configInput("")(t)
				in.Pod.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
				in.Events = []corev1.Event{podEventOf(in.Pod, "Warning", "FailedMount", `MountVolume.SetUp failed for volume "config" : configmap "taskboard-config" not found`, 9, "")}
				return in
			},
			cause: "FailedMount",
			want:  `Pod cannot start: volume "config" : configmap "taskboard-config" not found.`,
		},
		{
			name: "sandbox cannot be created",
			input: func(t *testing.T) DiagnoseInput {
				in := configInput("")(t)
				in.Pod.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
				in.Events = []corev1.Event{podEventOf(in.Pod, "Warning", "FailedCreatePodSandBox",
					`Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "4f1c": plugin type="calico" failed (add): error getting ClusterInformation: connection is unauthorized: Unauthorized`, 14, "")}
				return in
			},
			cause: "FailedCreatePodSandBox",
			want:  `Pod cannot start: Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "4f1c": plugin type="calico" failed (add): error getting ClusterInformation: connection is unauthorized: Unauthorized.`,
		},
		{
			name: "evicted",
			input: func(t *testing.T) DiagnoseInput {
				pod := samplePod(t, "crashloopbackoff/gitops-engine__pod-crashloop.yaml")
				pod.Status = corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted",
					Message: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91572Ki. Container main was using 1840Mi, request is 0, has larger consumption of memory. "}
				return DiagnoseInput{Pod: pod}
			},
			cause: "Evicted",
			want:  "Pod was evicted from node minikube: The node was low on resource: memory. Threshold quantity: 100Mi, available: 91572Ki. Container main was using 1840Mi, request is 0, has larger consumption of memory.",
		},
		{
			name: "healthy",
			input: func(t *testing.T) DiagnoseInput {
				_, _, pods := cartDeployment(t)
				return DiagnoseInput{Pod: &pods[1]}
			},
			cause: "Healthy",
			want:  "No problem found: pod default/user-profile-resources-659d4dd659-7xk2p is Running and 1/1 containers are ready.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Diagnose(tt.input(t))
			if d.Cause != tt.cause {
				t.Errorf("cause = %s, want %s (summary %q)", d.Cause, tt.cause, d.Summary)
			}
			if tt.want != "" && d.Summary != tt.want {
				t.Errorf("summary:\n got %s\nwant %s", d.Summary, tt.want)
			}
			for _, p := range tt.parts {
				if !strings.Contains(d.Summary, p) {
					t.Errorf("summary %q lacks %q", d.Summary, p)
				}
			}
			if strings.Contains(d.Summary, "\n") {
				t.Errorf("summary is not one line: %q", d.Summary)
			}
		})
	}
}

// The scheduler's message in the PodScheduled condition is used when the
// FailedScheduling events have expired, and its preemption post-mortem is
// cut.
func TestDiagnoseUnschedulableFromCondition(t *testing.T) {
	pod, _ := describePod(t, "failedscheduling/holmesgpt__24a_misconfigured_pvc__kubectl_describe.txt")
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."}}
	d := Diagnose(DiagnoseInput{Pod: pod})
	want := "Pod cannot be scheduled: 0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims (claims: redis-standard-pvc)."
	if d.Summary != want || d.Evidence[0][0] != "condition PodScheduled" {
		t.Errorf("got %q from %v", d.Summary, d.Evidence)
	}
}

func TestRegistryError(t *testing.T) {
	for in, want := range map[string]string{
		`Failed to pull image "nginx:nope": rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/nginx:nope": failed to resolve reference "docker.io/library/nginx:nope": docker.io/library/nginx:nope: not found`: "docker.io/library/nginx:nope: not found",
		`Failed to pull image "x": Error response from daemon: manifest for x:latest not found`: "manifest for x:latest not found",
		"plain": "plain",
	} {
		if got := registryError(in); got != want {
			t.Errorf("registryError(%q) = %q, want %q", in, got, want)
		}
	}
}

// probeInput is a running pod whose container app fails a probe.
func probeInput(msg string, count int32, readyNow bool) func(t *testing.T) DiagnoseInput {
	return func(t *testing.T) DiagnoseInput {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f7c9b6-qx2lp", Namespace: "shop"},
			Spec:       corev1.PodSpec{NodeName: "worker-1", Containers: []corev1.Container{{Name: "app", Image: "registry.example/web:2.3.1"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", Ready: readyNow, RestartCount: 4,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(sampleBase)}},
			}}},
		}
		return DiagnoseInput{Pod: pod, Events: []corev1.Event{
			podEventOf(pod, "Warning", "Unhealthy", msg, count, "spec.containers{app}"),
			podEventOf(pod, "Normal", "Pulled", `Container image "registry.example/web:2.3.1" already present on machine`, 5, "spec.containers{app}"),
		}}
	}
}

// configInput is a pod whose container api waits in
// CreateContainerConfigError with msg, and refers to a Secret and
// ConfigMaps the way a twelve-factor app does.
func configInput(msg string) func(t *testing.T) DiagnoseInput {
	return func(t *testing.T) DiagnoseInput {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "taskboard-api-7c9d6f5b8-m2kqz", Namespace: "taskboard"},
			Spec: corev1.PodSpec{NodeName: "worker-1", Containers: []corev1.Container{{
				Name: "api", Image: "registry.example/taskboard-api:1.4.0",
				Env: []corev1.EnvVar{
					{Name: "DATABASE_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "taskboard-secrets"}, Key: "DB_URL"}}},
					{Name: "LOG_LEVEL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "taskboard-config"}, Key: "LOG_LEVEL"}}},
				},
				EnvFrom:   []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "taskboard-flags"}}}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": resource.MustParse("256Mi")}},
			}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "api", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}},
			}}},
		}
		if msg == "" {
			pod.Status.ContainerStatuses[0].State.Waiting = nil
		}
		return DiagnoseInput{Pod: pod, Events: []corev1.Event{podEventOf(pod, "Warning", "Failed", "Error: "+msg, 7, "spec.containers{api}")}}
	}
}

func podEventOf(pod *corev1.Pod, typ, reason, msg string, count int32, fieldPath string) corev1.Event {
	return corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: pod.Name + "." + strings.ToLower(reason), Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, FieldPath: fieldPath},
		Type:           typ, Reason: reason, Message: msg, Count: count,
		Source:        corev1.EventSource{Component: "kubelet"},
		LastTimestamp: metav1.NewTime(sampleBase),
	}
}

// The investigator action on the fake cluster: the probe case end to end,
// with its evidence.
func TestInvestigatorAction(t *testing.T) {
	in := probeInput("Liveness probe failed: HTTP probe failed with statuscode: 500", 12, false)(t)
	c := newCluster(t, append(eventsToObjects(in.Events), in.Pod)...)
	f := runActions(t, c.env(), podEvent(event.KindPodCrashLoop, in.Pod, "app"), [2]string{"pod_issue_investigator", ""})
	e := enrichment(t, f, "pod_issue_investigator")
	if e.Blocks[0].Markdown != "Liveness probe of container app fails: HTTP probe failed with statuscode: 500 (12 times); the kubelet restarts the container (restarted 4 times)." {
		t.Errorf("summary = %q", e.Blocks[0].Markdown)
	}
	if ev := e.Blocks[1].Table.Rows[0]; ev[0] != "event Warning Unhealthy (x12)" {
		t.Errorf("evidence = %v", e.Blocks[1].Table.Rows)
	}
}

// The FailedScheduling message of the kubernetes/website memory task (an
// older scheduler's wording) and a request too large for any node.
func TestDiagnoseInsufficientMemoryWebsiteSample(t *testing.T) {
	b, err := os.ReadFile(samplePath(t, "oomkilled/k8s-website__assign-memory-resource__excerpt.md"))
	if err != nil {
		t.Fatal(err)
	}
	var msg string
	for _, l := range strings.Split(string(b), "\n") {
		if _, m, ok := strings.Cut(l, "FailedScheduling  "); ok {
			msg = strings.TrimSpace(m)
		}
	}
	if msg == "" {
		t.Fatal("no FailedScheduling line in the sample")
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "memory-demo-3", Namespace: "mem-example"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "memory-demo-3-ctr", Image: "polinux/stress",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"memory": resource.MustParse("1000Gi")}, Limits: corev1.ResourceList{"memory": resource.MustParse("1000Gi")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	d := Diagnose(DiagnoseInput{Pod: pod, Events: []corev1.Event{podEventOf(pod, "Warning", "FailedScheduling", msg, 1, "")}})
	want := "Pod cannot be scheduled: No nodes are available that match all of the following predicates:: Insufficient memory (3) (it requests memory 1000Gi)."
	if d.Cause != "Unschedulable" || d.Summary != want {
		t.Errorf("got %s %q, want %q", d.Cause, d.Summary, want)
	}
}

// The k9s Event sample is the JSON shape of a core/v1 Event; it renders as
// one row with its source and time.
func TestEventShapeSample(t *testing.T) {
	b, err := os.ReadFile(samplePath(t, "event-shape/k9s__ev.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev corev1.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	blk := EventsBlock([]corev1.Event{ev}, 10, false, "pod default/hello-1567197780-mn4mv")
	want := []string{"Normal", "Pulled", "2019-08-30 20:43:05 UTC", "1", "kubelet", `Successfully pulled image "blang/busybox-bash"`}
	if blk.Table == nil || len(blk.Table.Rows) != 1 || strings.Join(blk.Table.Rows[0], "|") != strings.Join(want, "|") {
		t.Errorf("row = %+v, want %v", blk.Table, want)
	}
	if fieldPathContainer(ev.InvolvedObject.FieldPath) != "c1" {
		t.Errorf("container of %q", ev.InvolvedObject.FieldPath)
	}
}

// TestErrorLine: the "why" of a crash is the last panic, fatal error or
// exception, then the last error-like line; never the exit status, a stack
// frame or a blank line.
func TestErrorLine(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, log, want string }{
		{"go panic then exit status", "ok\npanic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:9 +0x1d\nexit status 2\n", "panic: runtime error: index out of range [3] with length 3"},
		{"go fatal", "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n", "fatal error: all goroutines are asleep - deadlock!"},
		{"java exception", "Started\nException in thread \"main\" java.lang.IllegalStateException: no DB_URL\n\tat com.shop.App.main(App.java:12)\n", "Exception in thread \"main\" java.lang.IllegalStateException: no DB_URL"},
		{"python traceback", "Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\n    connect()\nConnectionRefusedError: [Errno 111] Connection refused\n", "ConnectionRefusedError: [Errno 111] Connection refused"},
		{"strong beats a later error-like line", "panic: boom\nerror: cleanup failed\n", "panic: boom"},
		{"plain error line", "level=info msg=start\nlevel=error msg=\"cannot open /data/db\"\nlevel=info msg=bye\n", "level=error msg=\"cannot open /data/db\""},
		{"nothing", "starting\nstopping\n", ""},
	}
	for _, c := range cases {
		if got := ErrorLine(c.log); got != c.want {
			t.Errorf("%s: ErrorLine = %q, want %q", c.name, got, c.want)
		}
	}
}
