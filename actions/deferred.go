package actions

// Deferred is implemented by actions that run after every other action of
// the event, whatever their place in the playbooks: ask_ai in mode auto
// explains the evidence, so it must see all of it, including what a later
// playbook (a built-in one) adds. Deferred actions keep their order.
type Deferred interface {
	Deferred() bool
}

// IsDeferred reports whether a runs last.
func IsDeferred(a Action) bool {
	d, ok := a.(Deferred)
	return ok && d.Deferred()
}
