package kubeapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// RBACFile returns the path of a manifest in deploy/rbac.
func RBACFile(name string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "rbac", name), nil
}

// Apply creates the objects of a multi-document YAML manifest as
// `kubectl apply -n namespace -f path` would on a fresh cluster: namespaced
// objects without a namespace land in namespace, and a namespace that does
// not exist yet is created. It knows the kinds deploy/rbac uses.
func Apply(ctx context.Context, kc kubernetes.Interface, namespace, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var ext runtime.RawExtension
		if err := dec.Decode(&ext); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(ext.Raw) == 0 || string(ext.Raw) == "null" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(ext.Raw, nil, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := create(ctx, kc, namespace, obj); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

func ensureNamespace(ctx context.Context, kc kubernetes.Interface, ns string) error {
	if ns == "" {
		return nil
	}
	_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func create(ctx context.Context, kc kubernetes.Interface, namespace string, obj any) error {
	nsOf := func(m *metav1.ObjectMeta) string {
		if m.Namespace == "" {
			m.Namespace = namespace
		}
		return m.Namespace
	}
	var err error
	switch o := obj.(type) {
	case *corev1.ServiceAccount:
		if err = ensureNamespace(ctx, kc, nsOf(&o.ObjectMeta)); err == nil {
			_, err = kc.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
	case *rbacv1.ClusterRole:
		_, err = kc.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRoleBinding:
		_, err = kc.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.Role:
		if err = ensureNamespace(ctx, kc, nsOf(&o.ObjectMeta)); err == nil {
			_, err = kc.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
	case *rbacv1.RoleBinding:
		if err = ensureNamespace(ctx, kc, nsOf(&o.ObjectMeta)); err == nil {
			_, err = kc.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
	default:
		return fmt.Errorf("kubeapi.Apply does not know %T", obj)
	}
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
