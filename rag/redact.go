package rag

import "github.com/medichq/medic/redact"

// The redactor lives in package redact so that the sinks' pipeline and the
// finding page use the very one the model path uses; these names keep
// rag's API.
type (
	// Redactor removes secrets from text before it leaves for a model.
	Redactor = redact.Redactor
	// Redaction counts what was removed, by kind.
	Redaction = redact.Redaction
)

// Placeholder replaces each secret.
const Placeholder = redact.Placeholder

// NewRedactor builds the built-in rules plus extra patterns, with the
// default env allow-list (redact.New takes every option).
func NewRedactor(extra []string) (*Redactor, error) {
	return redact.New(redact.Options{Patterns: extra})
}
