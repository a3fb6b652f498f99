package kube

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://prod.example:6443"}
- name: dev
  cluster: {server: "https://dev.example:6443"}
users:
- name: me
  user: {token: abc}
contexts:
- name: prod
  context: {cluster: prod, user: me}
- name: dev
  context: {cluster: dev, user: me}
current-context: prod
`

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNotConfiguredIsNotAnError(t *testing.T) {
	cfg := DefaultConfig()
	c, why, err := Load(cfg, env(nil))
	if err != nil || c != nil {
		t.Fatalf("clients %v, err %v", c, err)
	}
	if !strings.Contains(why.Reason, "no kubeconfig") || !strings.Contains(why.Reason, "KUBECONFIG") {
		t.Errorf("reason %q does not say how to turn it on", why.Reason)
	}
	cfg.Disabled = true
	if c, why, err := Load(cfg, env(map[string]string{"KUBECONFIG": writeKubeconfig(t)})); c != nil || err != nil || !strings.Contains(why.Reason, "disabled") {
		t.Errorf("disabled: %v %q %v", c, why.Reason, err)
	}
	cfg = DefaultConfig()
	cfg.InCluster = "true"
	if _, _, err := Load(cfg, env(nil)); err == nil || !strings.Contains(err.Error(), "not running in a pod") {
		t.Errorf("in_cluster true outside a pod: %v", err)
	}
}

func TestKubeconfigFromEnvAndConfig(t *testing.T) {
	path := writeKubeconfig(t)
	c, _, err := Load(DefaultConfig(), env(map[string]string{"KUBECONFIG": path}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RESTConfig.Host != "https://prod.example:6443" || c.Kube == nil || c.Dynamic == nil {
		t.Errorf("host %s", c.RESTConfig.Host)
	}
	if !strings.Contains(c.Source, path) || !strings.Contains(c.Source, "context prod") {
		t.Errorf("source %q", c.Source)
	}
	if c.RESTConfig.QPS != 20 || c.RESTConfig.Burst != 40 || c.RESTConfig.UserAgent != "medic" {
		t.Errorf("qps %v burst %d agent %q", c.RESTConfig.QPS, c.RESTConfig.Burst, c.RESTConfig.UserAgent)
	}

	cfg := DefaultConfig()
	cfg.Kubeconfig, cfg.Context, cfg.Namespaces = path, "dev", []string{"shop"}
	c, _, err = Load(cfg, env(map[string]string{"KUBECONFIG": "/does/not/matter"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RESTConfig.Host != "https://dev.example:6443" || len(c.Namespaces) != 1 {
		t.Errorf("host %s namespaces %v", c.RESTConfig.Host, c.Namespaces)
	}

	cfg.Context = "staging"
	if _, _, err := Load(cfg, env(nil)); err == nil || !strings.Contains(err.Error(), `context "staging" not found (known: dev, prod)`) {
		t.Errorf("unknown context: %v", err)
	}
	cfg.Kubeconfig = filepath.Join(t.TempDir(), "missing")
	if _, _, err := Load(cfg, env(nil)); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing kubeconfig: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.InCluster = "maybe" }, "kubernetes.in_cluster"},
		{func(c *Config) { c.QPS = 0 }, "kubernetes.qps"},
		{func(c *Config) { c.StateTTL = 0 }, "kubernetes.state_ttl"},
		{func(c *Config) { c.MaxEventAge = 48 * c.StateTTL }, "kubernetes.max_event_age"},
		{func(c *Config) { c.Namespaces = []string{"a", " "} }, "kubernetes.namespaces[1]"},
	} {
		c := DefaultConfig()
		tc.mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.want, err)
		}
	}
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestForbiddenLoggerNamesTheMissingPermissionOnce(t *testing.T) {
	var buf bytes.Buffer
	f := &ForbiddenLogger{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "",
		errors.New(`User "system:serviceaccount:medic:medic" cannot list resource "jobs" in API group "batch" in the namespace "shop"`))
	f.Report("jobs.batch", "shop", forbidden)
	f.Report("jobs.batch", "shop", forbidden)
	f.Report("jobs.batch", "shop", errors.New("connection refused"))
	out := buf.String()
	if strings.Count(out, "level=ERROR") != 1 || !strings.Contains(out, `missing="list, watch jobs.batch"`) || !strings.Contains(out, "deploy/rbac") {
		t.Errorf("log:\n%s", out)
	}
}
