// Package kube is a wrapper module that builds a real kube-apiserver and
// etcd for medic's tests: test/tools/build-kube.sh builds ./cmd/kube-apiserver
// and ./cmd/etcd into <tools cache>/kube-<version>/. It has its own go.mod so that
// medic's module never depends on k8s.io/kubernetes.
package kube
