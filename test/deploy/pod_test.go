package deploy_test

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/medichq/medic/test/deploy"
)

func podSpec(t *testing.T, u *unstructured.Unstructured) *corev1.PodTemplateSpec {
	t.Helper()
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &d, true); err != nil {
		t.Fatalf("%s: %v", deploy.Describe(u), err)
	}
	return &d.Spec.Template
}

func deployment(t *testing.T, objs deploy.Objects) *appsv1.Deployment {
	t.Helper()
	ds := objs.Of("Deployment")
	if len(ds) != 1 {
		t.Fatalf("%d Deployments rendered", len(ds))
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(ds[0].Object, &d, true); err != nil {
		t.Fatal(err)
	}
	return &d
}

// With every values set medic's pod runs as non-root with a read-only root
// filesystem, no capabilities, no privilege escalation and seccomp
// RuntimeDefault; its probes hit /healthz and /readyz on the port medic
// listens on; its requests are small.
func TestPodIsLockedDown(t *testing.T) {
	needHelm(t)
	for _, vs := range valuesSets(t) {
		t.Run(vs.Name, func(t *testing.T) {
			_, objs := render(t, vs.Files)
			d := deployment(t, objs)
			pod := d.Spec.Template.Spec
			psc := pod.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
				t.Errorf("pod securityContext does not run as non-root: %+v", psc)
			}
			if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod seccomp profile: %+v", psc)
			}
			if pod.HostNetwork || pod.HostPID || pod.HostIPC {
				t.Error("the pod shares a host namespace")
			}
			for _, v := range pod.Volumes {
				if v.HostPath != nil {
					t.Errorf("volume %s is a hostPath", v.Name)
				}
			}
			if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
				t.Fatalf("%d containers, %d init containers", len(pod.Containers), len(pod.InitContainers))
			}
			c := pod.Containers[0]
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Fatal("no container securityContext")
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Error("the root filesystem is writable")
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Error("privilege escalation is allowed")
			case sc.Privileged != nil && *sc.Privileged:
				t.Error("privileged")
			case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
				t.Errorf("capabilities: %+v", sc.Capabilities)
			}
			if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
				t.Errorf("image %q is not pinned", c.Image)
			}

			// Probes: the routes of internal/app/routes.go, on the port of http.addr.
			cfg := medicYAML(t, objs)
			addr, _ := cfg["http"].(map[string]any)["addr"].(string)
			port := portOf(t, c, "http")
			if addr != fmt.Sprintf(":%d", port) {
				t.Errorf("medic listens on %q, the container port is %d", addr, port)
			}
			for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
				want := map[string]string{"liveness": "/healthz", "readiness": "/readyz", "startup": "/healthz"}[name]
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "http" {
					t.Errorf("%s probe: %+v, want GET %s on port http", name, p, want)
				}
			}

			// Resources: requests set, memory at most a sixteenth of Robusta's runner (1 GiB).
			req, lim := c.Resources.Requests, c.Resources.Limits
			sixteenth := resource.MustParse("64Mi")
			if m, ok := req[corev1.ResourceMemory]; !ok || m.Cmp(sixteenth) > 0 {
				t.Errorf("memory request %v, want at most 64Mi", req)
			}
			if _, ok := req[corev1.ResourceCPU]; !ok {
				t.Error("no CPU request")
			}
			if _, ok := lim[corev1.ResourceMemory]; !ok {
				t.Error("no memory limit")
			}

			if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
				t.Error("the pod does not mount its ServiceAccount token (the Kubernetes triggers need it)")
			}
			if sa := objs.Get("ServiceAccount", pod.ServiceAccountName); sa == nil {
				t.Errorf("ServiceAccount %s is not rendered", pod.ServiceAccountName)
			} else if v, ok, _ := unstructured.NestedBool(sa.Object, "automountServiceAccountToken"); !ok || v {
				t.Error("the ServiceAccount mounts its token into every pod that uses it")
			}
		})
	}
}

// With the defaults the chart sizes medic as the issue asks: 1 replica,
// requests of 25m CPU and 64Mi memory (a sixteenth of Robusta runner's
// 1 GiB), embedded JetStream on a PersistentVolumeClaim with a Recreate
// strategy. With external NATS it may run several replicas and roll.
func TestDefaultsAndScaling(t *testing.T) {
	needHelm(t)
	_, objs := render(t, nil)
	d := deployment(t, objs)
	c := d.Spec.Template.Spec.Containers[0]
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d, strategy %s", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	if got := c.Resources.Requests.Memory().String(); got != "64Mi" {
		t.Errorf("memory request %s", got)
	}
	if got := c.Resources.Requests.Cpu().String(); got != "25m" {
		t.Errorf("CPU request %s", got)
	}
	if got := c.Resources.Limits.Memory().String(); got != "256Mi" {
		t.Errorf("memory limit %s", got)
	}
	if objs.Get("PersistentVolumeClaim", "medic-data") == nil || volume(t, d, "data").PersistentVolumeClaim == nil {
		t.Error("embedded JetStream is not on a PersistentVolumeClaim")
	}
	for _, kind := range []string{"ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy", "Secret"} {
		if len(objs.Of(kind)) > 0 {
			t.Errorf("a %s is rendered by default", kind)
		}
	}

	_, ext := render(t, []string{"deploy/helm/medic/examples/external.yaml"})
	d = deployment(t, ext)
	if *d.Spec.Replicas != 2 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("external NATS: replicas %d, strategy %s", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	if volume(t, d, "data").EmptyDir == nil || len(ext.Of("PersistentVolumeClaim")) > 0 {
		t.Error("external NATS: the data volume should be an emptyDir")
	}
	if len(ext.Of("PodDisruptionBudget")) != 1 {
		t.Error("external example: no PodDisruptionBudget")
	}
}

// The root filesystem is read-only, so every path medic writes — data_dir,
// JetStream's store, the knowledge base, Git clones, file sinks, TMPDIR —
// must lie on a writable volume (emptyDir or PersistentVolumeClaim), and
// what medic only reads (configuration, playbooks, secrets) is mounted
// read-only.
func TestWritablePathsAreOnVolumes(t *testing.T) {
	needHelm(t)
	sets := append(valuesSets(t), deploy.ValuesSet{Name: "canary", Files: []string{canaryValues}})
	for _, vs := range sets {
		t.Run(vs.Name, func(t *testing.T) {
			_, objs := render(t, vs.Files)
			d := deployment(t, objs)
			c := d.Spec.Template.Spec.Containers[0]
			for _, p := range writtenPaths(t, objs, c) {
				m := mountOf(c, p)
				if m == nil {
					t.Errorf("medic writes %s, which is on the read-only root filesystem", p)
					continue
				}
				v := volume(t, d, m.Name)
				if m.ReadOnly || (v.EmptyDir == nil && v.PersistentVolumeClaim == nil) {
					t.Errorf("medic writes %s, on volume %s, which is not a writable emptyDir or claim", p, m.Name)
				}
			}
			for _, m := range c.VolumeMounts {
				v := volume(t, d, m.Name)
				if (v.ConfigMap != nil || v.Secret != nil || v.Projected != nil) && !m.ReadOnly {
					t.Errorf("volume %s (configuration or secrets) is mounted writable", m.Name)
				}
			}
		})
	}
}

func writtenPaths(t *testing.T, objs deploy.Objects, c corev1.Container) []string {
	t.Helper()
	cfg := medicYAML(t, objs)
	abs := func(p string) string {
		if path.IsAbs(p) {
			return path.Clean(p)
		}
		return path.Join(c.WorkingDir, p)
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	sub := func(k string) map[string]any { m, _ := cfg[k].(map[string]any); return m }
	data := abs(str(cfg, "data_dir"))
	paths := []string{data, path.Join(data, "playbook-repos")}
	if bus := sub("bus"); str(bus, "url") == "" {
		if sd := str(bus, "store_dir"); sd != "" {
			paths = append(paths, abs(sd))
		} else {
			paths = append(paths, path.Join(data, "jetstream"))
		}
	}
	if kb := str(sub("knowledge_base"), "dir"); kb != "" {
		paths = append(paths, abs(kb))
	} else {
		paths = append(paths, path.Join(data, "kb"))
	}
	sinks, _ := cfg["sinks"].([]any)
	if len(sinks) == 0 {
		paths = append(paths, path.Join(data, "findings.jsonl"))
	}
	for _, s := range sinks {
		m, _ := s.(map[string]any)
		if m["type"] == "file" {
			paths = append(paths, abs(str(m, "path")))
		}
	}
	tmp := "/tmp"
	for _, e := range c.Env {
		if e.Name == "TMPDIR" {
			tmp = e.Value
		}
	}
	paths = append(paths, tmp)
	if c.WorkingDir == "" {
		t.Error("no workingDir: relative paths would resolve against the image's /")
	}
	return paths
}

func medicYAML(t *testing.T, objs deploy.Objects) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(must(deploy.MedicConfig(objs))), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mountOf(c corev1.Container, p string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") {
			if best == nil || len(m.MountPath) > len(best.MountPath) {
				best = &c.VolumeMounts[i]
			}
		}
	}
	return best
}

func volume(t *testing.T, d *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %s", name)
	return corev1.Volume{}
}

func portOf(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container has no port %s", name)
	return 0
}

// The Ingress exposes only what must come from outside (Slack's callbacks,
// the finding page, Git push webhooks): not the Alertmanager webhook, the
// manual trigger or the metrics.
func TestIngressExposesOnlyCallbacks(t *testing.T) {
	needHelm(t)
	_, objs := render(t, []string{"deploy/helm/medic/examples/slack-teams-git.yaml"})
	ing := objs.Get("Ingress", "medic")
	if ing == nil {
		t.Fatal("the slack-teams-git example renders no Ingress")
	}
	rules, _, _ := unstructured.NestedSlice(ing.Object, "spec", "rules")
	var paths []string
	for _, r := range rules {
		ps, _, _ := unstructured.NestedSlice(r.(map[string]any), "http", "paths")
		for _, p := range ps {
			paths = append(paths, p.(map[string]any)["path"].(string))
		}
	}
	if len(paths) == 0 {
		t.Fatal("no paths")
	}
	for _, p := range paths {
		for _, private := range []string{"/api/alerts", "/api/trigger", "/api/playbooks/reload", "/metrics", "/readyz"} {
			if strings.HasPrefix(private, p) {
				t.Errorf("the Ingress path %s exposes %s", p, private)
			}
		}
	}
	_, def := render(t, nil)
	if len(def.Of("Ingress")) > 0 {
		t.Error("an Ingress is rendered by default")
	}
}
