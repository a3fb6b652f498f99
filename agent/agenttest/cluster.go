package agenttest

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/medichq/medic/actions"
)

// CrashLog is what CrashingPod's container printed before it died: a Go
// panic, its stack and the exit status `go run` adds.
const CrashLog = "starting cart v1.4.2\nloading config\npanic: assignment to entry in nil map\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:42 +0x1d\nexit status 2\n"

// CrashingPod is shop/cart-7d9 crash looping (exit code 2, 7 restarts).
func CrashingPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9", Namespace: "shop", UID: "u1"},
		Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app", Image: "shop/cart:1.4.2"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", RestartCount: 7,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}},
		}}},
	}
}

// Cluster is a client-go fake holding objs, whose pod logs are logs (the
// fake's own are "fake logs"), as the actions' environment.
func Cluster(logs string, objs ...runtime.Object) *actions.Env {
	kc := fake.NewClientset(objs...)
	kc.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		return true, &runtime.Unknown{Raw: []byte(logs)}, nil
	})
	return &actions.Env{Kube: kc}
}
