package robusta

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The output is a function of the input only (no timestamps, sorted
// keys, the values file's order), so an import run twice writes the same
// bytes and a re-run after a change differs only where the input did.

func playbooksYAML(pbs []playbookOut, source string) ([]byte, error) {
	header := fmt.Sprintf("# medic playbooks converted from %s by `medic playbooks import-robusta`.\n"+
		"# Check them with `medic playbooks validate`; the import report lists what was left out.\n", source)
	if len(pbs) == 0 {
		return []byte(header + "# No playbook could be converted.\n[]\n"), nil
	}
	body, err := marshal(pbs)
	if err != nil {
		return nil, err
	}
	return append([]byte(header), body...), nil
}

func configYAML(specs []sinkSpec, disabled []string, slack *slackToken, set settings, remediations []string, source string) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# medic.yaml fragment converted from %s by `medic playbooks import-robusta`:\n"+
		"# merge it into medic.yaml. No secret is copied here: each *_file names the file\n"+
		"# the Helm chart mounts from the Secret %s (see the report's secrets).\n", source, SecretName)
	if slack != nil {
		// Not written as a key: config loading reads the file, which exists
		// only where the chart mounted it.
		fmt.Fprintf(&b, "# The Slack sinks post with medic's one bot token:\n#   slack:\n#     bot_token_file: %s\n", slackBotTokenPath)
	}
	remediationSuggestion(&b, remediations, "require_approval")
	doc := map[string]any{}
	set.config(doc, &b)
	if len(specs) > 0 {
		doc["sinks"] = nodes(specs, false)
	} else {
		b.WriteString("# No sink could be converted; medic's default sinks (stdout and a findings file) apply.\n")
	}
	if len(disabled) > 0 {
		doc["playbooks"] = map[string]any{"disabled": disabled}
	}
	if len(doc) == 0 {
		b.WriteString("{}\n")
		return []byte(b.String()), nil
	}
	body, err := marshal(doc)
	if err != nil {
		return nil, err
	}
	b.Write(body)
	return []byte(b.String()), nil
}

// helmValuesYAML renders values for medic's chart: secrets are
// secretKeyRef entries the chart mounts as files.
func helmValuesYAML(specs []sinkSpec, pbs []playbookOut, disabled []string, slack *slackToken, set settings, remediations []string, source string) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Values for medic's Helm chart converted from %s by `medic playbooks import-robusta`:\n"+
		"#   helm upgrade --install medic deploy/helm/medic -f values.yaml\n"+
		"# Secrets are references to the Secret %s: create it first (the report lists its keys).\n", source, SecretName)
	remediationSuggestion(&b, remediations, "requireApproval")
	// A map: the YAML encoder sorts its keys, so the output is stable.
	v := map[string]any{}
	set.helm(v)
	if slack != nil {
		v["slack"] = map[string]any{"botToken": map[string]any{"secretKeyRef": map[string]any{"name": SecretName, "key": "slack-bot-token"}}}
	}
	if len(specs) > 0 {
		v["sinksConfig"] = nodes(specs, true)
	}
	if len(pbs) > 0 {
		v["customPlaybooks"] = pbs
	}
	if len(disabled) > 0 {
		v["disabledPlaybooks"] = disabled
	}
	if len(v) == 0 {
		b.WriteString("{}\n")
		return []byte(b.String()), nil
	}
	body, err := marshal(v)
	if err != nil {
		return nil, err
	}
	b.Write(body)
	return []byte(b.String()), nil
}

// remediationSuggestion writes, commented out, the remediation block the
// converted playbooks need. medic is read-only unless the operator opts in,
// so the import never enables it: those playbooks fail to load until this
// block is uncommented (the report says so for each).
func remediationSuggestion(b *strings.Builder, remediations []string, approvalKey string) {
	if len(remediations) == 0 {
		return
	}
	fmt.Fprintf(b, "# Some playbooks change the cluster (%s): they load only once you opt in\n"+
		"# to remediation (docs/security.md). Suggested, to uncomment:\n"+
		"#   remediation:\n"+
		"#     enabled: true\n"+
		"#     allowed: [%s]\n"+
		"#     %s: true  # each run waits for an approver's press in Slack\n"+
		"#     approvers: []  # required: the Slack user IDs (U…) or user-group IDs (S…) who may approve\n",
		strings.Join(remediations, ", "), strings.Join(remediations, ", "), approvalKey)
}

func marshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	return []byte(b.String()), nil
}

func nodes(specs []sinkSpec, helm bool) []*yaml.Node {
	out := make([]*yaml.Node, 0, len(specs))
	for _, s := range specs {
		out = append(out, s.node(helm))
	}
	return out
}
