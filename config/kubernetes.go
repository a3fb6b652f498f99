package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// KubernetesConfig is the `kubernetes:` section of medic.yaml (package
// internal/kube takes it as kube.Config). Every field is also a
// MEDIC_KUBERNETES_* environment variable.
type KubernetesConfig struct {
	// Disabled turns Kubernetes off even where a cluster is reachable.
	Disabled bool `yaml:"disabled"`
	// Kubeconfig is a kubeconfig file. Empty: $KUBECONFIG (the standard
	// variable, a list of files as kubectl reads it), else the in-cluster
	// service account when medic runs in a pod. ~/.kube/config is not read
	// implicitly, so `medic serve` on a laptop does not start watching
	// whatever cluster kubectl points at; name it here or in $KUBECONFIG.
	Kubeconfig string `yaml:"kubeconfig"`
	// Context selects a kubeconfig context; empty: the current context.
	Context string `yaml:"context"`
	// InCluster is auto (the default: use the service account when running
	// in a pod and no kubeconfig is given), true (require it) or false.
	InCluster string `yaml:"in_cluster"`
	// Namespaces limits what medic watches; empty watches all namespaces
	// (which needs the ClusterRole in deploy/rbac; with a list, the Role
	// variant bound in each namespace is enough for namespaced objects).
	Namespaces []string `yaml:"namespaces"`
	// QPS and Burst bound medic's requests to the API server.
	QPS   int `yaml:"qps"`
	Burst int `yaml:"burst"`
	// StateTTL is how long the trigger state (rate limits, "already
	// reported" marks, image-pull episodes) lives in the JetStream KV bucket
	// medic_trigger_state. Rate limits longer than this are cut to it.
	StateTTL time.Duration `yaml:"state_ttl"`
	// MaxEventAge: a past transition (a job that failed, a pod evicted or
	// OOM-killed, a warning event, a created resource) older than this when
	// medic first sees it is not reported. It keeps a fresh install or a
	// long outage from replaying history; ongoing states (crash loops, image
	// pulls, not-ready nodes) are reported whatever their age.
	MaxEventAge time.Duration `yaml:"max_event_age"`
	// HelmReleases lets the Helm release triggers (on_helm_release_*) and
	// helm_status_enricher read Helm's release records. They are Secrets
	// (type helm.sh/release.v1, labelled owner=helm), so this is off by
	// default and needs the chart's rbac.helmReleases rule.
	HelmReleases bool `yaml:"helm_releases"`
}

func defaultKubernetes() KubernetesConfig {
	return KubernetesConfig{
		InCluster:   "auto",
		QPS:         20,
		Burst:       40,
		StateTTL:    24 * time.Hour,
		MaxEventAge: time.Hour,
	}
}

// Validate names the first invalid field.
func (c *KubernetesConfig) Validate() error {
	switch c.InCluster {
	case "auto", "true", "false":
	case "":
		c.InCluster = "auto"
	default:
		return fmt.Errorf("kubernetes.in_cluster: %q is not auto, true or false", c.InCluster)
	}
	switch {
	case c.QPS < 1:
		return errors.New("kubernetes.qps: must be at least 1")
	case c.Burst < c.QPS:
		return errors.New("kubernetes.burst: must be at least kubernetes.qps")
	case c.StateTTL < time.Minute:
		return errors.New("kubernetes.state_ttl: must be at least 1m")
	case c.MaxEventAge <= 0:
		return errors.New("kubernetes.max_event_age: must be positive")
	case c.MaxEventAge > c.StateTTL:
		return errors.New("kubernetes.max_event_age: must not exceed kubernetes.state_ttl (what is reported must be remembered)")
	}
	for i, ns := range c.Namespaces {
		if strings.TrimSpace(ns) == "" {
			return fmt.Errorf("kubernetes.namespaces[%d]: must not be empty", i)
		}
	}
	return nil
}
