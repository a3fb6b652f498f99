package playbooks

// ParamsSchema is the JSON Schema of one trigger's or action's parameter
// struct (a pointer filled with its defaults, as Definition.NewParams
// returns), the very one the playbook schema holds. The investigation's tools
// (package agent) offer the evidence actions to a model with it, so the
// playbooks and the model share one definition of each parameter.
func ParamsSchema(p any) map[string]any { return paramsSchema(p) }
