// Package preview computes what merging a ref would do to the cluster (docs/design.md,
// Previews): the plan diff of the ref's head against the Instances the cluster runs now, and
// per instance the objects its plan would apply, delete or prune with server-side dry-run
// diffs. It renders the report as a pull-request comment and runs previews on a queue of
// their own, so they never delay plans. Nothing here writes to the cluster.
package preview

import (
	"fmt"
	"strings"

	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/planner"
)

// Report is what merging a ref would do to the cluster: the plan diff of the ref's head
// against what the cluster runs now (the Instances, not the base branch), and per instance
// the objects its plan would apply, delete or prune, each with a server-side dry-run diff.
type Report struct {
	Repository string
	Ref        string
	SHA        string
	// Decisions per instance, sorted.
	Decisions []planner.Decision
	// Changes holds each changing instance's objects, by key.
	Changes map[string][]applier.ObjectChange
	// Failures holds why an instance's plan cannot run (render or dry-run error), by key.
	Failures map[string]string
	// Held is set when the commit would remove every instance.
	Held error
	// Encrypted lists encrypted files no key could be given for: "FILE: encrypted, key not
	// available" (`kudod preview` without a key).
	Encrypted []string
	// masker keeps sensitive values out of every line of the report.
	masker *mask.Masker
}

// Valid reports whether the change can be merged: nothing rejected, everything renders.
func (r *Report) Valid() bool {
	if r.Held != nil || len(r.Failures) > 0 {
		return false
	}
	for _, d := range r.Decisions {
		if d.Action == planner.ActionRejected {
			return false
		}
	}
	return true
}

// Summary is one line: "3 instances: 2 update, 1 deploy", or why the change is not valid.
func (r *Report) Summary() string {
	if r.Held != nil {
		return r.Held.Error()
	}
	counts := map[planner.Action]int{}
	n := 0
	for _, d := range r.Decisions {
		if d.Action == planner.ActionNone {
			continue
		}
		n++
		counts[d.Action]++
	}
	if n == 0 {
		return "no instance changes"
	}
	var parts []string
	for _, a := range []planner.Action{planner.ActionRejected, planner.ActionDeploy, planner.ActionUpdate, planner.ActionUpgrade, planner.ActionCleanup} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	if f := len(r.Failures); f > 0 {
		parts = append([]string{fmt.Sprintf("%d cannot run", f)}, parts...)
	}
	word := "instances"
	if n == 1 {
		word = "instance"
	}
	return fmt.Sprintf("%d %s: %s", n, word, strings.Join(parts, ", "))
}

// FirstProblem is the first reason the change is not valid, for a commit status.
func (r *Report) FirstProblem() string {
	if r.Held != nil {
		return r.Held.Error()
	}
	for _, d := range r.Decisions {
		if d.Action == planner.ActionRejected {
			return d.Key() + ": " + r.mask(d.Error)
		}
		if f, ok := r.Failures[d.Key()]; ok {
			return d.Key() + ": " + r.mask(f)
		}
	}
	return ""
}

// mask replaces sensitive values, in any of their forms, with <sensitive> (docs/secrets.md).
func (r *Report) mask(s string) string { return r.masker.Mask(s) }
