// Package scheduleevent is the vocabulary of the events the scheduler
// publishes (sources/schedule writes them, on_schedule in triggers/schedule
// reads them), so that neither side imports the other.
package scheduleevent

// Source is the events' source and part of their IDs.
const Source = "schedule"

// Labels every tick event carries: the schedule's key (what the trigger
// matches), its playbook and the tick's number (1 for the first run).
const (
	LabelSchedule = "medic_schedule"
	LabelPlaybook = "playbook"
	LabelTick     = "tick"
)
