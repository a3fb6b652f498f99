package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Objects are the documents of a rendered manifest, in order.
type Objects []*unstructured.Unstructured

// ParseManifests splits a multi-document YAML stream into objects,
// skipping empty documents.
func ParseManifests(text string) (Objects, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	var out Objects
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := utilyaml.ToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(out)+1, err)
		}
		if len(bytes.TrimSpace(js)) == 0 || string(bytes.TrimSpace(js)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("document %d: %w", len(out)+1, err)
		}
		out = append(out, u)
	}
}

// Of returns the objects of a kind.
func (o Objects) Of(kind string) Objects {
	var out Objects
	for _, u := range o {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// Get returns the object of a kind and name, or nil.
func (o Objects) Get(kind, name string) *unstructured.Unstructured {
	for _, u := range o {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	return nil
}

// Describe names an object for messages: Kind namespace/name.
func Describe(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetKind() + " " + u.GetName()
}

// ValuesSet is one way of installing the chart that the tests render,
// lint, compare with a golden file and send to a real API server.
type ValuesSet struct {
	// Name names the golden file testdata/golden/<Name>.yaml.
	Name string
	// Files are values files relative to the repository root.
	Files []string
}

// ValuesSets are the chart's defaults and each example values file in
// deploy/helm/medic/examples.
func ValuesSets() ([]ValuesSet, error) {
	chart, err := ChartDir()
	if err != nil {
		return nil, err
	}
	root, _ := RepoRoot()
	sets := []ValuesSet{{Name: "default"}}
	matches, err := filepath.Glob(filepath.Join(chart, "examples", "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, m := range matches {
		rel, _ := filepath.Rel(root, m)
		sets = append(sets, ValuesSet{Name: strings.TrimSuffix(filepath.Base(m), ".yaml"), Files: []string{rel}})
	}
	return sets, nil
}

// ManifestsFile is deploy/manifests/medic.yaml, the chart rendered with its
// defaults for people who do not use Helm.
func ManifestsFile() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "manifests", "medic.yaml"), nil
}

// ReadFile reads a file relative to the repository root.
func ReadFile(rel string) ([]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(root, rel))
}
