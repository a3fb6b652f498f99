// Package kube builds medic's Kubernetes clients from its configuration: a
// kubeconfig file ($KUBECONFIG or kubernetes.kubeconfig) or the in-cluster
// service account. "No cluster configured" is a normal result, not an error:
// medic then runs without Kubernetes triggers and actions. The Kubernetes
// triggers (sources/kubernetes) and the evidence actions (actions/kube)
// share the clients built here.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/medichq/medic/config"
)

// Config is the `kubernetes:` section of medic.yaml, which package config
// owns (its defaults and validation are there).
type Config = config.KubernetesConfig

// DefaultConfig is the configuration used when medic.yaml says nothing.
func DefaultConfig() Config { return config.Default().Kubernetes }

// Clients reach one cluster.
type Clients struct {
	Kube       kubernetes.Interface
	Dynamic    dynamic.Interface
	RESTConfig *rest.Config
	// Namespaces to watch; empty means all.
	Namespaces []string
	// Source says where the credentials came from, for the start-up log:
	// "kubeconfig /path (context x)" or "in-cluster service account".
	Source string
}

// NotConfigured explains why Load found no cluster; it is returned as a
// reason, not an error.
type NotConfigured struct{ Reason string }

func (n NotConfigured) String() string { return n.Reason }

// Load builds clients from cfg. getenv reads the process environment
// ($KUBECONFIG, the in-cluster variables); nil means os.Getenv. It returns
// (nil, reason, nil) when no cluster is configured, and an error when one is
// configured but unusable (a missing kubeconfig, an unknown context).
func Load(cfg Config, getenv func(string) string) (*Clients, NotConfigured, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg.Disabled {
		return nil, NotConfigured{"kubernetes.disabled is true"}, nil
	}
	if cfg.InCluster == "" {
		cfg.InCluster = "auto"
	}
	var (
		rc     *rest.Config
		source string
		err    error
	)
	kubeconfig := cfg.Kubeconfig
	if kubeconfig == "" && cfg.InCluster != "true" {
		kubeconfig = getenv("KUBECONFIG")
	}
	switch {
	case kubeconfig != "" && cfg.InCluster != "true":
		rc, source, err = fromKubeconfig(kubeconfig, cfg.Context)
		if err != nil {
			return nil, NotConfigured{}, err
		}
	case cfg.InCluster == "false":
		return nil, NotConfigured{"no kubeconfig (kubernetes.kubeconfig, $KUBECONFIG) and kubernetes.in_cluster is false"}, nil
	default:
		if getenv("KUBERNETES_SERVICE_HOST") == "" || getenv("KUBERNETES_SERVICE_PORT") == "" {
			if cfg.InCluster == "true" {
				return nil, NotConfigured{}, errors.New("kubernetes.in_cluster is true but KUBERNETES_SERVICE_HOST/PORT are not set: medic is not running in a pod")
			}
			return nil, NotConfigured{"no kubeconfig (set kubernetes.kubeconfig or $KUBECONFIG) and not running in a cluster"}, nil
		}
		rc, err = rest.InClusterConfig()
		if err != nil {
			return nil, NotConfigured{}, fmt.Errorf("in-cluster Kubernetes configuration: %w", err)
		}
		source = "in-cluster service account"
	}
	c, err := NewClients(rc, cfg)
	if err != nil {
		return nil, NotConfigured{}, err
	}
	c.Source = source
	return c, NotConfigured{}, nil
}

func fromKubeconfig(paths, context string) (*rest.Config, string, error) {
	// Not NewDefaultClientConfigLoadingRules: it also reads ~/.kube/config
	// and may migrate files in the home directory.
	rules := &clientcmd.ClientConfigLoadingRules{}
	for _, p := range strings.Split(paths, string(os.PathListSeparator)) {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, "", fmt.Errorf("kubeconfig %s: %w", p, err)
		}
		rules.Precedence = append(rules.Precedence, p)
	}
	if len(rules.Precedence) == 0 {
		return nil, "", fmt.Errorf("kubeconfig %q names no file", paths)
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig %s: %w", paths, err)
	}
	ctxName := context
	if ctxName == "" {
		ctxName = raw.CurrentContext
	}
	if _, ok := raw.Contexts[ctxName]; !ok {
		known := make([]string, 0, len(raw.Contexts))
		for k := range raw.Contexts {
			known = append(known, k)
		}
		slices.Sort(known)
		return nil, "", fmt.Errorf("kubeconfig %s: context %q not found (known: %s)", paths, ctxName, strings.Join(known, ", "))
	}
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig %s: %w", paths, err)
	}
	return rc, fmt.Sprintf("kubeconfig %s (context %s)", paths, ctxName), nil
}

// NewClients builds the typed and dynamic clients over rc with cfg's rate
// limits and namespaces. Tests use it with a rest.Config of their own.
func NewClients(rc *rest.Config, cfg Config) (*Clients, error) {
	rc = rest.CopyConfig(rc)
	if cfg.QPS > 0 {
		rc.QPS = float32(cfg.QPS)
	}
	if cfg.Burst > 0 {
		rc.Burst = cfg.Burst
	}
	if rc.UserAgent == "" {
		rc.UserAgent = "medic"
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	return &Clients{Kube: kc, Dynamic: dc, RESTConfig: rc, Namespaces: slices.Clone(cfg.Namespaces)}, nil
}

// Permission is one verb on one resource that medic needs.
type Permission struct {
	Verb     string
	Group    string
	Resource string
	// Namespace empty: cluster-wide (or a cluster-scoped resource).
	Namespace string
}

func (p Permission) String() string {
	res := p.Resource
	if p.Group != "" {
		res += "." + p.Group
	}
	where := "cluster-wide"
	if p.Namespace != "" {
		where = "in namespace " + p.Namespace
	}
	return fmt.Sprintf("%s %s %s", p.Verb, res, where)
}

// Missing asks the API server (SelfSubjectAccessReview) which of perms the
// current credentials lack. An error means the question could not be asked.
func Missing(ctx context.Context, kc kubernetes.Interface, perms []Permission) ([]Permission, error) {
	var missing []Permission
	for _, p := range perms {
		r, err := kc.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: p.Verb, Group: p.Group, Resource: p.Resource, Namespace: p.Namespace,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return missing, fmt.Errorf("check permission %s: %w", p, err)
		}
		if !r.Status.Allowed {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

// ForbiddenLogger logs each forbidden list/watch once per resource, in a
// line that names the missing verb and resource, and other watch errors at
// debug level (client-go retries them with back-off).
type ForbiddenLogger struct {
	Logger *slog.Logger
	mu     sync.Mutex
	seen   map[string]bool
}

// Report logs err from listing or watching resource (e.g. "pods",
// "jobs.batch") in namespace ("" for all).
func (f *ForbiddenLogger) Report(resource, namespace string, err error) {
	if err == nil {
		return
	}
	if !apierrors.IsForbidden(err) {
		f.Logger.Debug("kubernetes watch error; retrying", "resource", resource, "namespace", namespace, "err", err)
		return
	}
	key := resource + "/" + namespace
	f.mu.Lock()
	first := f.seen == nil || !f.seen[key]
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	f.seen[key] = true
	f.mu.Unlock()
	if !first {
		return
	}
	where := "in all namespaces"
	if namespace != "" {
		where = "in namespace " + namespace
	}
	f.Logger.Error("medic may not list/watch "+resource+" "+where+
		"; the triggers that need it stay silent until RBAC allows it (see deploy/rbac)",
		"missing", "list, watch "+resource, "namespace", namespace, "err", err.Error())
}
