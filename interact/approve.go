package interact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	sslack "github.com/medichq/medic/sinks/slack"
)

// RemediationsBucket records every approval: who pressed, what ran, the
// result. One key per finding and proposal is created once, so a second
// press, a second replica or a redelivered job never runs it again.
const RemediationsBucket = "medic_remediations"

// remediationsTTL keeps the records a month, past any finding's retention.
const remediationsTTL = 30 * 24 * time.Hour

// KindApprove is the job of an Approve button.
const KindApprove = "approve"

// Remediator runs an approved proposal on its recorded target and returns
// the record of the run (actions/remediate.Executor). It returns an error
// only when it could not try (a cancelled context, a policy that no longer
// allows the action): a failure in the cluster is part of the record.
type Remediator interface {
	Execute(ctx context.Context, f *event.Finding, p event.ProposedAction, approvedBy string, at time.Time) (event.Enrichment, error)
}

// RemediationRun is the record of one approved proposal.
type RemediationRun struct {
	FindingID string `json:"findingId"`
	Proposal  string `json:"proposal"`
	Action    string `json:"action"`
	Summary   string `json:"summary"`
	// RequestID is the press that claimed the run; ApprovedBy the presser.
	RequestID  string    `json:"requestId"`
	ApprovedBy string    `json:"approvedBy"`
	At         time.Time `json:"at"`
	// Result is set once it ran; Replied once the thread was told.
	Result  *event.Enrichment `json:"result,omitempty"`
	Replied bool              `json:"replied,omitempty"`
}

func runKey(findingID, proposal string) string {
	return "run." + keyToken(findingID) + "." + keyToken(proposal)
}

// approvalAction returns the proposal ID of an Approve button's action ID.
func approvalAction(actionID string) (string, bool) {
	id, ok := strings.CutPrefix(actionID, sslack.ActionApprovePrefix)
	return id, ok && validID(id)
}

// RemediationRecord returns the record of an approved proposal, nil when it
// was never approved.
func (s *Service) RemediationRecord(ctx context.Context, findingID, proposal string) (*RemediationRun, error) {
	rec, _, err := s.getRun(ctx, runKey(findingID, proposal))
	return rec, err
}

func (s *Service) getRun(ctx context.Context, key string) (*RemediationRun, uint64, error) {
	e, err := s.runs.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var rec RemediationRun
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, 0, err
	}
	return &rec, e.Revision(), nil
}

func (s *Service) putRun(ctx context.Context, key string, rec *RemediationRun) error {
	b, _ := json.Marshal(rec)
	_, err := s.runs.Put(ctx, key, b)
	return err
}

// approve runs a proposed remediation once, when an approver pressed its
// button, and records who approved it, what ran and the result in the
// thread and on the finding page. A press by anyone else is refused and
// recorded too.
func (s *Service) approve(ctx context.Context, j *Job) error {
	if j.Slack == nil || s.poster == nil {
		return nil
	}
	reply := func(text string) error {
		_, _, err := s.poster.Post(ctx, j.Slack.Channel, sslack.TextMessage(text), j.Slack.ThreadTS)
		return err
	}
	presser := "<@" + sslack.Escape(j.Slack.User) + ">"
	f, err := s.o.Findings.Get(ctx, j.FindingID)
	switch {
	case errors.Is(err, sinks.ErrFindingNotFound):
		return reply("⚠ This finding is no longer stored, so its proposed action cannot run from here.")
	case err != nil:
		return fmt.Errorf("read finding %s: %w", j.FindingID, err)
	}
	i := slices.IndexFunc(f.Proposed, func(p event.ProposedAction) bool { return p.ID == j.Proposal })
	if i < 0 {
		return reply("⚠ This finding has no such proposed action.")
	}
	p := f.Proposed[i]

	ok, err := s.isApprover(ctx, j.Slack.User)
	if err != nil {
		return fmt.Errorf("check approver %s: %w", j.Slack.User, err)
	}
	if !ok {
		return s.refuse(ctx, j, p, presser)
	}

	key := runKey(f.ID, p.ID)
	rec := &RemediationRun{FindingID: f.ID, Proposal: p.ID, Action: p.Action, Summary: p.Summary,
		RequestID: j.RequestID, ApprovedBy: j.Slack.User, At: s.now().UTC()}
	b, _ := json.Marshal(rec)
	fresh, err := createOnce(ctx, s.runs, key, b)
	if err != nil {
		return fmt.Errorf("claim remediation %s: %w", key, err)
	}
	if !fresh {
		cur, _, err := s.getRun(ctx, key)
		if err != nil || cur == nil {
			return fmt.Errorf("read remediation %s: %w", key, err)
		}
		if cur.RequestID != j.RequestID {
			// Another press (or replica) holds it: it ran, or runs, once.
			s.logger.Info("approve pressed again; the remediation runs once", "finding", f.ID, "proposal", p.ID,
				"action", p.Action, "by", j.Slack.User, "approved_by", cur.ApprovedBy)
			msg := sslack.TextMessage(fmt.Sprintf("ℹ %s was already approved by <@%s> at %s UTC; it runs once.",
				sslack.Escape(p.Summary), sslack.Escape(cur.ApprovedBy), cur.At.Format("Jan 2 15:04")))
			if err := s.poster.Ephemeral(ctx, j.Slack.Channel, j.Slack.User, j.Slack.ThreadTS, msg); err != nil {
				s.logger.Warn("could not tell the user it already ran", "err", err)
			}
			return nil
		}
		rec = cur // ours, redelivered: carry on where it stopped
	}
	if rec.Result == nil {
		res, err := s.execute(ctx, f, p, presser+" ("+firstNonEmpty(j.Slack.UserName, j.Slack.User)+")", rec.At)
		if err != nil {
			return err
		}
		rec.Result = &res
		if err := s.putRun(ctx, key, rec); err != nil {
			return err
		}
		// The finding page shows the record with the finding.
		f.Add(res)
		if err := s.o.Findings.Put(ctx, f); err != nil {
			s.logger.Warn("could not add the remediation record to the stored finding", "finding", f.ID, "err", err)
		}
	}
	if rec.Replied {
		return nil
	}
	msg := sslack.RenderEnrichments(fmt.Sprintf("%s approved %s", presser, p.Summary), []event.Enrichment{*rec.Result}, 30)
	if _, _, err := s.poster.Post(ctx, j.Slack.Channel, msg, j.Slack.ThreadTS); err != nil {
		return err
	}
	rec.Replied = true
	return s.putRun(ctx, key, rec)
}

// execute runs p through the Remediator, turning a refusal into the record.
func (s *Service) execute(ctx context.Context, f *event.Finding, p event.ProposedAction, approvedBy string, at time.Time) (event.Enrichment, error) {
	if s.o.Remediator == nil {
		return remediationNote(p, "remediation is not enabled in this medic (remediation.enabled)"), nil
	}
	res, err := s.o.Remediator.Execute(ctx, f, p, approvedBy, at)
	if err != nil {
		if ctx.Err() != nil {
			return event.Enrichment{}, ctx.Err()
		}
		s.logger.Warn("an approved remediation did not run", "finding", f.ID, "action", p.Action, "err", err)
		return remediationNote(p, err.Error()), nil
	}
	return res, nil
}

func remediationNote(p event.ProposedAction, why string) event.Enrichment {
	return event.Enrichment{Title: "❌ Did not run: " + p.Summary, Source: "remediation",
		Blocks: []event.Block{event.MarkdownBlock(why)}}
}

// refuse records and answers a press by someone who is not an approver;
// nothing runs.
func (s *Service) refuse(ctx context.Context, j *Job, p event.ProposedAction, presser string) error {
	key := "refused." + keyToken(j.FindingID) + "." + keyToken(j.RequestID)
	rec := RemediationRun{FindingID: j.FindingID, Proposal: p.ID, Action: p.Action, Summary: p.Summary,
		RequestID: j.RequestID, ApprovedBy: j.Slack.User, At: s.now().UTC()}
	b, _ := json.Marshal(rec)
	fresh, err := createOnce(ctx, s.runs, key, b)
	if err != nil || !fresh {
		return err
	}
	s.logger.Warn("approval refused: not an approver", "finding", j.FindingID, "proposal", p.ID, "action", p.Action, "user", j.Slack.User)
	text := fmt.Sprintf("🚫 %s pressed Approve on “%s” but is not one of the approvers (remediation.approvers); nothing ran.",
		presser, sslack.Escape(p.Summary))
	if _, _, err := s.poster.Post(ctx, j.Slack.Channel, sslack.TextMessage(text), j.Slack.ThreadTS); err != nil {
		_ = s.runs.Delete(ctx, key) // answer on the retry
		return err
	}
	return nil
}

// isApprover reports whether a Slack user is in Approvers, directly or
// through one of the listed user groups (usergroups.users.list).
func (s *Service) isApprover(ctx context.Context, user string) (bool, error) {
	if user == "" {
		return false, nil
	}
	for _, a := range s.o.Approvers {
		if a == user && !strings.HasPrefix(a, "S") { // S…: a group, never a presser
			return true, nil
		}
	}
	for _, a := range s.o.Approvers {
		if !strings.HasPrefix(a, "S") {
			continue
		}
		members, err := s.poster.Client.GetUserGroupMembersContext(ctx, a)
		if err != nil {
			return false, fmt.Errorf("members of user group %s: %w", a, err)
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, nil
}
