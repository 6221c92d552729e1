package app

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// lastRunJSON is the last execution of one plan, in `kudod status -o json`.
type lastRunJSON struct {
	Plan       string    `json:"plan"`
	Outcome    string    `json:"outcome"`
	Trigger    string    `json:"trigger"`
	Revision   string    `json:"revision,omitempty"`
	FinishTime time.Time `json:"finishTime"`
	Message    string    `json:"message,omitempty"`
}

// lastRuns is the last ended execution of each plan, from the history, by plan name.
func lastRuns(in *v1alpha1.Instance) []lastRunJSON {
	last := map[string]v1alpha1.HistoryEntry{}
	for _, e := range in.Status.History {
		last[e.Plan] = e
	}
	out := make([]lastRunJSON, 0, len(last))
	for _, e := range last {
		out = append(out, lastRunJSON{Plan: e.Plan, Outcome: string(e.Outcome), Trigger: triggerCell(e.Trigger, e.Schedule, e.User), Revision: e.Revision, FinishTime: e.FinishTime.UTC(), Message: e.Message})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Plan < out[j].Plan })
	return out
}

// lastRunsText lists under a plan tree how each plan's last execution ended.
func lastRunsText(in *v1alpha1.Instance) string {
	runs := lastRuns(in)
	if len(runs) == 0 {
		return ""
	}
	rows := make([][]string, 0, len(runs))
	for _, r := range runs {
		rows = append(rows, []string{"  " + r.Plan, r.Outcome, r.Trigger, orDash(v1alpha1.ShortRevision(r.Revision)), r.FinishTime.Format("2006-01-02 15:04:05"), oneLine(r.Message)})
	}
	var b strings.Builder
	b.WriteString("Last run of each plan (kudod history " + in.Name + " -n " + in.Namespace + "):\n")
	_ = writeTable(&b, rows)
	return b.String()
}

// rolledBackNote marks a table row whose instance was rolled back: out of sync with git.
func rolledBackNote(in *v1alpha1.Instance) string {
	if m := in.Status.RolledBack; m != nil {
		return fmt.Sprintf(" (rolled back from %s)", v1alpha1.ShortRevision(m.Revision))
	}
	return ""
}

// rolledBackHead is the plan tree head's note of a rollback.
func rolledBackHead(in *v1alpha1.Instance) string {
	m := in.Status.RolledBack
	if m == nil {
		return ""
	}
	return fmt.Sprintf(" [OUT OF SYNC: %s rolled back to %s; git's %s is not applied until git changes the instance]", v1alpha1.ShortRevision(m.Revision), v1alpha1.ShortRevision(m.To), v1alpha1.ShortRevision(m.Revision))
}
