package deploy_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/medichq/medic/test/deploy"
)

// remediation.enabled adds one role apart from the read-only ones, with the
// verbs of exactly the allowed actions, and the configuration medic reads;
// off (the default and every example), nothing can write.
func TestRemediationRole(t *testing.T) {
	needHelm(t)
	enable := []string{"remediation.enabled=true", "remediation.allowed[0]=delete_pod", "remediation.allowed[1]=scale_workload",
		"remediation.allowed[2]=kubectl_command", "remediation.approvers[0]=U024BE7LH"}
	cases := []struct {
		name string
		sets []string
		kind string // of the remediation role; "" for none
	}{
		{"off by default", nil, ""},
		{"cluster", enable, "ClusterRole"},
		{"namespaced", append([]string{"rbac.scope=namespaced", "kubernetes.namespaces[0]=shop"}, enable...), "Role"},
		{"read-only actions only", []string{"remediation.enabled=true", "remediation.allowed[0]=kubectl_command", "remediation.approvers[0]=U1"}, ""},
	}
	// delete_pod and scale_workload; kubectl_command needs nothing more.
	want := []string{"delete  pods", "patch apps deployments/scale,statefulsets/scale,replicasets/scale"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, objs := render(t, nil, tc.sets...)
			var roles []string
			for _, u := range append(objs.Of("ClusterRole"), objs.Of("Role")...) {
				if strings.HasSuffix(u.GetName(), "-remediation") {
					roles = append(roles, u.GetKind())
					rules := must(deploy.RulesOf(u))
					var got []string
					for _, r := range rules {
						got = append(got, strings.Join(r.Verbs, ",")+" "+strings.Join(r.APIGroups, ",")+" "+strings.Join(r.Resources, ","))
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s rules %v, want %v", u.GetName(), got, want)
					}
				}
			}
			if (tc.kind == "") != (len(roles) == 0) || (tc.kind != "" && (len(roles) != 1 || roles[0] != tc.kind)) {
				t.Fatalf("remediation roles %v, want %q", roles, tc.kind)
			}
			hasConfig := strings.Contains(out, "    remediation:\n      allowed:")
			if enabled := len(tc.sets) > 0; hasConfig != enabled {
				t.Errorf("medic.yaml remediation section rendered %v, want %v", hasConfig, enabled)
			}
			// The read-only roles stay read-only: only the remediation
			// role may write.
			for _, p := range deploy.CheckRBAC(objs, deploy.Namespace, "medic") {
				if !strings.Contains(p, "-remediation") {
					t.Errorf("not read-only: %s", p)
				}
			}
		})
	}
	if _, err := deploy.Template(nil, "remediation.enabled=true", "remediation.allowed[0]=delete_pod"); err == nil ||
		!strings.Contains(err.Error(), "remediation.approvers: list the Slack user or user-group IDs") {
		t.Errorf("no approvers: %v", err)
	}
	if _, err := deploy.Template(nil, "remediation.enabled=true", "remediation.allowed[0]=drop_database", "remediation.approvers[0]=U1"); err == nil ||
		!strings.Contains(err.Error(), `remediation.allowed: "drop_database" is not a remediation action`) {
		t.Errorf("an unknown action: %v", err)
	}
}
