package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/sources/manual"
)

// medic dlq: the dead letters of a running medic, through its /api/dlq.

func newDLQCmd() *cobra.Command {
	c := &dlqClient{}
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, replay and purge the dead letters of a running medic",
		Long: `Findings and events that failed every delivery (bus.max_deliver) are kept as
dead letters, with the reason. Once the cause is fixed, replay them: each goes
back to the subject it came from and is delivered once (a sink that already
had a finding does not get it again).`,
		Example: `  medic dlq list                       newest first
  medic dlq list --sink slack --since 2h
  medic dlq show 42                    reason, headers and the finding itself
  medic dlq replay 42                  one dead letter
  medic dlq replay --sink slack        every dead letter of a sink
  medic dlq purge --consumer engine    delete without replaying
  medic dlq purge --yes                delete every dead letter`,
	}
	cmd.PersistentFlags().StringVar(&c.server, "server", envOr("MEDIC_SERVER", "http://127.0.0.1:8080"), "medic's URL ($MEDIC_SERVER)")
	cmd.PersistentFlags().StringVar(&c.token, "token", os.Getenv("MEDIC_TOKEN"), "bearer token when medic requires one ($MEDIC_TOKEN)")
	cmd.PersistentFlags().DurationVar(&c.timeout, "timeout", 30*time.Second, "how long to wait for medic")
	cmd.AddCommand(newDLQListCmd(c), newDLQShowCmd(c), newDLQReplayCmd(c), newDLQPurgeCmd(c))
	return cmd
}

// dlqFilterFlags are the flags that select dead letters.
type dlqFilterFlags struct {
	consumer, sink, subject, since string
}

func (f *dlqFilterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.consumer, "consumer", "", "only those the consumer dead-lettered (engine, sink-<name>, …)")
	cmd.Flags().StringVar(&f.sink, "sink", "", "only findings for this sink")
	cmd.Flags().StringVar(&f.subject, "subject", "", "only those from this subject (NATS wildcards * and >)")
	cmd.Flags().StringVar(&f.since, "since", "", "only those dead-lettered since: RFC 3339 or a duration before now (2h)")
}

func (f *dlqFilterFlags) empty() bool { return *f == dlqFilterFlags{} }

func (f *dlqFilterFlags) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"consumer": f.consumer, "sink": f.sink, "subject": f.subject, "since": f.since} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func newDLQListCmd(c *dlqClient) *cobra.Command {
	var f dlqFilterFlags
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := f.query()
			q.Set("limit", strconv.Itoa(limit))
			var res app.DLQList
			if err := c.do(cmd.Context(), http.MethodGet, "/api/dlq", q, &res); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			return printDLQList(cmd.OutOrStdout(), res)
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many, the newest (0: all)")
	addJSONFlag(cmd, &asJSON, `print {"dead_letters": [...], "limit": N}`)
	return cmd
}

// reasonWidth is how much of a reason the list shows: its end, where an
// error chain says what actually failed; show prints it whole.
const reasonWidth = 80

func printDLQList(w io.Writer, res app.DLQList) error {
	if len(res.DeadLetters) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tDEAD-LETTERED\tCONSUMER\tSUBJECT\tID\tTRIES\tREASON")
	for _, d := range res.DeadLetters {
		id := d.FindingID
		if id == "" {
			id = d.EventID
		}
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.Time.Format(time.RFC3339), d.Consumer, d.Subject, id, d.Deliveries, lastRunes(oneLine(d.Reason, len(d.Reason)), reasonWidth))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	n := len(res.DeadLetters)
	if res.Limit > 0 && n == res.Limit {
		_, err := fmt.Fprintf(w, "the newest %d; there may be more (--limit 0 for all)\n", n)
		return err
	}
	_, err := fmt.Fprintln(w, plural(n, "dead letter"))
	return err
}

func newDLQShowCmd(c *dlqClient) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one dead letter: why, where from, its headers and payload",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseSeq(args[0])
			if err != nil {
				return err
			}
			var d app.DLQDetail
			if err := c.do(cmd.Context(), http.MethodGet, fmt.Sprintf("/api/dlq/%d", seq), nil, &d); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			return printDLQDetail(cmd.OutOrStdout(), d)
		},
	}
	addJSONFlag(cmd, &asJSON, "print the dead letter as JSON, payload included")
	return cmd
}

func printDLQDetail(w io.Writer, d app.DLQDetail) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "dead letter\t%d\n", d.Seq)
	fmt.Fprintf(tw, "dead-lettered\t%s\n", d.Time.Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "consumer\t%s\n", d.Consumer)
	fmt.Fprintf(tw, "from\t%s (stream %s, seq %d)\n", d.Subject, d.Stream, d.StreamSeq)
	if d.Sink != "" {
		fmt.Fprintf(tw, "sink\t%s\n", d.Sink)
	}
	if d.FindingID != "" {
		fmt.Fprintf(tw, "finding\t%s\n", d.FindingID)
	}
	if d.EventID != "" {
		fmt.Fprintf(tw, "event\t%s\n", d.EventID)
	}
	if d.ReplayOf != 0 {
		fmt.Fprintf(tw, "replay of\tdead letter %d\n", d.ReplayOf)
	}
	fmt.Fprintf(tw, "tries\t%d\n", d.Deliveries)
	fmt.Fprintf(tw, "reason\t%s\n", oneLine(d.Reason, len(d.Reason)))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nheaders:")
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range d.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w, "\npayload:")
	switch {
	case len(d.Payload) > 0:
		var buf bytes.Buffer
		if err := json.Indent(&buf, d.Payload, "  ", "  "); err != nil {
			buf.Reset()
			buf.Write(d.Payload)
		}
		fmt.Fprintf(w, "  %s\n", buf.String())
	case len(d.Data) > 0:
		fmt.Fprintf(w, "  (%d bytes, not JSON; --json shows them in base64)\n", len(d.Data))
	default:
		fmt.Fprintln(w, "  (empty)")
	}
	fmt.Fprintf(w, "\nreplay it: medic dlq replay %d\n", d.Seq)
	return nil
}

func newDLQReplayCmd(c *dlqClient) *cobra.Command {
	var f dlqFilterFlags
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "replay [SEQ ...]",
		Short: "Send dead letters back to where they came from, and remove them",
		Long: `Replay publishes each dead letter to its original subject (a finding to its
sink, an event to the engine) and deletes it once that is stored. A sink that
had already delivered the finding does not deliver it again. Give sequences,
a filter, or --all.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			seqs, err := parseSeqs(args)
			if err != nil {
				return err
			}
			res := bus.ReplayResult{Seqs: []uint64{}}
			switch {
			case len(seqs) > 0 && (!f.empty() || all):
				return errors.New("give sequences or a filter (--all), not both")
			case len(seqs) > 0:
				err := eachSeq(seqs, func(seq uint64) error {
					var one bus.ReplayResult
					err := c.do(cmd.Context(), http.MethodPost, fmt.Sprintf("/api/dlq/%d/replay", seq), nil, &one)
					res.Replayed += one.Replayed
					res.Seqs = append(res.Seqs, one.Seqs...)
					return err
				}, func() string { return "replayed " + joinSeqs(res.Seqs) })
				if err != nil {
					return err
				}
			case f.empty() && !all:
				return errors.New("which dead letters? Give sequences (medic dlq list shows them), a filter (--sink, --consumer, --subject, --since), or --all")
			default:
				q := f.query()
				if all {
					q.Set("all", "true")
				}
				if err := c.do(cmd.Context(), http.MethodPost, "/api/dlq/replay", q, &res); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			switch {
			case res.Replayed > 0:
				fmt.Fprintf(w, "replayed %s: %s\n", plural(res.Replayed, "dead letter"), joinSeqs(res.Seqs))
			case len(res.Unread) == 0:
				fmt.Fprintln(w, "nothing to replay")
			}
			if len(res.Unread) > 0 {
				fmt.Fprintf(w, "left %s that no consumer reads any more (a removed sink?): %s; medic dlq purge them\n",
					plural(len(res.Unread), "dead letter"), joinSeqs(res.Unread))
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	addJSONFlag(cmd, &asJSON, `print {"replayed": N, "seqs": [...]}`)
	return cmd
}

func newDLQPurgeCmd(c *dlqClient) *cobra.Command {
	var f dlqFilterFlags
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "purge [SEQ ...]",
		Short: "Delete dead letters without replaying them",
		Long:  "Give sequences, a filter, or --yes to delete every dead letter.",
		RunE: func(cmd *cobra.Command, args []string) error {
			seqs, err := parseSeqs(args)
			if err != nil {
				return err
			}
			var res app.DLQPurged
			switch {
			case len(seqs) > 0 && !f.empty():
				return errors.New("give sequences or a filter, not both")
			case len(seqs) > 0:
				err := eachSeq(seqs, func(seq uint64) error {
					var one app.DLQPurged
					err := c.do(cmd.Context(), http.MethodDelete, fmt.Sprintf("/api/dlq/%d", seq), nil, &one)
					res.Purged += one.Purged
					return err
				}, func() string { return fmt.Sprintf("purged %d", res.Purged) })
				if err != nil {
					return err
				}
			case f.empty() && !yes:
				return errors.New("purge every dead letter? Say --yes, or give sequences or a filter (--sink, --consumer, --subject, --since)")
			default:
				q := f.query()
				if f.empty() {
					q.Set("all", "true")
				}
				if err := c.do(cmd.Context(), http.MethodDelete, "/api/dlq", q, &res); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged %s\n", plural(int(res.Purged), "dead letter"))
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "with no sequence or filter: delete every dead letter")
	addJSONFlag(cmd, &asJSON, `print {"purged": N}`)
	return cmd
}

// dlqClient calls a running medic's /api/dlq.
type dlqClient struct {
	server, token string
	timeout       time.Duration
}

// maxDLQAnswer bounds what is read of an answer: a list of 100 or a
// finding with its evidence.
const maxDLQAnswer = 32 << 20

func (c *dlqClient) do(ctx context.Context, method, path string, q url.Values, out any) error {
	endpoint, err := url.JoinPath(c.server, path)
	if err != nil {
		return fmt.Errorf("building the URL from %q: %w", c.server, err)
	}
	if len(q) > 0 {
		endpoint += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, endpoint, nil)
	if err != nil {
		return fmt.Errorf("creating the request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json") // medic refuses other POSTs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return notListening(c.server)
		}
		return fmt.Errorf("%s %s: %w", method, endpoint, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxDLQAnswer))
	if err != nil {
		return fmt.Errorf("reading medic's answer (%d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(answer))
		if json.Unmarshal(answer, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		apiErr := &manual.APIError{StatusCode: resp.StatusCode, Message: oneLine(msg, 500)}
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("%w\n  medic wants its webhook credentials: --token TOKEN or MEDIC_TOKEN=TOKEN", apiErr)
		}
		return apiErr
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("decoding medic's answer %q: %w", oneLine(string(answer), 200), err)
	}
	return nil
}

func parseSeq(s string) (uint64, error) {
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("%q is not a dead-letter sequence (the SEQ column of medic dlq list)", s)
	}
	return seq, nil
}

func parseSeqs(args []string) ([]uint64, error) {
	seqs := make([]uint64, 0, len(args))
	for _, a := range args {
		seq, err := parseSeq(a)
		if err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	return seqs, nil
}

// eachSeq calls do for each sequence in turn. It stops at the first error
// and, when earlier ones went through, adds what done says was done.
func eachSeq(seqs []uint64, do func(uint64) error, done func() string) error {
	for i, seq := range seqs {
		if err := do(seq); err != nil {
			if i > 0 {
				return fmt.Errorf("%w (%s before it)", err, done())
			}
			return err
		}
	}
	return nil
}

func joinSeqs(seqs []uint64) string {
	s := make([]string, len(seqs))
	for i, seq := range seqs {
		s[i] = strconv.FormatUint(seq, 10)
	}
	return strings.Join(s, " ")
}

// lastRunes keeps the end of s, at most n runes of it.
func lastRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return "…" + string(r[len(r)-n+1:])
	}
	return s
}
