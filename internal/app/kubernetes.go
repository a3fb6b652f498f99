package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/medichq/medic/internal/kube"
	"github.com/medichq/medic/playbooks"
	kubetriggers "github.com/medichq/medic/sources/kubernetes"
)

// kubeSide is medic's view of its cluster: the detector behind the
// Kubernetes triggers. Nil fields mean Kubernetes is off.
type kubeSide struct {
	detector   *kubetriggers.Detector
	client     kubernetes.Interface
	namespaces []string
	checkRBAC  bool // the clients are medic's own (not a caller's fakes)
	stop       context.CancelFunc
	done       chan struct{}
}

// initKubernetes builds the Kubernetes clients from the configuration
// (unless the caller handed some in with WithKubeClients) and the detector
// over them. Without a cluster, medic runs on and says so once.
func (a *App) initKubernetes(ctx context.Context, o *options) error {
	cfg := a.cfg.Kubernetes
	namespaces := cfg.Namespaces
	if o.kube == nil {
		clients, why, err := kube.Load(cfg, nil)
		if err != nil {
			return fmt.Errorf("kubernetes: %w", err)
		}
		if clients == nil {
			a.logger.Info("Kubernetes triggers and actions are off: " + why.Reason)
			return nil
		}
		o.kube, o.dynamic, o.rest = clients.Kube, clients.Dynamic, clients.RESTConfig
		a.kube.checkRBAC = true
		a.logger.Info("Kubernetes triggers and actions are on", "credentials", clients.Source,
			"api_server", clients.RESTConfig.Host, "namespaces", namespacesText(namespaces))
		klog.SetSlogLogger(a.logger.With("component", "client-go"))
	} else {
		a.logger.Info("Kubernetes triggers and actions are on (clients given by the caller)", "namespaces", namespacesText(namespaces))
	}
	a.kube.client, a.kube.namespaces = o.kube, namespaces
	var err error
	a.kube.detector, err = kubetriggers.NewDetector(kubetriggers.Options{
		Kube:        o.kube,
		Dynamic:     o.dynamic,
		Namespaces:  namespaces,
		Publisher:   a.bus,
		State:       kubetriggers.NewKVState(a.triggerState),
		Logger:      a.logger.With("component", "kubernetes"),
		StateTTL:    cfg.StateTTL,
		MaxEventAge: cfg.MaxEventAge,

		HelmReleases: cfg.HelmReleases, // opt-in: Helm's release records are Secrets
	})
	return err
}

func namespacesText(ns []string) string {
	if len(ns) == 0 {
		return "all"
	}
	return strings.Join(ns, ",")
}

// startKubernetes hands the detector the running playbooks' interest,
// starts its informers, and keeps it in step with playbook reloads.
func (a *App) startKubernetes(ctx context.Context) error {
	d := a.kube.detector
	if d == nil {
		return nil
	}
	// The detector follows the playbook set: every applied reload (files,
	// Git, SIGHUP, the API) hands it the new set's interest. The store calls
	// subscribers under its reload lock, so the subscription only passes
	// the newest set on (one slot, the latest wins); the detector's
	// reconcile and rescan run here.
	sets := make(chan *playbooks.Set, 1)
	a.store.OnApply(func(s *playbooks.Set) {
		select {
		case <-sets: // an older set not yet taken: the newer replaces it
		default:
		}
		sets <- s
	})
	set := a.store.Current()
	d.SetInterest(interestOf(set))
	ctx, a.kube.stop = context.WithCancel(ctx)
	if err := d.Start(ctx); err != nil {
		return err
	}
	a.kube.done = make(chan struct{})
	go func() {
		defer close(a.kube.done)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sets:
				d.SetInterest(interestOf(s))
			}
		}
	}()
	go func() {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if a.kube.checkRBAC {
			a.checkKubePermissions(sctx, set)
		}
		if err := d.WaitForSync(sctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("some Kubernetes watches are not running yet; their triggers stay silent until they are", "err", err)
		}
	}()
	return nil
}

// checkKubePermissions asks the API server, once at start, whether medic's
// credentials allow what the loaded Kubernetes triggers watch, and names
// what is missing in one line.
func (a *App) checkKubePermissions(ctx context.Context, set *playbooks.Set) {
	missing, err := kube.Missing(ctx, a.kube.client, kubetriggers.Permissions(a.kube.namespaces, interestOf(set).Kinds()))
	if err != nil {
		a.logger.Debug("cannot check medic's Kubernetes permissions", "err", err)
		return
	}
	if len(missing) > 0 {
		list := make([]string, len(missing))
		for i, p := range missing {
			list[i] = p.String()
		}
		a.logger.Error("medic's Kubernetes credentials lack permissions its triggers need; apply deploy/rbac",
			"missing", strings.Join(list, "; "))
	}
}

// stopKubernetes ends the informers before the bus closes.
func (a *App) stopKubernetes() {
	if a.kube.detector == nil || a.kube.stop == nil {
		return
	}
	a.kube.stop()
	<-a.kube.done
	a.kube.detector.Stop()
}

// interestOf is what the playbook set wants from the cluster: its
// Kubernetes triggers, with their rate limits, delays and resources.
func interestOf(set *playbooks.Set) *kubetriggers.Interest {
	if set == nil {
		return kubetriggers.NewInterest()
	}
	return kubetriggers.InterestOf(set.Triggers())
}

// KubeDetector exposes the detector (nil when Kubernetes is off), for tests.
func (a *App) KubeDetector() *kubetriggers.Detector { return a.kube.detector }
