package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/rag"
)

func newAskCmd() *cobra.Command {
	var (
		configFlag string
		model      string
		maxTokens  int
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   `ask "question"`,
		Short: "Ask the model a question, answered from the knowledge base with numbered citations",
		Long: `Ask a question about your cluster's alerts and runbooks. medic searches the knowledge
base and sends the question and the best runbook excerpts (secrets redacted) to the configured
model (ai.base_url, ai.chat_model), which may search and read more runbooks (and, with a
cluster configured, look at it) through medic's read-only tools, each call printed as it
happens; then the answer and the sources it rests on. With ai.agent.enabled false, or a model
without tool calling, the answer is one-shot and streams.

  medic ask "what should I check when etcd has no leader?"

Without ai.chat_model it says "AI is not configured" and exits with status 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			k, cfg, err := openModel(ctx, configFlag, stderr)
			if err != nil {
				return err
			}
			defer k.Close()
			w := cmd.OutOrStdout()
			inv, err := investigator(ctx, k, cfg, stderr, false)
			if err != nil {
				return err
			}
			if inv != nil { // the investigation: the model searches and reads runbooks (and the cluster) itself
				return runInvestigation(ctx, w, stderr, inv, asJSON, agent.Request{Question: args[0], Model: model, MaxTokens: maxTokens})
			}
			req := rag.Request{Question: args[0], Model: model, MaxTokens: maxTokens}
			if !asJSON {
				req.OnDelta = func(s string) error {
					_, err := io.WriteString(w, s)
					return err
				}
			}
			ans, err := k.Service.Answer(ctx, req)
			if err != nil {
				if !asJSON {
					fmt.Fprintln(w)
				}
				return fmt.Errorf("AI unavailable: %w", err)
			}
			if asJSON {
				return writeJSON(w, ans)
			}
			fmt.Fprint(w, "\n\n")
			if len(ans.Citations) > 0 {
				fmt.Fprintln(w, "Sources:")
				for _, c := range ans.Citations {
					loc := c.Source
					if c.URL != "" {
						loc = c.URL
					}
					fmt.Fprintf(w, "  %s  %s\n", c.Label(), loc)
				}
			}
			notes := []string{"model " + ans.Model}
			if n := ans.Redacted.Total(); n > 0 {
				notes = append(notes, ans.Redacted.String()+" before sending")
			}
			if ans.Cached {
				notes = append(notes, "cached")
			}
			fmt.Fprintf(stderr, "(%s)\n", strings.Join(notes, "; "))
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFlag, "config", "c", "", "configuration file (default: $MEDIC_CONFIG, else ./medic.yaml if present)")
	cmd.Flags().StringVar(&model, "model", "", "chat model (default: ai.chat_model)")
	cmd.Flags().IntVar(&maxTokens, "max-tokens", 0, "bound the answer (default: ai.max_tokens)")
	addJSONFlag(cmd, &asJSON, "print the answer, its citations and what was redacted as JSON")
	return cmd
}
