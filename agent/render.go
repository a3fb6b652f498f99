package agent

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/rag"
)

// StepsTitle heads the transcript enrichment (in English; see localized).
const StepsTitle = "AI investigation steps"

// texts are medic's own words around an answer, per language. The model
// writes the answer itself in ai.language; these are the titles, notes and
// the headings it is asked to use.
type texts struct {
	explanation, steps, stopped, oneShot, tool, args, result string
	calls, stoppedShort                                      string
	headings                                                 [4]string
}

var english = texts{
	explanation: rag.ExplanationTitle, steps: StepsTitle,
	stopped: "⚠ The investigation was cut short by its limit on", oneShot: "_This model cannot call tools: answered in one shot from the evidence collected beforehand._",
	tool: "tool", args: "arguments", result: "result",
	calls: "tool calls", stoppedShort: "stopped by its limit on",
	headings: [4]string{"What is happening", "Likely causes", "What to check", "How to fix"},
}

var translations = map[string]texts{
	"de": {
		explanation: "KI-Erklärung", steps: "KI-Untersuchung: Schritte",
		stopped: "⚠ Die Untersuchung wurde durch ihr Limit abgebrochen:", oneShot: "_Dieses Modell kann keine Tools aufrufen: Antwort in einem Schritt aus den vorher gesammelten Belegen._",
		tool: "Tool", args: "Argumente", result: "Ergebnis",
		calls: "Tool-Aufrufe", stoppedShort: "durch das Limit beendet:",
		headings: [4]string{"Was passiert", "Wahrscheinliche Ursachen", "Was zu prüfen ist", "Wie es zu beheben ist"},
	},
	"fr": {
		explanation: "Explication IA", steps: "Enquête IA : étapes",
		stopped: "⚠ L'enquête a été interrompue par sa limite de", oneShot: "_Ce modèle ne sait pas appeler d'outils : réponse en une fois à partir des éléments déjà collectés._",
		tool: "outil", args: "arguments", result: "résultat",
		calls: "appels d'outils", stoppedShort: "arrêtée par sa limite de",
		headings: [4]string{"Ce qui se passe", "Causes probables", "Quoi vérifier", "Comment corriger"},
	},
	"es": {
		explanation: "Explicación de IA", steps: "Investigación de IA: pasos",
		stopped: "⚠ La investigación se interrumpió por su límite de", oneShot: "_Este modelo no puede llamar herramientas: respuesta en un paso con la evidencia reunida antes._",
		tool: "herramienta", args: "argumentos", result: "resultado",
		calls: "llamadas a herramientas", stoppedShort: "detenida por su límite de",
		headings: [4]string{"Qué está pasando", "Causas probables", "Qué revisar", "Cómo arreglarlo"},
	},
	"ja": {
		explanation: "AI による説明", steps: "AI 調査の手順",
		stopped: "⚠ 調査は上限により打ち切られました:", oneShot: "_このモデルはツールを呼び出せないため、事前に集めた証拠から一度で回答しました。_",
		tool: "ツール", args: "引数", result: "結果",
		calls: "回のツール呼び出し", stoppedShort: "上限で停止:",
		headings: [4]string{"何が起きているか", "考えられる原因", "確認すること", "直し方"},
	},
	"zh": {
		explanation: "AI 解释", steps: "AI 调查步骤",
		stopped: "⚠ 调查因达到上限而提前结束：", oneShot: "_该模型不支持调用工具：根据事先收集的证据一次性回答。_",
		tool: "工具", args: "参数", result: "结果",
		calls: "次工具调用", stoppedShort: "因上限停止：",
		headings: [4]string{"发生了什么", "可能原因", "需要检查", "如何修复"},
	},
}

// localized returns medic's words for a language tag ("de", "zh-CN",
// "pt-BR"): the exact tag, then its base language, else English.
func localized(lang string) texts {
	l := strings.ToLower(strings.TrimSpace(lang))
	if t, ok := translations[l]; ok {
		return t
	}
	base, _, _ := strings.Cut(l, "-")
	if t, ok := translations[base]; ok {
		return t
	}
	return english
}

// Languages lists the languages medic's own headings are translated into;
// any other language still gets answers in it, with English headings
// around them.
func Languages() []string { return []string{"de", "es", "fr", "ja", "zh"} }

// Enrichments renders a result for the finding: the explanation as the
// one-shot answer is rendered (the runbooks it cites as numbered links, the
// model, what was redacted), with the loop's own line (tool calls, the limit
// that stopped it), then the transcript as a table, which the file sink and
// the finding page show whole.
func Enrichments(res Result, language string) []event.Enrichment {
	t := localized(language)
	tr := res.Transcript
	expl := answerOf(res).Enrichment()
	expl.Title = t.explanation
	if line := loopLine(tr, t); line != "" {
		expl.Blocks = append(expl.Blocks, event.MarkdownBlock("_"+line+"_"))
	}
	out := []event.Enrichment{expl}
	if len(tr.Steps) > 0 {
		rows := make([][]string, len(tr.Steps))
		for i, s := range tr.Steps {
			rows[i] = []string{strconv.Itoa(s.Turn), s.Tool, clip(s.Args, 300), s.Summary}
		}
		// Collapsed: chat messages show the summary line, the file sink
		// and the finding page the whole table.
		out = append(out, event.Enrichment{Title: t.steps, Source: rag.ExplanationSource, Collapsed: true, Blocks: []event.Block{
			event.MarkdownBlock(stepsSummary(tr, t)),
			{Kind: event.BlockTable, Table: &event.TableBlock{Headers: []string{"#", t.tool, t.args, t.result}, Rows: rows}},
		}})
	}
	return out
}

// answerOf is a result as the answer function returns it.
func answerOf(res Result) rag.Answer {
	tr := res.Transcript
	a := rag.Answer{Text: res.Answer, Redacted: tr.Redacted, Model: tr.Model, PromptTokens: tr.PromptTokens, OutputTokens: tr.OutputTokens}
	for i, r := range citedOrAll(tr.Runbooks) {
		a.Citations = append(a.Citations, rag.Citation{N: i + 1, Source: r.Source, Title: r.Title, URL: r.URL})
	}
	return a
}

func citedOrAll(rbs []Runbook) []Runbook {
	var cited []Runbook
	for _, r := range rbs {
		if r.Cited {
			cited = append(cited, r)
		}
	}
	if len(cited) > 0 {
		return cited
	}
	return rbs
}

// stepsSummary is the transcript in one line: how many calls, and each
// tool with how often it was called, in the order first called.
func stepsSummary(tr Transcript, t texts) string {
	var order []string
	count := map[string]int{}
	for _, st := range tr.Steps {
		if count[st.Tool] == 0 {
			order = append(order, st.Tool)
		}
		count[st.Tool]++
	}
	parts := make([]string, len(order))
	for i, name := range order {
		parts[i] = "`" + name + "`"
		if n := count[name]; n > 1 {
			parts[i] += fmt.Sprintf(" ×%d", n)
		}
	}
	return fmt.Sprintf("%d %s: %s", len(tr.Steps), t.calls, strings.Join(parts, ", "))
}

// loopLine says what the loop did: the calls, and the limit that cut it
// short; empty for a one-shot answer (which says so in its text).
func loopLine(tr Transcript, t texts) string {
	if tr.Fallback != "" {
		return ""
	}
	line := fmt.Sprintf("%d %s", len(tr.Steps), t.calls)
	if tr.Stopped != "" {
		line += " · " + t.stoppedShort + " " + tr.Stopped
	}
	return line
}

// CompactTranscript is the transcript in a few lines, for answers shown as
// text (the Slack button's reply, medic ask): one line per call.
func CompactTranscript(tr Transcript) string {
	if len(tr.Steps) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("_Investigated:_\n")
	for _, s := range tr.Steps {
		fmt.Fprintf(&b, "• `%s` %s → %s\n", s.Tool, clip(s.Args, 80), clip(s.Summary, 100))
	}
	fmt.Fprintf(&b, "_%s_", loopLine(tr, english))
	return b.String()
}
