package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/bus"
)

// DeadLetters counts what the bus moved to the dead-letter stream, by
// consumer: the engine, each sink and the interaction workers.
type DeadLetters struct {
	count *prometheus.CounterVec
}

// NewDeadLetters registers medic_dead_letters_total.
func NewDeadLetters(reg prometheus.Registerer) (*DeadLetters, error) {
	dl := &DeadLetters{count: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "medic_dead_letters_total", Help: "Messages moved to the dead-letter stream, by consumer.",
	}, []string{"consumer"})}
	if err := register(reg, dl.count); err != nil {
		return nil, err
	}
	return dl, nil
}

// Counter is the bus.ConsumerConfig.OnDeadLetter of the consumer named.
func (dl *DeadLetters) Counter(consumer string) func(*bus.Delivery, string) {
	// The series appears with its first dead letter, not before.
	return func(*bus.Delivery, string) { dl.count.WithLabelValues(consumer).Inc() }
}
