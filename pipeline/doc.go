// Package pipeline is medic's data path between the bus and the sinks,
// one small named stage per step:
//
//	sources → bus (MEDIC_EVENTS) → Events: decode → Lifetimes (claim the alert)
//	        → Evaluate (playbooks, silenced note, redaction) → Keep (silenced: the
//	        finding store only) or Route (sinks.Decide) → Publish (MEDIC_FINDINGS)
//	bus (MEDIC_FINDINGS, one consumer per sink) → Deliver: idempotency,
//	        delivery record, Send; errors are retried and dead-lettered by the bus
//
// Each stage takes what it needs as a narrow interface (an Engine, a
// FindingPublisher, DeliveryRecords), so it can be tested alone against the
// real thing, and registers its own metrics. internal/app only wires them
// to the bus's consumers.
package pipeline
