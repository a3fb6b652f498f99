package remediate

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/event"
)

var errNoCluster = errors.New("no Kubernetes cluster configured")

func client(deps Deps) (kubernetes.Interface, error) {
	kc := deps.KubeClient()
	if kc == nil {
		return nil, errNoCluster
	}
	return kc, nil
}

// podTarget is the event's pod. A remediation acts on what the event names,
// never on a pod it picked itself: deleting "the least healthy pod of a
// deployment" is a decision for a person.
func podTarget(f *event.Finding) (event.Subject, error) {
	s := kube.SubjectOf(&f.Event)
	if s.Kind != "Pod" || s.Name == "" || s.Namespace == "" {
		return event.Subject{}, fmt.Errorf("the event names no pod with its namespace (it is about %s)", describe(s))
	}
	return event.Subject{Kind: "Pod", Namespace: s.Namespace, Name: s.Name, Container: s.Container, Node: s.Node}, nil
}

// workloadTarget is the event's Deployment, StatefulSet or DaemonSet (kinds
// lists those the action accepts), or the pod's controller: ReplicaSet →
// Deployment, or the StatefulSet or DaemonSet that owns it.
func workloadTarget(ctx context.Context, deps Deps, f *event.Finding, kinds ...string) (event.Subject, error) {
	s := kube.SubjectOf(&f.Event)
	if s.Kind == "Pod" && s.Name != "" && s.Namespace != "" {
		kc, err := client(deps)
		if err != nil {
			return event.Subject{}, err
		}
		owner, err := podOwner(ctx, kc, s.Namespace, s.Name)
		if err != nil {
			return event.Subject{}, err
		}
		s = owner
	}
	for _, k := range kinds {
		if s.Kind == k && s.Name != "" && s.Namespace != "" {
			return event.Subject{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name}, nil
		}
	}
	return event.Subject{}, fmt.Errorf("the event names no %s (it is about %s)", kindList(kinds), describe(s))
}

// podOwner follows a pod's controller reference to its workload.
func podOwner(ctx context.Context, kc kubernetes.Interface, namespace, name string) (event.Subject, error) {
	pod, err := kc.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return event.Subject{}, fmt.Errorf("get pod %s: %w", ref(namespace, name), err)
	}
	c := metav1.GetControllerOf(pod)
	if c == nil {
		return event.Subject{}, fmt.Errorf("pod %s has no controller", ref(namespace, name))
	}
	if c.Kind != "ReplicaSet" {
		return event.Subject{Kind: c.Kind, Namespace: namespace, Name: c.Name}, nil
	}
	rs, err := kc.AppsV1().ReplicaSets(namespace).Get(ctx, c.Name, metav1.GetOptions{})
	if err != nil {
		return event.Subject{}, fmt.Errorf("get replicaset %s: %w", ref(namespace, c.Name), err)
	}
	if d := metav1.GetControllerOf(rs); d != nil && d.Kind == "Deployment" {
		return event.Subject{Kind: "Deployment", Namespace: namespace, Name: d.Name}, nil
	}
	return event.Subject{Kind: "ReplicaSet", Namespace: namespace, Name: rs.Name}, nil
}

// nodeTarget is the event's node, or the node of its pod.
func nodeTarget(ctx context.Context, deps Deps, f *event.Finding) (event.Subject, error) {
	s := kube.SubjectOf(&f.Event)
	if s.Node != "" {
		return event.Subject{Kind: "Node", Name: s.Node, Node: s.Node}, nil
	}
	if s.Kind == "Pod" && s.Name != "" && s.Namespace != "" {
		kc, err := client(deps)
		if err != nil {
			return event.Subject{}, err
		}
		pod, err := kc.CoreV1().Pods(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return event.Subject{}, fmt.Errorf("get pod %s: %w", ref(s.Namespace, s.Name), err)
		}
		if pod.Spec.NodeName != "" {
			return event.Subject{Kind: "Node", Name: pod.Spec.NodeName, Node: pod.Spec.NodeName}, nil
		}
	}
	return event.Subject{}, fmt.Errorf("the event names no node (it is about %s)", describe(s))
}

func describe(s event.Subject) string {
	if s.Kind == "" {
		return "no Kubernetes object"
	}
	return lower(s.Kind) + " " + ref(s.Namespace, s.Name)
}

func kindList(kinds []string) string {
	out := ""
	for i, k := range kinds {
		switch {
		case i == 0:
		case i == len(kinds)-1:
			out += " or "
		default:
			out += ", "
		}
		out += k
	}
	return out
}
