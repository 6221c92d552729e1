package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

func newPlanCommand(s streams) *cobra.Command {
	var (
		repo, from, to, path, output string
		allowEmpty, noPrune          bool
	)
	cmd := &cobra.Command{
		Use:   "plan --repo DIR|URL --from REV --to REV",
		Short: "Show which plan each instance runs between two commits, and why",
		Long: `Compare two commits of a repository and print, per instance, the action (deploy, update,
upgrade, cleanup, none, rejected), the plan that runs and the reasons.

Exit status: 0 nothing to do, 1 plans to run, 2 a change is rejected or the command failed.
With -o json, stdout is always the JSON, whatever the exit status. An empty --from means
every instance is new. REV is a commit SHA, a branch or tag name, or (for a local
directory) any revision git understands, such as HEAD~1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return exitCode(2, fmt.Errorf("unknown output format %q (text, json)", output))
			}
			fail := func(err error) error {
				if output == "json" {
					_ = json.NewEncoder(s.Out).Encode(planner.Result{Decisions: []planner.Decision{}})
				}
				return exitCode(2, err)
			}
			if repo == "" || to == "" {
				return fail(errors.New("--repo and --to are required"))
			}
			read, closeRepo, err := openRevisions(cmd.Context(), repo)
			if err != nil {
				return fail(err)
			}
			defer closeRepo()
			cache := manifests.NewPackageCache()
			// The second index reuses what the first parsed from files the commits share.
			index := func(rev string, previous *manifests.Index) (*manifests.Index, error) {
				snap, err := read(cmd.Context(), rev)
				if err != nil {
					return nil, err
				}
				idx, err := manifests.IndexRepository(snap.FS, manifests.IndexOptions{Path: path, Cache: cache, Previous: previous})
				if err != nil {
					return nil, fmt.Errorf("%s at %s: %w", repo, rev, err)
				}
				return idx, nil
			}
			var old *manifests.Index
			if from != "" {
				if old, err = index(from, nil); err != nil {
					return fail(err)
				}
			}
			idx, err := index(to, old)
			if err != nil {
				return fail(err)
			}
			for _, f := range idx.Findings.Errors() {
				fmt.Fprintf(s.Err, "%s: %s\n", to, f)
			}
			res := planner.Diff(planner.FromIndex(old), planner.FromIndex(idx), planner.Options{AllowEmpty: allowEmpty, NoPrune: noPrune})
			if res.Decisions == nil {
				res.Decisions = []planner.Decision{}
			}
			if output == "json" {
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return exitCode(2, err)
				}
			} else {
				printPlan(s.Out, res)
			}
			switch {
			case res.Held != nil || res.HasRejections():
				return exitCode(2, nil)
			case res.HasChanges():
				return exitCode(1, nil)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&repo, "repo", "", "a local git repository (work tree or bare) or a URL")
	f.StringVar(&from, "from", "", "the older revision (empty: every instance is new)")
	f.StringVar(&to, "to", "", "the newer revision")
	f.StringVar(&path, "path", ".", "the folder of the repository whose instances count")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&allowEmpty, "allow-empty", false, "let the newer revision remove every instance")
	f.BoolVar(&noPrune, "no-prune", false, "report removed instances instead of cleaning them up")
	return cmd
}

// openRevisions opens a repository to read snapshots of revisions: a local directory in
// place, a URL through a temporary clone.
func openRevisions(ctx context.Context, repo string) (func(context.Context, string) (sources.Snapshot, error), func(), error) {
	if fi, err := os.Stat(repo); err == nil && fi.IsDir() {
		r, err := sources.Open(repo)
		if err != nil {
			return nil, nil, err
		}
		return r.SnapshotAt, func() { _ = r.Close() }, nil
	}
	dir, err := os.MkdirTemp("", "kudod-plan-")
	if err != nil {
		return nil, nil, err
	}
	src, err := sources.New(sources.Options{Name: "repo", URL: repo, CacheDir: dir})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	closeRepo := func() { _ = src.Close(); _ = os.RemoveAll(dir) }
	read := func(ctx context.Context, rev string) (sources.Snapshot, error) {
		if snap, err := src.SnapshotAt(ctx, rev); err == nil {
			return snap, nil
		}
		switch {
		case strings.HasPrefix(rev, "refs/"):
			return src.Fetch(ctx, sources.Ref{Name: rev})
		case commitish.MatchString(rev):
			// A commit: fetch the default branch, which should contain it.
			if _, err := src.Fetch(ctx, sources.Ref{}); err != nil {
				return sources.Snapshot{}, err
			}
			return src.SnapshotAt(ctx, rev)
		}
		snap, err := src.Fetch(ctx, sources.Ref{Branch: rev})
		if errors.Is(err, sources.ErrRefNotFound) {
			return src.Fetch(ctx, sources.Ref{Tag: rev})
		}
		return snap, err
	}
	return read, closeRepo, nil
}

// commitish matches what can only be a commit SHA (abbreviated or full).
var commitish = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

// printPlan writes one block per instance that changes or is rejected, then a summary.
func printPlan(w io.Writer, res planner.Result) {
	counts := map[planner.Action]int{}
	for _, d := range res.Decisions {
		counts[d.Action]++
		if d.Action == planner.ActionNone {
			continue
		}
		switch d.Action {
		case planner.ActionRejected:
			fmt.Fprintf(w, "%s: rejected\n  error: %s\n", d.Key(), d.Error)
		default:
			plan := d.Plan
			if plan == "" {
				plan = "(none: objects are deleted)"
			}
			fmt.Fprintf(w, "%s: %s, plan %s\n", d.Key(), d.Action, plan)
		}
		for _, r := range d.Reasons {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	}
	if res.Held != nil {
		fmt.Fprintf(w, "held: %v\n", res.Held)
	}
	var parts []string
	for _, a := range []planner.Action{planner.ActionDeploy, planner.ActionUpdate, planner.ActionUpgrade, planner.ActionCleanup, planner.ActionRejected, planner.ActionNone} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no instances"}
	}
	fmt.Fprintf(w, "%d instances: %s\n", len(res.Decisions), strings.Join(parts, ", "))
}
