package app

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// historyJSON is `kudod history -o json` (docs/cli.md): scripts depend on every field.
type historyJSON struct {
	Namespace string                  `json:"namespace"`
	Name      string                  `json:"name"`
	History   []v1alpha1.HistoryEntry `json:"history"`
	// Running is the plan running now, if any.
	Running *v1alpha1.ActivePlan `json:"running"`
}

func newHistoryCommand(s streams) *cobra.Command {
	var (
		kf     kubeFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "history INSTANCE",
		Short: "List an instance's last plan executions: trigger, commit, times, outcome",
		Long: `List the executions of an instance's plans that ended, oldest first, as the daemon keeps them in
the Instance's status (the last 20 by default, the daemon's --history-limit), and the plan
running now: plan, trigger and who asked, commit, start, duration, outcome (completed,
failed, aborted, superseded), plan-scoped parameters (sensitive values masked) and message
(docs/recovery.md, History).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "", "text", "json":
			default:
				return exitCode(2, fmt.Errorf("unknown output format %q (text, json)", output))
			}
			_, _, inst, err := kf.instance(cmd.Context(), args[0])
			if err != nil {
				return exitCode(2, err)
			}
			if output == "json" {
				doc := historyJSON{Namespace: inst.Namespace, Name: inst.Name, History: inst.Status.History, Running: inst.Status.ActivePlan}
				if doc.History == nil {
					doc.History = []v1alpha1.HistoryEntry{}
				}
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(doc)
			}
			return printHistory(s.Out, inst, time.Now())
		},
	}
	kf.add(cmd.Flags(), true)
	cmd.ValidArgsFunction = completeInstances(&kf)
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: text or json")
	return cmd
}

// printHistory prints the history as a table, the running plan last.
func printHistory(w io.Writer, inst *v1alpha1.Instance, now time.Time) error {
	if len(inst.Status.History) == 0 && inst.Status.ActivePlan == nil {
		_, err := fmt.Fprintf(w, "No plan of %s/%s has run yet.\n", inst.Namespace, inst.Name)
		return err
	}
	rows := [][]string{{"PLAN", "TRIGGER", "REVISION", "STARTED", "DURATION", "OUTCOME", "PARAMETERS", "MESSAGE"}}
	for _, e := range inst.Status.History {
		msg := e.Message
		if e.FailedStep != "" && e.Outcome == v1alpha1.OutcomeFailed && !strings.Contains(msg, e.FailedStep) {
			msg = "step " + e.FailedStep + ": " + msg
		}
		rows = append(rows, []string{e.Plan, triggerCell(e.Trigger, e.Schedule, e.User), orDash(v1alpha1.ShortRevision(e.Revision)),
			e.StartTime.UTC().Format("2006-01-02 15:04:05"), e.FinishTime.Sub(e.StartTime.Time).Round(time.Second).String(),
			string(e.Outcome), paramsCell(e.Parameters), oneLine(msg)})
	}
	if a := inst.Status.ActivePlan; a != nil {
		rows = append(rows, []string{a.Name, triggerCell(a.Trigger, a.Schedule, a.User), orDash(v1alpha1.ShortRevision(a.Revision)),
			a.StartTime.UTC().Format("2006-01-02 15:04:05"), now.Sub(a.StartTime.Time).Round(time.Second).String(),
			"running", paramsCell(a.Parameters), ""})
	}
	return writeTable(w, rows)
}

// triggerCell says what started a plan: "git", "schedule nightly", "retry by alice".
func triggerCell(t v1alpha1.Trigger, schedule, user string) string {
	switch {
	case t == v1alpha1.TriggerSchedule && schedule != "":
		return string(t) + " " + schedule
	case user != "":
		return string(t) + " by " + user
	}
	return string(t)
}

func paramsCell(p map[string]string) string {
	if len(p) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(p))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + oneLine(p[k])
	}
	return strings.Join(parts, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// writeTable prints rows as kubectl does: columns padded by three spaces.
func writeTable(w io.Writer, rows [][]string) error {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-len(c)+3))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
