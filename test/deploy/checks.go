package deploy

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ReadVerbs are the only verbs medic's roles may grant.
var ReadVerbs = []string{"get", "list", "watch"}

// Rule is one RBAC policy rule, as rendered.
type Rule struct {
	APIGroups       []string `json:"apiGroups"`
	Resources       []string `json:"resources"`
	ResourceNames   []string `json:"resourceNames"`
	Verbs           []string `json:"verbs"`
	NonResourceURLs []string `json:"nonResourceURLs"`
}

// RulesOf returns the rules of a Role or ClusterRole.
func RulesOf(u *unstructured.Unstructured) ([]Rule, error) {
	raw, _, err := unstructured.NestedSlice(u.Object, "rules")
	if err != nil {
		return nil, err
	}
	var out []Rule
	for i, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: rules[%d] is not a map", Describe(u), i)
		}
		strs := func(k string) []string {
			v, _, _ := unstructured.NestedStringSlice(m, k)
			return v
		}
		out = append(out, Rule{
			APIGroups: strs("apiGroups"), Resources: strs("resources"), ResourceNames: strs("resourceNames"),
			Verbs: strs("verbs"), NonResourceURLs: strs("nonResourceURLs"),
		})
	}
	return out, nil
}

// CheckRBAC returns every way the RBAC objects among objs exceed read-only
// access: a verb other than get, list and watch, a wildcard, Secrets, a
// non-resource URL, an aggregated role, or a binding to a role the chart
// did not define (cluster-admin, view, …) or to another subject than
// serviceAccount in namespace.
func CheckRBAC(objs Objects, namespace, serviceAccount string) []string {
	var problems []string
	roles := map[string]bool{}
	for _, u := range objs {
		kind := u.GetKind()
		if kind != "Role" && kind != "ClusterRole" {
			continue
		}
		roles[kind+"/"+u.GetNamespace()+"/"+u.GetName()] = true
		if _, found := u.Object["aggregationRule"]; found {
			problems = append(problems, Describe(u)+": aggregationRule pulls in other roles' rules")
		}
		rules, err := RulesOf(u)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for i, r := range rules {
			where := fmt.Sprintf("%s rules[%d]", Describe(u), i)
			for _, v := range r.Verbs {
				switch {
				case strings.Contains(v, "*"):
					problems = append(problems, fmt.Sprintf("%s: wildcard verb %q", where, v))
				case !slices.Contains(ReadVerbs, v):
					problems = append(problems, fmt.Sprintf("%s: verb %q is not read-only (get, list, watch)", where, v))
				}
			}
			for field, vals := range map[string][]string{"apiGroups": r.APIGroups, "resources": r.Resources, "resourceNames": r.ResourceNames} {
				for _, v := range vals {
					if strings.Contains(v, "*") {
						problems = append(problems, fmt.Sprintf("%s: wildcard in %s: %q", where, field, v))
					}
				}
			}
			for _, res := range r.Resources {
				if res == "secrets" || strings.HasPrefix(res, "secrets/") {
					problems = append(problems, fmt.Sprintf("%s: grants %v on %s", where, r.Verbs, res))
				}
			}
			if len(r.NonResourceURLs) > 0 {
				problems = append(problems, fmt.Sprintf("%s: nonResourceURLs %v", where, r.NonResourceURLs))
			}
		}
	}
	for _, u := range objs {
		kind := u.GetKind()
		if kind != "RoleBinding" && kind != "ClusterRoleBinding" {
			continue
		}
		refKind, _, _ := unstructured.NestedString(u.Object, "roleRef", "kind")
		refName, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
		refNS := ""
		if refKind == "Role" {
			refNS = u.GetNamespace()
		}
		if !roles[refKind+"/"+refNS+"/"+refName] {
			problems = append(problems, fmt.Sprintf("%s: binds %s %s, which the chart does not define (and so does not limit)", Describe(u), refKind, refName))
		}
		subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
		for _, s := range subjects {
			m, _ := s.(map[string]any)
			if m["kind"] != "ServiceAccount" || m["name"] != serviceAccount || m["namespace"] != namespace {
				problems = append(problems, fmt.Sprintf("%s: subject %v is not the ServiceAccount %s/%s", Describe(u), m, namespace, serviceAccount))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// SecretValues returns the decoded values of every Secret among objs.
func SecretValues(objs Objects) (map[string]string, error) {
	out := map[string]string{}
	for _, u := range objs.Of("Secret") {
		data, _, _ := unstructured.NestedStringMap(u.Object, "data")
		for k, v := range data {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("%s data %s: %w", Describe(u), k, err)
			}
			out[u.GetName()+"/"+k] = string(b)
		}
		str, _, _ := unstructured.NestedStringMap(u.Object, "stringData")
		for k, v := range str {
			out[u.GetName()+"/"+k] = v
		}
	}
	return out, nil
}

// CheckSecretsNotInConfigMaps returns a problem for every secret value (of
// at least 6 characters, so that "true" or "main" do not count) found in a
// ConfigMap, or anywhere else outside a Secret: labels, annotations, an
// environment variable.
func CheckSecretsNotInConfigMaps(objs Objects, secrets []string) []string {
	var problems []string
	for _, u := range objs {
		if u.GetKind() == "Secret" {
			continue
		}
		js, err := u.MarshalJSON()
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", Describe(u), err))
			continue
		}
		var texts []string
		texts = append(texts, string(js))
		if u.GetKind() == "ConfigMap" {
			// The JSON escapes some characters; the data as it is stored counts.
			data, _, _ := unstructured.NestedStringMap(u.Object, "data")
			for _, v := range data {
				texts = append(texts, v)
			}
			bin, _, _ := unstructured.NestedStringMap(u.Object, "binaryData")
			for _, v := range bin {
				if b, err := base64.StdEncoding.DecodeString(v); err == nil {
					texts = append(texts, string(b))
				}
			}
		}
		for _, s := range secrets {
			if len(strings.TrimSpace(s)) < 6 {
				continue
			}
			for _, t := range texts {
				if strings.Contains(t, strings.TrimSpace(s)) {
					problems = append(problems, fmt.Sprintf("%s contains a secret value (%s…)", Describe(u), s[:3]))
					break
				}
			}
		}
	}
	return problems
}

// secretKeys are medic.yaml keys that hold a secret inline; the chart must
// only ever set their *_file variants.
var secretKeys = []string{"bearer_token", "password", "api_key", "webhook_secret", "bot_token", "signing_secret",
	"app_token", "token", "webhook_url", "secret", "credentials", "routing_key"}

// CheckConfigHasNoInlineSecrets returns a problem for every key of a
// medic.yaml that holds a secret inline (bearer_token: …) instead of
// naming a file (bearer_token_file: …).
func CheckConfigHasNoInlineSecrets(medicYAML string) []string {
	var doc any
	if err := yaml.Unmarshal([]byte(medicYAML), &doc); err != nil {
		return []string{"medic.yaml: " + err.Error()}
	}
	var problems []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				if s, ok := val.(string); ok && s != "" && slices.Contains(secretKeys, k) {
					problems = append(problems, fmt.Sprintf("medic.yaml %s holds a secret inline; use %s_file", p, k))
				}
				walk(p, val)
			}
		case []any:
			for i, val := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), val)
			}
		}
	}
	walk("", doc)
	sort.Strings(problems)
	return problems
}

// MedicConfig returns the medic.yaml of the chart's config ConfigMap.
func MedicConfig(objs Objects) (string, error) {
	for _, cm := range objs.Of("ConfigMap") {
		if s, ok, _ := unstructured.NestedString(cm.Object, "data", "medic.yaml"); ok {
			return s, nil
		}
	}
	return "", fmt.Errorf("no ConfigMap with medic.yaml among %d objects", len(objs))
}
