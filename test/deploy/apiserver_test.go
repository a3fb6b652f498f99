package deploy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/file/filetest"
	"github.com/medichq/medic/test/deploy"
	"github.com/medichq/medic/test/kubeapi"
)

// apiServer is a running kube-apiserver with the ServiceMonitor CRD
// installed and clients for its administrator.
type apiServer struct {
	c      *kubeapi.Cluster
	kc     kubernetes.Interface
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	warn   *warnings
}

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

func startAPIServer(t *testing.T) *apiServer {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	c := kubeapi.Start(t)
	cfg := rest.CopyConfig(c.Admin())
	w := &warnings{}
	cfg.WarningHandler = w
	s := &apiServer{c: c, kc: must(kubernetes.NewForConfig(cfg)), dyn: must(dynamic.NewForConfig(cfg)), warn: w}
	disc := memory.NewMemCacheClient(must(discovery.NewDiscoveryClientForConfig(cfg)))
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(disc)
	s.mapper = mapper

	// The Prometheus Operator's real ServiceMonitor CRD, so that the
	// chart's ServiceMonitor is checked against its schema.
	crds := must(deploy.ParseManifests(string(must(os.ReadFile(filepath.Join("testdata", "crds", "monitoring.coreos.com_servicemonitors.yaml"))))))
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	ctx := context.Background()
	for _, crd := range crds {
		if _, err := s.dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			t.Fatalf("install %s: %v", crd.GetName(), err)
		}
	}
	testkit.Eventually(t, 90*time.Second, "the ServiceMonitor CRD to be served", func() bool {
		mapper.Reset()
		_, err := mapper.RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}, "v1")
		return err == nil
	})
	for _, ns := range []string{deploy.Namespace, "shop", "payments"} {
		if _, err := s.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	w.take()
	return s
}

// create sends obj to the API server: with dryRun, a server-side dry run
// (admission, defaulting and schema validation, strict about unknown
// fields, nothing stored).
func (s *apiServer) create(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	gvk := obj.GroupVersionKind()
	m, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", deploy.Describe(obj), err)
	}
	opts := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = s.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = deploy.Namespace
		}
		ri = s.dyn.Resource(m.Resource).Namespace(ns)
	}
	_, err = ri.Create(ctx, obj, opts)
	return err
}

// Every manifest the chart renders — with its defaults, each example, every
// secret set, and deploy/manifests/medic.yaml — is accepted by a real
// kube-apiserver (server-side dry run with strict field validation), the
// ServiceMonitor against the Prometheus Operator's own CRD.
func TestRenderedManifestsPassServerSideDryRun(t *testing.T) {
	needHelm(t)
	s := startAPIServer(t)
	ctx := context.Background()
	type input struct{ name, text string }
	var inputs []input
	for _, vs := range append(valuesSets(t), deploy.ValuesSet{Name: "canary", Files: []string{canaryValues}}) {
		out, _ := render(t, vs.Files)
		inputs = append(inputs, input{vs.Name, out})
	}
	inputs = append(inputs, input{"deploy/manifests/medic.yaml", string(must(os.ReadFile(must(deploy.ManifestsFile()))))})
	kinds := map[string]bool{}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			objs := must(deploy.ParseManifests(in.text))
			for _, obj := range objs {
				kinds[obj.GetKind()] = true
				err := s.create(ctx, obj, true)
				if obj.GetKind() == "Namespace" && apierrors.IsAlreadyExists(err) {
					continue // created above, as kubectl apply would find it
				}
				if err != nil {
					t.Errorf("the API server refuses %s: %v", deploy.Describe(obj), err)
				}
			}
			if w := s.warn.take(); len(w) > 0 {
				t.Errorf("the API server warned:\n  %s", strings.Join(w, "\n  "))
			}
		})
	}
	// The same path refuses what is wrong, so the passes above mean something.
	t.Run("refuses broken manifests", func(t *testing.T) {
		for _, bad := range []string{
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: medic}\ndatta: {a: b}\n",
			"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x, namespace: medic}\nspec: {selector: {}, endpoints: [{port: http, interval: 30 seconds}]}\n",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x, namespace: medic}\nspec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: c}}, spec: {containers: [{name: x, image: x}]}}}\n",
		} {
			obj := must(deploy.ParseManifests(bad))[0]
			if err := s.create(ctx, obj, true); err == nil {
				t.Errorf("the API server accepted:\n%s", bad)
			}
		}
		s.warn.take()
	})
	// And helm itself installs and uninstalls the chart there.
	t.Run("helm install", func(t *testing.T) {
		kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		if err := s.c.WriteKubeconfig(kubeconfig, kubeapi.AdminUser); err != nil {
			t.Fatal(err)
		}
		chart := must(deploy.ChartDir())
		out, err := deploy.RunHelm("install", deploy.Release, chart, "--namespace", deploy.Namespace, "--kubeconfig", kubeconfig,
			"--values", "deploy/helm/medic/examples/slack-teams-git.yaml")
		if err != nil {
			t.Fatalf("helm install: %v\n%s", err, out)
		}
		for _, want := range []string{"STATUS: deployed", "- url: http://medic.medic.svc:8080/api/alerts", "credentials_file: /etc/alertmanager/secrets/medic-secrets/alertmanager-token"} {
			if !strings.Contains(out, want) {
				t.Errorf("helm install output lacks %q:\n%s", want, out)
			}
		}
		if _, err := s.kc.RbacV1().ClusterRoles().Get(ctx, "medic-reader", metav1.GetOptions{}); err != nil {
			t.Errorf("after helm install: %v", err)
		}
		if out, err := deploy.RunHelm("uninstall", deploy.Release, "--namespace", deploy.Namespace, "--kubeconfig", kubeconfig); err != nil {
			t.Fatalf("helm uninstall: %v\n%s", err, out)
		}
		if _, err := s.kc.RbacV1().ClusterRoles().Get(ctx, "medic-reader", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the ClusterRole outlives helm uninstall: %v", err)
		}
		// JetStream's claim is kept (helm.sh/resource-policy: keep).
		if _, err := s.kc.CoreV1().PersistentVolumeClaims(deploy.Namespace).Get(ctx, "medic-data", metav1.GetOptions{}); err != nil {
			t.Errorf("the data claim did not survive helm uninstall: %v", err)
		}
		s.warn.take()
	})
	for _, k := range []string{"Deployment", "Service", "ServiceAccount", "ConfigMap", "Secret", "PersistentVolumeClaim",
		"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy", "Ingress", "Namespace"} {
		if !kinds[k] {
			t.Errorf("no %s was sent to the API server: a values file should render one", k)
		}
	}
}

// The chart installed for real in the API server: medic, started the way
// the chart's pod starts it (its args, env, workingDir, user, volumes and a
// read-only root holding only /medic) with a token minted for the chart's
// ServiceAccount, runs its Kubernetes triggers — a pod driven into a crash
// loop becomes a finding — and when it reaches outside its role (a
// ServiceAccount's YAML, a watch on Secrets) it is refused and says so.
func TestMedicRunsWithTheChartsServiceAccount(t *testing.T) {
	needHelm(t)
	bin := medicBinary(t)
	s := startAPIServer(t)
	ctx := context.Background()
	_, objs := render(t, []string{"test/deploy/testdata/run.values.yaml"})
	for _, obj := range objs {
		if err := s.create(ctx, obj, false); err != nil {
			t.Fatalf("install: %v", err)
		}
	}

	// The token kubelet would mount: a TokenRequest for the chart's ServiceAccount.
	d := deployment(t, objs)
	pod := d.Spec.Template.Spec
	tr, err := s.kc.CoreV1().ServiceAccounts(deploy.Namespace).CreateToken(ctx, pod.ServiceAccountName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for ServiceAccount %s: %v", pod.ServiceAccountName, err)
	}

	dir := t.TempDir()
	uid, gid := int(*pod.SecurityContext.RunAsUser), int(*pod.SecurityContext.RunAsGroup)
	fsGroup := int(*pod.SecurityContext.FSGroup)
	spec := podRun{Root: mkdir(t, dir, "root", 0, 0, 0o755), Binary: bin, Exec: "/medic", WorkDir: pod.Containers[0].WorkingDir,
		UID: uid, GID: gid, Groups: []int{fsGroup}}
	c := pod.Containers[0]
	if c.Command[0] != spec.Exec {
		t.Fatalf("the container runs %s, the image's binary is /medic", c.Command[0])
	}
	spec.Args = append(c.Command[1:], c.Args...)

	// Volumes, as kubelet lays them out.
	hostOf := map[string]string{}
	for _, v := range pod.Volumes {
		host := filepath.Join(dir, "volumes", v.Name)
		switch {
		case v.EmptyDir != nil || v.PersistentVolumeClaim != nil:
			mkdir(t, filepath.Join(dir, "volumes"), v.Name, 0, fsGroup, 0o2770)
		case v.ConfigMap != nil:
			cm := objs.Get("ConfigMap", v.ConfigMap.Name)
			data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
			atomicDir(t, host, data, fsGroup, 0o644)
		case v.Projected != nil:
			secrets := must(deploy.SecretValues(objs))
			files := map[string]string{}
			for _, src := range v.Projected.Sources {
				for _, it := range src.Secret.Items {
					val, ok := secrets[src.Secret.Name+"/"+it.Key]
					if !ok {
						t.Fatalf("the run values reference Secret %s, which the test does not create", src.Secret.Name)
					}
					files[it.Path] = val
				}
			}
			atomicDir(t, host, files, fsGroup, 0o440)
		default:
			t.Fatalf("volume %s: a kind the test does not lay out", v.Name)
		}
		hostOf[v.Name] = host
	}
	for _, m := range c.VolumeMounts {
		spec.Mounts = append(spec.Mounts, podMount{Source: hostOf[m.Name], Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	saDir := filepath.Join(dir, "serviceaccount")
	atomicDir(t, saDir, map[string]string{"token": tr.Status.Token, "ca.crt": caOf(t, s.c), "namespace": deploy.Namespace}, fsGroup, 0o440)
	spec.Mounts = append(spec.Mounts, podMount{Source: saDir, Target: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true})

	// Environment: the container's, plus what kubelet adds (the API
	// server's address). medic's port is moved off 8080, which the host
	// may be using: the only change to the pod.
	port := testkit.FreePort(t)
	apiHost, apiPort := hostPort(t, s.c.URL)
	spec.Env = []string{"KUBERNETES_SERVICE_HOST=" + apiHost, "KUBERNETES_SERVICE_PORT=" + apiPort, "MEDIC_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port)}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			q := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
			spec.Env = append(spec.Env, e.Name+"="+strconv.FormatInt(q.Value(), 10))
		case e.ValueFrom != nil:
			t.Fatalf("env %s: a source the test does not resolve", e.Name)
		default:
			spec.Env = append(spec.Env, e.Name+"="+e.Value)
		}
	}

	var stdout, stderr testkit.SyncBuffer
	cmd := startInPod(t, spec, &stdout, &stderr)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("medic's log:\n%s", stderr.String())
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	testkit.Eventually(t, 90*time.Second, "medic's readiness probe (/readyz)", func() bool {
		select {
		case err := <-exited:
			if ee, ok := err.(interface{ ExitCode() int }); ok && ee.ExitCode() == exitNoNamespaces {
				t.Skipf("no mount namespaces here: %s", stderr.String())
			}
			t.Fatalf("medic exited: %v\n%s", err, stderr.String())
		default:
		}
		return httpStatus(base+"/readyz", "") == http.StatusOK
	})
	if got := httpStatus(base+"/healthz", ""); got != http.StatusOK {
		t.Errorf("liveness probe /healthz: %d", got)
	}
	log := stderr.String
	if !strings.Contains(log(), "Kubernetes triggers and actions are on") || !strings.Contains(log(), "in-cluster") {
		t.Errorf("medic does not say it uses the in-cluster ServiceAccount:\n%s", log())
	}

	// The webhook token comes from the chart's Secret, mounted as a file.
	alert := `{"version":"4","status":"firing","receiver":"medic","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","groupKey":"{}:{}","alerts":[{"status":"firing","labels":{"alertname":"DeployTestAlert","namespace":"default"},"startsAt":"2026-01-02T03:04:05Z"}]}`
	if got := httpPost(base+"/api/alerts", "", alert); got != http.StatusUnauthorized {
		t.Errorf("POST /api/alerts without the token: %d, want 401", got)
	}
	if got := httpPost(base+"/api/alerts", "run-test-alertmanager-token-7c1e", alert); got != http.StatusOK {
		t.Errorf("POST /api/alerts with the token of webhook.bearerToken: %d, want 200", got)
	}

	// A pod starts crash looping.
	sample := must(kubeapi.LoadPodYAML("crashloopbackoff/gitops-engine__pod-crashloop.yaml", time.Now()))
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: sample.Name, Namespace: "default", Labels: sample.Labels}}
	for _, ct := range sample.Spec.Containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: ct.Name, Image: ct.Image})
	}
	created := must(s.kc.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}))
	created.Status = sample.Status
	must(s.kc.CoreV1().Pods("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}))

	findingsFile := filepath.Join(hostOf["data"], "findings.jsonl")
	var f event.Finding
	testkit.Eventually(t, 90*time.Second, "the crash-loop finding in findings.jsonl on the data volume", func() bool {
		for _, x := range filetest.FindingsSoFar(t, findingsFile) {
			if x.Event.Kind == event.KindPodCrashLoop {
				f = x
				return true
			}
		}
		return false
	})
	if f.Event.Subject.Name != sample.Name || !strings.Contains(strings.Join(f.Playbooks, ","), "crash-loop-with-service-account") {
		t.Errorf("finding: subject %+v, playbooks %v", f.Event.Subject, f.Playbooks)
	}
	if !strings.Contains(f.Title, "in cluster kubeapi-test") {
		t.Errorf("finding title %q does not name the clusterName of the values", f.Title)
	}
	// Outside its role, the action is refused, and the finding says what is missing.
	text := mustJSON(f)
	if !strings.Contains(text, "forbidden: cannot get serviceaccounts") || !strings.Contains(text, `needs \"get\" on \"serviceaccounts\"`) {
		t.Errorf("the finding does not say that reading a ServiceAccount was refused:\n%s", text)
	}
	// The watch on Secrets is refused and logged with what is missing.
	testkit.Eventually(t, 90*time.Second, "medic's log line about the refused watch on Secrets", func() bool {
		return strings.Contains(log(), "may not list/watch secrets") && strings.Contains(log(), `list, watch secrets`)
	})
	for _, line := range strings.Split(log(), "\n") {
		if strings.Contains(line, "may not list/watch") || strings.Contains(line, "lack permissions") {
			t.Logf("medic says: %s", line)
		}
	}
	// Nothing tried to write outside the volumes.
	if strings.Contains(log(), "read-only file system") {
		t.Errorf("medic tried to write to the read-only root:\n%s", log())
	}
	for _, sub := range []string{"jetstream", "kb"} {
		if _, err := os.Stat(filepath.Join(hostOf["data"], sub)); err != nil {
			t.Errorf("medic's %s is not on the data volume: %v", sub, err)
		}
	}
	// stdout carries the same finding as JSON for kubectl logs. The sinks
	// deliver independently, so the file can hold it before stdout prints it.
	testkit.Eventually(t, 30*time.Second, "finding "+f.ID+" printed by the stdout sink", func() bool {
		return strings.Contains(stdout.String(), f.ID)
	})
}

// mkdir makes dir/name owned by uid:gid with mode, like a volume kubelet
// prepares for fsGroup.
func mkdir(t *testing.T, dir, name string, uid, gid int, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// atomicDir lays out files the way kubelet's atomic writer does for
// ConfigMap and Secret volumes: a hidden timestamped folder, a ..data
// symlink to it, and one symlink per key.
func atomicDir(t *testing.T, dir string, files map[string]string, gid int, mode os.FileMode) {
	t.Helper()
	ts := "..2026_01_01_00_00_00.000000001"
	if err := os.MkdirAll(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, ts, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 0, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func caOf(t *testing.T, c *kubeapi.Cluster) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := c.WriteKubeconfig(path, kubeapi.AdminUser); err != nil {
		t.Fatal(err)
	}
	raw := string(must(os.ReadFile(path)))
	for _, line := range strings.Split(raw, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "certificate-authority-data: "); ok {
			return string(must(base64.StdEncoding.DecodeString(v)))
		}
	}
	t.Fatal("no CA in the kubeconfig")
	return ""
}

func hostPort(t *testing.T, u string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(strings.TrimPrefix(u, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func httpStatus(url, token string) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return do(req, token)
}

func httpPost(url, token, body string) int {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(req, token)
}

func do(req *http.Request, token string) int {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func mustJSON(v any) string { return string(must(json.Marshal(v))) }
