package planner

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// Ordering between instances (docs/operations.md, Ordering): an instance's spec.dependsOn
// names instances whose plans go first. A commit is checked as a whole: a cycle, or a
// dependency on an instance that will not exist, rejects the instances concerned (nothing of
// them is written); the others are given the order their plans run in.

// DependencyGraph maps each instance that exists, or will once the commit is applied, to the
// instances it depends on, all as namespace/name.
type DependencyGraph map[string][]string

// RefKey is an instance reference's namespace/name; ns fills in an empty namespace.
func RefKey(ref v1alpha1.InstanceRef, ns string) string {
	if ref.Namespace == "" {
		return ns + "/" + ref.Name
	}
	return ref.Namespace + "/" + ref.Name
}

// RefKeys are the references' namespace/name, in order.
func RefKeys(refs []v1alpha1.InstanceRef, ns string) []string {
	if len(refs) == 0 {
		return nil
	}
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, RefKey(r, ns))
	}
	return out
}

// GraphOf builds the graph of a diff's result: the instances the commit declares, with their
// new dependencies; those it leaves as they are (a rejected change, prune: false), with
// their old ones; and outside, the instances other sources know (other repositories, the
// cluster), for keys the commit does not decide. Instances the commit removes are not in it.
func GraphOf(res *Result, outside DependencyGraph) DependencyGraph {
	g := DependencyGraph{}
	decided := map[string]bool{}
	for i := range res.Decisions {
		d := &res.Decisions[i]
		decided[d.Key()] = true
		switch {
		case d.New != nil:
			g[d.Key()] = RefKeys(d.New.DependsOn, d.Namespace)
		case d.Old != nil && d.Action != ActionCleanup:
			g[d.Key()] = RefKeys(d.Old.DependsOn, d.Namespace)
		}
	}
	for k, deps := range outside {
		if !decided[k] {
			g[k] = deps
		}
	}
	return g
}

// Cycles returns, for each instance on a dependency cycle, a shortest cycle through it as
// the path [it, ..., it].
func (g DependencyGraph) Cycles() map[string][]string {
	out := map[string][]string{}
	for _, scc := range g.components() {
		in := map[string]bool{}
		for _, k := range scc {
			in[k] = true
		}
		for _, k := range scc {
			if c := g.shortestCycle(k, in); c != nil {
				out[k] = c
			}
		}
	}
	return out
}

// components returns the strongly connected components of g with more than one instance,
// or one that depends on itself (Tarjan's algorithm, iterating nodes and edges in sorted
// order so the result does not depend on map order).
func (g DependencyGraph) components() [][]string {
	keys := slices.Sorted(maps.Keys(g))
	index, low := map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var out [][]string
	next := 0
	var visit func(k string)
	visit = func(k string) {
		index[k], low[k] = next, next
		next++
		stack = append(stack, k)
		onStack[k] = true
		for _, d := range g.sorted(k) {
			if _, known := g[d]; !known {
				continue
			}
			if _, seen := index[d]; !seen {
				visit(d)
				low[k] = min(low[k], low[d])
			} else if onStack[d] {
				low[k] = min(low[k], index[d])
			}
		}
		if low[k] != index[k] {
			return
		}
		var scc []string
		for {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[top] = false
			scc = append(scc, top)
			if top == k {
				break
			}
		}
		if len(scc) > 1 || g.dependsOnItself(k) {
			sort.Strings(scc)
			out = append(out, scc)
		}
	}
	for _, k := range keys {
		if _, seen := index[k]; !seen {
			visit(k)
		}
	}
	return out
}

func (g DependencyGraph) dependsOnItself(k string) bool {
	for _, d := range g[k] {
		if d == k {
			return true
		}
	}
	return false
}

func (g DependencyGraph) sorted(k string) []string {
	deps := append([]string(nil), g[k]...)
	sort.Strings(deps)
	return deps
}

// shortestCycle finds a shortest path from k back to k through the instances in scc
// (breadth first).
func (g DependencyGraph) shortestCycle(k string, scc map[string]bool) []string {
	prev := map[string]string{}
	queue := []string{k}
	seen := map[string]bool{}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, d := range g.sorted(cur) {
			if !scc[d] {
				continue
			}
			if d == k {
				path := []string{k}
				for at := cur; at != k; at = prev[at] {
					path = append(path, at)
				}
				path = append(path, k)
				// path is k, then the instances back to k in reverse: put them in dependency order.
				for i, j := 1, len(path)-2; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return path
			}
			if !seen[d] {
				seen[d] = true
				prev[d] = cur
				queue = append(queue, d)
			}
		}
	}
	return nil
}

// DependencyOptions tune CheckDependencies.
type DependencyOptions struct {
	// Where says where missing instances were looked for, in messages: "any repository kudod
	// follows", "this repository".
	Where string
	// Approval and Windows are the repository's defaults (docs/configuration.md).
	Approval *v1alpha1.Approval
	Windows  []v1alpha1.Window
	// Now is the moment windows are evaluated at (zero: windows are not evaluated).
	Now time.Time
}

// CheckDependencies rejects the decisions of instances on a dependency cycle or depending on
// an instance that will not exist, then gives every change its order, the changes it runs
// after, whether it needs approval and what its windows say. g is GraphOf(res, ...).
func CheckDependencies(res *Result, g DependencyGraph, opts DependencyOptions) {
	if opts.Where == "" {
		opts.Where = "any repository kudod follows"
	}
	byKey := map[string]*Decision{}
	for i := range res.Decisions {
		byKey[res.Decisions[i].Key()] = &res.Decisions[i]
	}
	cycles := g.Cycles()
	for i := range res.Decisions {
		d := &res.Decisions[i]
		if c := cycles[d.Key()]; c != nil && d.New != nil && d.Action != ActionRejected {
			*d = reject(*d, "spec.dependsOn: dependency cycle: "+strings.Join(c, " → "))
		}
	}
	// A rejected new instance does not exist, so what depends on it is rejected too: repeat
	// until nothing changes.
	for changed := true; changed; {
		changed = false
		for i := range res.Decisions {
			d := &res.Decisions[i]
			if d.New == nil || d.Action == ActionRejected {
				continue
			}
			for _, dep := range RefKeys(d.New.DependsOn, d.Namespace) {
				if why := missingDependency(dep, byKey, g, opts.Where); why != "" {
					*d = reject(*d, fmt.Sprintf("spec.dependsOn: %s %s", dep, why))
					changed = true
					break
				}
			}
		}
	}
	order(res, byKey)
	for i := range res.Decisions {
		d := &res.Decisions[i]
		s := d.New
		if s == nil {
			s = d.Old
		}
		if s == nil {
			continue
		}
		d.DependsOn = RefKeys(s.DependsOn, d.Namespace)
		if !d.Changes() {
			continue
		}
		d.NeedsApproval = NeedsApproval(d.Plan, s.Approval, opts.Approval)
		if ws := EffectiveWindows(s.Windows, opts.Windows); len(ws) > 0 && !opts.Now.IsZero() {
			st, _ := Windows(ws, false, opts.Now)
			info := &WindowInfo{Open: st.Open, Message: st.Message}
			if !st.Next.IsZero() {
				next := st.Next
				info.Next = &next
			}
			d.Window = info
		}
	}
}

// missingDependency says why a dependency will not exist once the commit is applied, or "".
func missingDependency(dep string, byKey map[string]*Decision, g DependencyGraph, where string) string {
	if d, ok := byKey[dep]; ok {
		switch {
		case d.Action == ActionCleanup:
			return "is removed by this commit"
		case d.Action == ActionRejected && d.Old == nil:
			return "is rejected in this commit: " + d.Error
		}
		return ""
	}
	if _, ok := g[dep]; ok {
		return ""
	}
	return "does not exist in " + where
}

// order numbers the changes: a plan runs after the plans of this commit of the instances it
// depends on; a removal runs after the removals of the instances that depend on it (removal
// goes the other way).
func order(res *Result, byKey map[string]*Decision) {
	after := map[string][]string{}
	for i := range res.Decisions {
		d := &res.Decisions[i]
		d.Order, d.After = 0, nil
		if !d.Changes() {
			continue
		}
		if d.Action == ActionCleanup {
			if d.Old == nil {
				continue
			}
			// The removals of instances that depend on this one go first.
			for j := range res.Decisions {
				o := &res.Decisions[j]
				if o.Action != ActionCleanup || o.Old == nil {
					continue
				}
				for _, dep := range RefKeys(o.Old.DependsOn, o.Namespace) {
					if dep == d.Key() {
						after[d.Key()] = append(after[d.Key()], o.Key())
					}
				}
			}
			continue
		}
		for _, dep := range RefKeys(d.New.DependsOn, d.Namespace) {
			if o, ok := byKey[dep]; ok && o.Changes() && o.Action != ActionCleanup {
				after[d.Key()] = append(after[d.Key()], dep)
			}
		}
	}
	levels := map[string]int{}
	var level func(k string, depth int) int
	level = func(k string, depth int) int {
		if l, ok := levels[k]; ok {
			return l
		}
		l := 1
		if depth < len(res.Decisions) { // a cycle left here would be a bug: do not recurse forever
			for _, a := range after[k] {
				l = max(l, level(a, depth+1)+1)
			}
		}
		levels[k] = l
		return l
	}
	for i := range res.Decisions {
		d := &res.Decisions[i]
		if !d.Changes() {
			continue
		}
		d.Order = level(d.Key(), 0)
		if a := after[d.Key()]; len(a) > 0 {
			sort.Strings(a)
			d.After = a
		}
	}
}

// Waves groups the keys of the changes by order: the first wave runs first.
func (r *Result) Waves() [][]string {
	var waves [][]string
	for i := range r.Decisions {
		d := &r.Decisions[i]
		if d.Order == 0 {
			continue
		}
		for len(waves) < d.Order {
			waves = append(waves, nil)
		}
		waves[d.Order-1] = append(waves[d.Order-1], d.Key())
	}
	return waves
}
