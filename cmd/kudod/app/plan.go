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
	"time"

	"github.com/spf13/cobra"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/decrypt"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

func newPlanCommand(s streams) *cobra.Command {
	var (
		from, to, output, configFile, repository string
		ps                                       planSettings
		cluster                                  bool
		kf                                       kubeFlags
		ageKeyFile                               string
		limits                                   limitFlags
	)
	cmd := &cobra.Command{
		Use:   "plan --repo DIR|URL --from REV --to REV",
		Short: "Show which plan each instance runs between two commits, and why",
		Long: `Compare two commits of a repository and print, per instance, the action (deploy, update,
upgrade, cleanup, none, rejected), the plan that runs and the reasons.

Exit status: 0 nothing to do, 1 plans to run, 2 a change is rejected, the commit is held (an
instance file that cannot be read, an instance declared twice) or the command failed.
With -o json, stdout is always the JSON, whatever the exit status. An empty --from means
every instance is new. REV is a commit SHA, a branch or tag name, or (for a local
directory) any revision git understands, such as HEAD~1.

With --config kudod.yaml (and --repository NAME when it lists several), the repository's
settings apply as the daemon applies them: its url (unless --repo is given), path, allowEmpty,
prune, namespaces, approval and windows; an instance outside the repository's namespaces is
rejected.

Instances' spec.dependsOn must name instances that exist: those of the newer revision and,
with --cluster (or --kubeconfig, --context), the Instances in the cluster. A dependency
cycle or a missing dependency rejects the instances concerned. The output shows the order
the plans run in, which wait for approval, and when maintenance windows let them start
(docs/operations.md).

SOPS-encrypted instance files are decrypted with the age keys of --age-key-file,
$SOPS_AGE_KEY_FILE or $SOPS_AGE_KEY; without a key they are listed as "encrypted, key not
available". Sensitive values print as <sensitive>.`,
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
			if configFile != "" {
				if err := ps.fromConfig(cmd, configFile, repository); err != nil {
					return fail(err)
				}
			} else if repository != "" {
				return fail(errors.New("--repository needs --config"))
			}
			repo := ps.repo
			if repo == "" || to == "" {
				return fail(errNoRepo)
			}
			maxFile, err := limits.instanceFileSize()
			if err != nil {
				return fail(err)
			}
			ctx := limits.context(cmd.Context())
			read, closeRepo, err := openRevisions(ctx, repo, ps.auth)
			if err != nil {
				return fail(err)
			}
			defer closeRepo()
			cache := manifests.NewPackageCache()
			ids, err := decrypt.FromEnvironment(ageKeyFile)
			if err != nil {
				return fail(err)
			}
			var decrypter manifests.Decrypter
			if len(ids) > 0 {
				decrypter = decrypt.NewSOPS(ids, "")
			}
			// The second index reuses what the first read from files the commits share.
			index := func(rev string, previous *manifests.Index) (*manifests.Index, error) {
				snap, err := read(ctx, rev)
				if err != nil {
					return nil, err
				}
				idx, err := manifests.IndexRepositoryContext(ctx, snap.FS, manifests.IndexOptions{Path: ps.path, Cache: cache, Decrypter: decrypter, MaxInstanceFileSize: maxFile, RenderLimits: limits.renderLimits(), Previous: previous})
				if err != nil {
					return nil, fmt.Errorf("%s at %s: %w", repo, rev, err)
				}
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("interrupted: %w", context.Cause(ctx))
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
			res := planner.Diff(planner.FromIndex(old), planner.FromIndex(idx), planner.Options{AllowEmpty: ps.allowEmpty, NoPrune: ps.noPrune})
			if ps.lane != nil {
				ps.lane.Refuse(&res)
			}
			deps := planner.DependencyOptions{Where: "this repository", Now: time.Now(), Approval: ps.approval, Windows: ps.windows}
			var outside planner.DependencyGraph
			if cluster || kf.kubeconfig != "" || kf.context != "" {
				if outside, err = clusterDependencies(cmd.Context(), &kf); err != nil {
					return fail(err)
				}
				deps.Where = "this repository or the cluster"
			}
			planner.CheckDependencies(&res, planner.GraphOf(&res, outside), deps)
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
	f.StringVar(&ps.repo, "repo", "", "a local git repository (work tree or bare) or a URL")
	f.StringVar(&from, "from", "", "the older revision (empty: every instance is new)")
	f.StringVar(&to, "to", "", "the newer revision")
	f.StringVar(&ps.path, "path", ".", "the folder of the repository whose instances count")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&ps.allowEmpty, "allow-empty", false, "let the newer revision remove every instance")
	f.BoolVar(&ps.noPrune, "no-prune", false, "report removed instances instead of cleaning them up")
	f.StringVar(&configFile, "config", "", "a kudod.yaml whose repository's settings apply (url, path, allowEmpty, prune, namespaces, approval, windows)")
	f.StringVar(&repository, "repository", "", "the repository of --config to plan (needed when it lists several)")
	f.StringVar(&ps.daemonNamespace, "daemon-namespace", defaultDaemonNamespace, "the daemon's namespace (its --leader-election-namespace), which --config's lanes refuse unless they list it")
	f.BoolVar(&cluster, "cluster", false, "count the cluster's Instances as dependencies that exist (the kubeconfig's context)")
	kf.add(f, false)
	f.StringVar(&ageKeyFile, "age-key-file", "", "age keys that decrypt SOPS-encrypted instance files (default: $SOPS_AGE_KEY_FILE, then $SOPS_AGE_KEY)")
	limits.addRender(f)
	limits.addInstanceFiles(f)
	return cmd
}

// clusterDependencies is the dependency graph of the cluster's Instances, for `kudod plan
// --cluster`: instances of other repositories count as dependencies that exist.
func clusterDependencies(ctx context.Context, kf *kubeFlags) (planner.DependencyGraph, error) {
	c, _, err := kf.client()
	if err != nil {
		return nil, err
	}
	var list v1alpha1.InstanceList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list the cluster's instances: %w", err)
	}
	g := planner.DependencyGraph{}
	for i := range list.Items {
		in := &list.Items[i]
		if in.DeletionTimestamp == nil {
			g[in.Namespace+"/"+in.Name] = planner.RefKeys(in.Spec.DependsOn, in.Namespace)
		}
	}
	return g, nil
}

// openRevisions opens a repository to read snapshots of revisions: a local directory in
// place, a URL through a temporary clone.
func openRevisions(ctx context.Context, repo string, auth sources.Auth) (func(context.Context, string) (sources.Snapshot, error), func(), error) {
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
	src, err := sources.New(sources.Options{Name: "repo", URL: repo, Auth: auth, CacheDir: dir})
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
		printGates(w, d)
	}
	for _, e := range res.Encrypted {
		fmt.Fprintf(w, "%s\n", e)
	}
	printOrder(w, res)
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

// printGates writes when a decision's plan may start: after which plans, with approval, in
// which window (docs/operations.md).
func printGates(w io.Writer, d planner.Decision) {
	if !d.Changes() {
		return
	}
	if len(d.After) > 0 {
		fmt.Fprintf(w, "  after: %s\n", strings.Join(d.After, ", "))
	} else if len(d.DependsOn) > 0 && d.Action != planner.ActionCleanup {
		fmt.Fprintf(w, "  depends on: %s (no plan of theirs in this change)\n", strings.Join(d.DependsOn, ", "))
	}
	if d.NeedsApproval {
		fmt.Fprintf(w, "  approval: needed (kudod approve %s -n %s)\n", d.Instance, d.Namespace)
	}
	if d.Window != nil {
		if d.Window.Open {
			fmt.Fprintln(w, "  window: open now")
		} else {
			fmt.Fprintf(w, "  window: %s\n", d.Window.Message)
		}
	}
}

// printOrder draws the order the changes run in, when some wait for others: one line per
// change, by wave.
func printOrder(w io.Writer, res planner.Result) {
	waves := res.Waves()
	if len(waves) < 2 {
		return
	}
	fmt.Fprintln(w, "order:")
	for i, wave := range waves {
		if i > 0 {
			fmt.Fprintf(w, "  %s↓\n", strings.Repeat(" ", len(fmt.Sprint(i+1))+2))
		}
		for _, key := range wave {
			d := res.Decision(key)
			line := fmt.Sprintf("  %d. %s %s", i+1, key, d.Action)
			if len(d.After) > 0 {
				line += " (after " + strings.Join(d.After, ", ") + ")"
			}
			fmt.Fprintln(w, line)
		}
	}
}
