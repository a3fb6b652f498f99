package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/llm"
)

// maxKeptToolResult bounds each tool result kept in a stored conversation:
// a thread's follow-ups see what was found, not every byte of it again.
const maxKeptToolResult = 2000

// FollowUp continues the conversation about a finding in its chat thread
// ("@medic and what changed?"): history is the conversation so far as
// FollowUp returned it (empty for the first question in the thread), and
// the conversation with this turn is returned to be kept for the next one.
// The first question starts from the finding's evidence and, when ask_ai
// already explained it, from that explanation.
func (in *Investigator) FollowUp(ctx context.Context, f *event.Finding, history []byte, question string) (rag.Answer, []byte, error) {
	req := Request{Finding: f, Question: question}
	if len(history) > 0 {
		if err := json.Unmarshal(history, &req.History); err != nil {
			return rag.Answer{}, nil, fmt.Errorf("the thread's conversation cannot be read: %w", err)
		}
	} else if expl := explanation(f); expl != "" && in.Model != nil && !in.refusedTools(firstNonEmpty(req.Model, in.ModelName)) {
		req.History = []llm.ToolMessage{
			{Role: "system", Content: systemPrompt(in.Language)},
			{Role: "user", Content: firstMessage(Request{Finding: f})},
			{Role: "assistant", Content: expl},
		}
	}
	res, conv, err := in.Investigate(ctx, req)
	if err != nil {
		return rag.Answer{}, nil, err
	}
	a := answerOf(res)
	if steps := CompactTranscript(res.Transcript); steps != "" {
		a.Text += "\n\n" + steps
	}
	if conv == nil { // one-shot: nothing to continue
		return a, nil, nil
	}
	for i := range conv {
		if conv[i].Role == "tool" {
			conv[i].Content, _ = truncate(conv[i].Content, maxKeptToolResult)
		}
	}
	b, err := json.Marshal(conv)
	if err != nil {
		return rag.Answer{}, nil, err
	}
	return a, b, nil
}

// explanation is the text of the finding's AI explanation, if it has one.
func explanation(f *event.Finding) string {
	for _, e := range f.Enrichments {
		if e.Source != rag.ExplanationSource || len(e.Blocks) == 0 || e.Blocks[0].Kind != event.BlockMarkdown {
			continue
		}
		if text := e.Blocks[0].Markdown; !strings.HasPrefix(text, "AI unavailable") && !strings.HasPrefix(text, rag.ErrNotConfigured.Error()) {
			return text
		}
	}
	return ""
}
