package app

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sslack "github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/slack/slackrec"
	"github.com/medichq/medic/test/kubeapi"
)

const remediationPlaybook = `- name: delete-crashlooping-pod
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping}
  actions:
    - delete_pod: {}
`

// Remediation through medic serve: an alert, the playbook's delete_pod
// proposed on the Slack message (the configuration enables and allows it),
// an approver's signed press on medic's endpoint, and the pod deleted on a
// real API server with the ServiceAccount's credentials (read-only role
// plus deploy/rbac's remediation role); the thread says who approved it and
// the result.
func TestRemediationThroughMedic(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	ctx := context.Background()
	c, admin := kubeapi.StartWithRoles(t, []string{"clusterrole.yaml", "clusterrole-remediation.yaml"}, "shop")
	if _, err := admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/cart:1"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rec := slackrec.New(t)
	cfg := chatConfig(t, rec)
	if err := os.WriteFile(filepath.Join(cfg.Playbooks.Dirs[0], "ai.yaml"), []byte(remediationPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Playbooks.Builtin = false
	cfg.Kubernetes.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := c.WriteKubeconfig(cfg.Kubernetes.Kubeconfig, kubeapi.MedicUser); err != nil {
		t.Fatal(err)
	}
	cfg.Remediation.Enabled, cfg.Remediation.Allowed, cfg.Remediation.Approvers = true, []string{"delete_pod"}, []string{"U024BE7LH"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := startLoggedApp(t, cfg)
	postCrashLoop(t, a)

	rec.Wait(t, 30*time.Second, "the finding in Slack", func(s *slackrec.Server) bool { return len(s.Calls(slackrec.PostMessage)) == 1 })
	msg := rec.Calls(slackrec.PostMessage)[0]
	blocks := msg.BlocksJSON()
	i := strings.Index(blocks, `"action_id":"`+sslack.ActionApprovePrefix)
	if i < 0 || !strings.Contains(blocks, "Approve: delete pod shop/cart-7d9") {
		t.Fatalf("no Approve button in %s", blocks)
	}
	actionID := blocks[i+len(`"action_id":"`):]
	actionID = actionID[:strings.IndexByte(actionID, '"')]
	j := strings.Index(blocks[i:], `"value":"`) + i + len(`"value":"`)
	findingID := blocks[j : j+strings.IndexByte(blocks[j:], '"')]
	if _, err := admin.CoreV1().Pods("shop").Get(ctx, "cart-7d9", metav1.GetOptions{}); err != nil {
		t.Fatalf("the pod is gone before anyone approved: %v", err)
	}

	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U024BE7LH", "name": "bob"},
		"container": map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": rec.ChannelID("#alerts")},
		"actions":   []any{map[string]any{"action_id": actionID, "block_id": sslack.ActionsBlockID, "value": findingID, "action_ts": "1.3", "type": "button"}},
	})
	if code := postSigned(t, a, "/slack/interactions", "application/x-www-form-urlencoded", url.Values{"payload": {string(payload)}}.Encode()); code != http.StatusOK {
		t.Fatalf("interaction answered %d", code)
	}
	rec.Wait(t, 30*time.Second, "the result in the thread", func(s *slackrec.Server) bool {
		for _, p := range s.Calls(slackrec.PostMessage) {
			if p.ThreadTS == msg.TS && strings.Contains(html.UnescapeString(p.Text), "<@U024BE7LH> approved delete pod shop/cart-7d9") &&
				strings.Contains(p.BlocksJSON(), "deleted pod shop/cart-7d9") {
				return true
			}
		}
		return false
	})
	if _, err := admin.CoreV1().Pods("shop").Get(ctx, "cart-7d9", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the pod was not deleted: %v", err)
	}
}
