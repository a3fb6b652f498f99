package kubernetes

import "github.com/medichq/medic/triggers"

// Register adds every Kubernetes trigger to r: the pod, job, node and
// warning-event triggers (trigger.go), the change triggers of each Kind in
// the table and on_kubernetes_resource_operation (kinds.go), and the Helm
// release triggers (helm.go).
func Register(r *triggers.Registry) {
	registerPods(r)
	registerChanges(r)
	registerHelm(r)
}
