package interact

import (
	"context"
	"html"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/remediate"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	sslack "github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/slack/slackrec"
	"github.com/medichq/medic/test/kubeapi"
)

// counted counts the executions that reach the real remediate.Executor.
type counted struct {
	next  Remediator
	calls atomic.Int32
}

func (c *counted) Execute(ctx context.Context, f *event.Finding, p event.ProposedAction, by string, at time.Time) (event.Enrichment, error) {
	c.calls.Add(1)
	return c.next.Execute(ctx, f, p, by, at)
}

// The approval path end to end: delete_pod proposed by a playbook, the
// Approve button on the Slack message, a press by someone who is not an
// approver (refused, recorded, nothing runs), then two presses by an
// approver, with two replicas working: the pod is deleted on the real API
// server exactly once, the
// thread says who approved what and the result, the second presser is told
// it already ran, and the stored finding (the page) carries the record.
func TestApproveRunsOnceForApproversOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	ctx := context.Background()
	c, admin := kubeapi.StartWithRoles(t, []string{"clusterrole.yaml", "clusterrole-remediation.yaml"}, "shop")
	if _, err := admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/cart:1"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	medic, err := kubernetes.NewForConfig(c.Medic())
	if err != nil {
		t.Fatal(err)
	}
	env := &actions.Env{Kube: medic, Remediation: actions.Remediation{Enabled: true, Allowed: []string{"delete_pod"}, RequireApproval: true}}
	rem := &counted{next: &remediate.Executor{Env: env}}
	h := newHarness(t, harnessOpts{remediator: rem, approvers: []string{"U0ONCALL"}})

	// The playbook's delete_pod proposes; nothing is deleted yet.
	f := alertFinding("r1")
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("{}"), &node); err != nil {
		t.Fatal(err)
	}
	remediations := actions.NewRegistry()
	remediate.Register(remediations)
	a, err := remediations.Build("delete_pod", &node)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(ctx, env, f); err != nil || len(f.Proposed) != 1 {
		t.Fatalf("proposed %d: %v", len(f.Proposed), err)
	}
	p := f.Proposed[0]
	msg := h.deliver(f)
	button := sslack.ActionApprovePrefix + p.ID
	if !strings.Contains(msg.BlocksJSON(), button) || !strings.Contains(text(msg), "✅ Approve: delete pod shop/cart-7d9") {
		t.Fatalf("no Approve button in %s", msg.BlocksJSON())
	}

	// A press by someone else: refused in the thread, recorded, nothing runs.
	intruder := h.clickPayload(msg, button, f.ID, "1700000500.000001")
	intruder["user"] = map[string]any{"id": "U0INTRUDER", "name": "mallory"}
	req := signed(t, h.srv.URL+"/slack/interactions", formBody(t, intruder), time.Now(), signingSecret)
	if st, body := do(t, req); st != 200 {
		t.Fatalf("click answered %d %s", st, body)
	}
	h.slack.Wait(t, wait, "the refusal in the thread", func(*slackrec.Server) bool {
		return threadHas(h, msg.TS, "<@U0INTRUDER> pressed Approve on “delete pod shop/cart-7d9” but is not one of the approvers")
	})
	if n := rem.calls.Load(); n != 0 {
		t.Fatalf("a non-approver's press ran it %d times", n)
	}
	if _, err := admin.CoreV1().Pods("shop").Get(ctx, "cart-7d9", metav1.GetOptions{}); err != nil {
		t.Fatalf("the pod is gone after a refused press: %v", err)
	}
	if e, err := h.svc.runs.Get(ctx, "refused."+keyToken(f.ID)+".1700000500_000001"); err != nil || !strings.Contains(string(e.Value()), "U0INTRUDER") {
		t.Fatalf("the refusal is not recorded: %v", err)
	}

	// A second replica works off the same stream: the two presses below
	// may be handled one by each, at once.
	replica, err := New(ctx, Options{Bus: h.bus, Replicas: 1, Logger: slog.New(slog.DiscardHandler), KV: h.kv,
		Findings: h.findings, Links: h.links, Remediator: rem, Approvers: []string{"U0ONCALL"},
		Slack: SlackOptions{BotToken: botToken, SigningSecret: signingSecret, APIURL: h.slack.APIURL()}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := replica.Start(rctx, nil); err != nil {
		t.Fatal(err)
	}

	// The approver presses twice.
	h.click(msg, button, f.ID, "1700000500.000002")
	h.click(msg, button, f.ID, "1700000500.000003")
	h.slack.Wait(t, wait, "the result in the thread and the second presser told", func(s *slackrec.Server) bool {
		eph := false
		for _, c := range s.Calls(slackrec.PostEphemeral) {
			eph = eph || strings.Contains(html.UnescapeString(c.Text), "was already approved by <@U0ONCALL>")
		}
		return eph && threadHas(h, msg.TS, "deleted pod shop/cart-7d9")
	})
	if n := rem.calls.Load(); n != 1 {
		t.Fatalf("ran %d times, want 1", n)
	}
	if _, err := admin.CoreV1().Pods("shop").Get(ctx, "cart-7d9", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the pod was not deleted: %v", err)
	}
	results := 0
	for _, c := range h.threadPosts(msg.TS) {
		if strings.Contains(text(c), "deleted pod shop/cart-7d9") {
			results++
			if !strings.Contains(html.UnescapeString(c.Text), "<@U0ONCALL> approved delete pod shop/cart-7d9") {
				t.Errorf("the thread reply does not say who approved: %s | %s", c.Text, text(c))
			}
		}
	}
	if results != 1 {
		t.Fatalf("%d result replies in the thread, want 1", results)
	}
	// The record says Replied once the reply was posted, a KV write after
	// the post the wait above saw: wait for it rather than race it.
	var rec *RemediationRun
	testkit.Eventually(t, 10*time.Second, "the remediation record to say the thread was told", func() bool {
		r, rerr := h.svc.RemediationRecord(ctx, f.ID, p.ID)
		rec = r
		return rerr == nil && r != nil && r.Replied
	})
	if rec.ApprovedBy != "U0ONCALL" || rec.Result == nil {
		t.Fatalf("record %+v", rec)
	}
	stored, err := h.findings.Get(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := stored.Enrichments[len(stored.Enrichments)-1]
	if last.Source != remediate.Source || !strings.HasPrefix(last.Title, "✅ Remediation ran: delete pod shop/cart-7d9") {
		t.Fatalf("the stored finding (the page) lacks the record: %+v", last)
	}
}

func threadHas(h *harness, ts, s string) bool {
	for _, c := range h.threadPosts(ts) {
		if strings.Contains(html.UnescapeString(c.Text)+"\n"+text(c), s) {
			return true
		}
	}
	return false
}

// Approvers are user IDs, or members of the user groups listed
// (usergroups.users.list); everyone else is not one.
func TestIsApprover(t *testing.T) {
	h := newHarness(t, harnessOpts{approvers: []string{"U0LEAD", "S0ONCALL"}})
	h.slack.SetUserGroup("S0ONCALL", "U0ALICE", "U0BOB")
	ctx := context.Background()
	for user, want := range map[string]bool{"U0LEAD": true, "U0ALICE": true, "U0BOB": true, "U0MALLORY": false, "": false, "S0ONCALL": false} {
		got, err := h.svc.isApprover(ctx, user)
		if err != nil || got != want {
			t.Errorf("isApprover(%q) = %v, %v; want %v", user, got, err, want)
		}
	}
	h2 := newHarness(t, harnessOpts{approvers: []string{"S0GONE"}})
	if ok, err := h2.svc.isApprover(ctx, "U0ALICE"); ok || err == nil || !strings.Contains(err.Error(), "S0GONE") {
		t.Errorf("an unknown group: %v, %v", ok, err)
	}
}
