package chatfmt

import (
	"slices"
	"testing"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

// The facts a chat message lists under the subject are the cluster's labels
// that the subject does not already show; medic's bookkeeping (the rate
// limit's subject, a UID for warning events) is not one of them.
func TestExtraLabelsLeaveOutWhatIsShownAndBookkeeping(t *testing.T) {
	t.Parallel()
	ev := &event.Event{Labels: map[string]string{
		"namespace": "shop", "pod": "cart-7d9", "alertname": "KubePodCrashLooping",
		kubeevent.LabelReason:           "CrashLoopBackOff",
		kubeevent.LabelRestartCount:     "4",
		kubeevent.LabelRateLimitSubject: "8c2b6d0e-uid/BackOff",
	}}
	var got []string
	for _, f := range ExtraLabels(ev) {
		got = append(got, f.Name+"="+f.Value)
	}
	want := []string{"reason=CrashLoopBackOff", "restart_count=4"}
	if !slices.Equal(got, want) {
		t.Errorf("ExtraLabels = %q, want %q", got, want)
	}
}
