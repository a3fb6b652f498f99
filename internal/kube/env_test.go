package kube_test

import (
	"slices"
	"testing"
	"time"

	"github.com/medichq/medic/config"
	_ "github.com/medichq/medic/sinks/all" // the default sinks
)

// The kubernetes: section is reachable from the environment like every
// other (MEDIC_KUBERNETES_*), and checked with the rest of the configuration.
func TestKubernetesSettingsFromEnvironment(t *testing.T) {
	cfg, err := config.Load("", []string{
		"MEDIC_KUBERNETES_KUBECONFIG=/etc/medic/kubeconfig",
		"MEDIC_KUBERNETES_NAMESPACES=shop, payments",
		"MEDIC_KUBERNETES_STATE_TTL=48h",
		"MEDIC_KUBERNETES_IN_CLUSTER=false",
	})
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kubernetes
	if k.Kubeconfig != "/etc/medic/kubeconfig" || !slices.Equal(k.Namespaces, []string{"shop", "payments"}) ||
		k.StateTTL != 48*time.Hour || k.InCluster != "false" || k.MaxEventAge != time.Hour {
		t.Errorf("kubernetes config %+v", k)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %v", cfg.Warnings)
	}
	if _, err := config.Load("", []string{"MEDIC_KUBERNETES_IN_CLUSTER=sometimes"}); err == nil {
		t.Error("an invalid kubernetes.in_cluster loaded")
	}
}
