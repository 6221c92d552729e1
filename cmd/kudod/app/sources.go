package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// defaultDaemonNamespace is where the daemon keeps its lease and the repositories' status
// (its --leader-election-namespace).
const defaultDaemonNamespace = "kudod-system"

func printSources(ctx context.Context, s streams, c client.Client, daemonNamespace, output string) error {
	var list corev1.ConfigMapList
	if err := c.List(ctx, &list, client.InNamespace(daemonNamespace), client.MatchingLabels{v1alpha1.LabelSourceStatus: "true"}); err != nil {
		return fmt.Errorf("list repository status in %s: %w", daemonNamespace, err)
	}
	var out []v1alpha1.SourceStatus
	for i := range list.Items {
		out = append(out, v1alpha1.ParseSourceStatus(&list.Items[i]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Repository < out[j].Repository })
	switch output {
	case "json":
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"sources": nonNil(out)})
	case "yaml":
		b, err := sigsyaml.Marshal(map[string]any{"sources": nonNil(out)})
		if err != nil {
			return err
		}
		_, err = s.Out.Write(b)
		return err
	}
	if len(out) == 0 {
		fmt.Fprintf(s.Out, "No repository status in namespace %s: is the daemon running?\n", daemonNamespace)
		return nil
	}
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tREF\tREVISION\tLAST POLL\tNEXT POLL\tLAST ERROR")
	now := time.Now()
	for _, st := range out {
		errText := st.LastError
		if errText == "" {
			errText = "-"
		}
		rev := st.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev == "" {
			rev = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Repository, st.Ref, rev, ago(now, st.LastPoll), until(now, st.NextPoll, st.Interval), errText)
	}
	return tw.Flush()
}

func nonNil(s []v1alpha1.SourceStatus) []v1alpha1.SourceStatus {
	if s == nil {
		return []v1alpha1.SourceStatus{}
	}
	return s
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

// until shows the next poll; a recorded time in the past means the daemon polled since
// without anything changing (it records only changes), so it shows the interval.
func until(now, t time.Time, interval string) string {
	if t.IsZero() {
		return "-"
	}
	if t.Before(now) {
		return "every " + interval
	}
	return "in " + t.Sub(now).Round(time.Second).String()
}
