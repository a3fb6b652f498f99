package robusta

import (
	"fmt"
	"strings"
)

// ReportSchema names the JSON report's shape; it changes only with
// incompatible changes.
const ReportSchema = "medic.robusta-import/v1"

// SummaryRow counts the items of one kind by outcome.
type SummaryRow struct {
	Kind         string `json:"kind"`
	Converted    int    `json:"converted"`
	Lossy        int    `json:"converted_with_loss"`
	NotConverted int    `json:"not_converted"`
}

// Total is the number of items of the row's kind.
func (r SummaryRow) Total() int { return r.Converted + r.Lossy + r.NotConverted }

// File is an output file and what the import did to it.
type File struct {
	Path string `json:"path"`
	// Status is created, updated or unchanged.
	Status string `json:"status"`
}

// JSONReport is `medic playbooks import-robusta --report json`.
type JSONReport struct {
	Schema string `json:"schema"`
	// Lossless is true when every item was converted without loss (exit
	// status 0).
	Lossless bool         `json:"lossless"`
	Summary  []SummaryRow `json:"summary"`
	Items    []Item       `json:"items"`
	Secrets  []Secret     `json:"secrets"`
	Files    []File       `json:"files"`
}

// Summary counts the items by kind, in Kinds' order.
func (r *Result) Summary() []SummaryRow {
	rows := make([]SummaryRow, 0, len(Kinds))
	for _, k := range Kinds {
		rows = append(rows, SummaryRow{Kind: k,
			Converted: r.Count(k, Converted), Lossy: r.Count(k, Lossy), NotConverted: r.Count(k, NotConverted)})
	}
	return rows
}

// JSON returns the report for --report json.
func (r *Result) JSON(files []File) JSONReport {
	j := JSONReport{Schema: ReportSchema, Lossless: r.Lossless(), Summary: r.Summary(),
		Items: r.Items, Secrets: r.Secrets, Files: files}
	if j.Items == nil {
		j.Items = []Item{}
	}
	if j.Secrets == nil {
		j.Secrets = []Secret{}
	}
	if j.Files == nil {
		j.Files = []File{}
	}
	return j
}

var kindTitles = map[string]string{
	KindPlaybook: "playbooks", KindTrigger: "triggers", KindAction: "actions",
	KindSink: "sinks", KindSinkParam: "sink parameters", KindDisabled: "disabled playbooks",
	KindSetting: "settings",
}

// Table renders the summary as a text table.
func Table(rows []SummaryRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s %10s %10s %14s %6s\n", "", "converted", "with loss", "not converted", "total")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-20s %10d %10d %14d %6d\n", kindTitles[r.Kind], r.Converted, r.Lossy, r.NotConverted, r.Total())
	}
	return b.String()
}

// Report renders the result for people: the table, then every item that
// lost something or was not converted, then the secrets to create.
func (r *Result) Report() string {
	var b strings.Builder
	b.WriteString(Table(r.Summary()))
	for _, o := range []Outcome{NotConverted, Lossy} {
		var lines []string
		for _, it := range r.Items {
			if it.Outcome == o {
				lines = append(lines, "  "+it.String())
			}
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "\n%s (%d):\n%s\n", strings.ReplaceAll(string(o), "_", " "), len(lines), strings.Join(lines, "\n"))
		}
	}
	if len(r.Secrets) > 0 {
		fmt.Fprintf(&b, "\nsecrets: no value was copied. Create the Secret %s with these keys before installing;\n"+
			"the chart mounts each where medic reads it:\n", SecretName)
		for _, s := range r.Secrets {
			from := ""
			if s.FromEnv != "" {
				from = fmt.Sprintf(" (Robusta read it from $%s)", s.FromEnv)
			}
			fmt.Fprintf(&b, "  %s: the value of %s%s → %s\n", s.SecretKey, s.Where, from, s.File)
		}
		for _, s := range r.Secrets {
			if s.File == slackBotTokenPath {
				fmt.Fprintf(&b, "The Slack sinks' api_key is medic's one Slack bot token: Helm value slack.botToken "+
					"(secretKeyRef %s/slack-bot-token), read from slack.bot_token_file %s.\n", SecretName, slackBotTokenPath)
				break
			}
		}
	}
	return b.String()
}

func (i Item) String() string {
	var b strings.Builder
	b.WriteString(i.Where + ": ")
	if i.Kind != KindPlaybook && i.Kind != KindDisabled && i.Kind != KindSetting {
		fmt.Fprintf(&b, "%s `%s`", strings.ReplaceAll(i.Kind, "_", " "), i.Name)
	} else {
		fmt.Fprintf(&b, "%s", strings.ReplaceAll(i.Kind, "_", " "))
		if i.Kind == KindDisabled {
			fmt.Fprintf(&b, " %q", i.Name)
		}
	}
	if i.Target != "" && i.Target != i.Name {
		fmt.Fprintf(&b, " → %s", i.Target)
	}
	if len(i.Reasons) > 0 {
		b.WriteString(": " + strings.Join(i.Reasons, "; "))
	}
	if i.Todo != "" {
		b.WriteString(" — to do: " + i.Todo)
	}
	return b.String()
}
