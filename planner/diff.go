package planner

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/kudod-dev/kudod/manifests"
)

// Side is one side of a diff: the instances a commit (or the cluster) holds.
type Side struct {
	// Instances that are valid, by key.
	Instances map[string]*State
	// Invalid instances, by key: their identity is known, their content is not acceptable.
	Invalid map[string]string
	// BrokenFiles are files that could not be read, with why: instances the other side
	// declared in them are rejected, never treated as removed.
	BrokenFiles map[string]string
	// Encrypted are SOPS-encrypted files read without a key (`kudod plan` without one), with
	// why: what they declare is not known, so nothing is decided about it.
	Encrypted map[string]string
	// Held are repository findings (FILE:LINE: MESSAGE) that hold the whole commit when they
	// are on the new side: unreadable files, instances declared twice (HeldError).
	Held []string
}

// FromIndex builds a Side from a repository index.
func FromIndex(idx *manifests.Index) Side {
	s := Side{Instances: map[string]*State{}, Invalid: map[string]string{}, BrokenFiles: map[string]string{}}
	if idx == nil {
		return s
	}
	for _, in := range idx.Instances {
		s.Instances[in.Key()] = StateOf(in)
	}
	for key, fs := range idx.InvalidFindings {
		s.Invalid[key] = fs.Errors().Error()
	}
	for file, fs := range idx.BrokenFiles {
		s.BrokenFiles[file] = fs.Errors().Error()
	}
	if len(idx.Encrypted) > 0 {
		s.Encrypted = map[string]string{}
		for file, why := range idx.Encrypted {
			s.Encrypted[file] = why
		}
	}
	for _, f := range idx.Held {
		s.Held = append(s.Held, f.Error())
	}
	return s
}

// StateOf is the planner's view of an instance from git.
func StateOf(in *manifests.Instance) *State {
	return &State{
		Namespace:      in.Namespace,
		Name:           in.Name,
		Package:        in.Package,
		Parameters:     in.StoredParameters(),
		ParametersFrom: in.ParametersFrom,
		File:           in.File,
		Suspend:        in.Suspend,
		Instance:       in,
		DependsOn:      in.DependsOn,
		Approval:       in.Approval,
		Windows:        in.Windows,
	}
}

// Options tune Diff with the repository's settings (prune, allowEmpty: docs/configuration.md).
type Options struct {
	// AllowEmpty lets a commit remove every instance of the repository.
	AllowEmpty bool
	// NoPrune turns removals into reports: removed instances are left as they are.
	NoPrune bool
}

// ErrEmptyCommit holds a commit that would remove every instance (an emptied branch, a wrong path).
var ErrEmptyCommit = errors.New("the commit removes every instance of the repository; held (set allowEmpty: true to allow it)")

// Result is the plan diff: one decision per instance on either side, sorted by key.
type Result struct {
	Decisions []Decision `json:"decisions"`
	// Held is set when the whole commit is held (ErrEmptyCommit); every decision is then rejected.
	Held error `json:"-"`
	// Encrypted lists the newer side's encrypted files that could not be read for want of a
	// key: "FILE: encrypted, key not available".
	Encrypted []string `json:"encrypted,omitempty"`
}

// HasChanges reports whether any decision runs a plan or removes an instance.
func (r *Result) HasChanges() bool {
	for i := range r.Decisions {
		if r.Decisions[i].Changes() {
			return true
		}
	}
	return false
}

// HasRejections reports whether any decision is rejected.
func (r *Result) HasRejections() bool {
	for i := range r.Decisions {
		if r.Decisions[i].Action == ActionRejected {
			return true
		}
	}
	return false
}

// Decision returns the decision for a key, or nil.
func (r *Result) Decision(key string) *Decision {
	for i := range r.Decisions {
		if r.Decisions[i].Key() == key {
			return &r.Decisions[i]
		}
	}
	return nil
}

// Diff decides, for every instance of either side, which plan the change from old to new runs.
func Diff(old, new Side, opts Options) Result {
	keys := map[string]bool{}
	for k := range old.Instances {
		keys[k] = true
	}
	for k := range new.Instances {
		keys[k] = true
	}
	for k := range new.Invalid {
		keys[k] = true
	}
	sorted := slices.Sorted(maps.Keys(keys))

	var res Result
	removed := 0
	for _, k := range sorted {
		o, n := old.Instances[k], new.Instances[k]
		switch {
		case n == nil && new.Invalid[k] != "":
			res.Decisions = append(res.Decisions, rejectedInvalid(k, o, new.Invalid[k]))
		case n == nil && o != nil && new.Encrypted[o.File] != "":
			d := Decision{Namespace: o.Namespace, Instance: o.Name, Old: o, Action: ActionNone, Reasons: []string{o.File + ": " + new.Encrypted[o.File]}}
			res.Decisions = append(res.Decisions, d)
		case n == nil && o != nil && new.BrokenFiles[o.File] != "":
			// The file no longer parses: the instance may well still be in it. Broken files are
			// rejected, never removed (docs/design.md, Plan selection).
			d := Decision{Namespace: o.Namespace, Instance: o.Name, Old: o, Reasons: []string{}}
			res.Decisions = append(res.Decisions, reject(d, fmt.Sprintf("%s cannot be read: %s", o.File, new.BrokenFiles[o.File])))
		case n == nil:
			removed++
			d := Decide(o, nil)
			if opts.NoPrune {
				d.Action = ActionNone
				d.Plan = ""
				d.Reasons = []string{"instance removed from git; not cleaned up because the repository sets prune: false"}
			}
			res.Decisions = append(res.Decisions, d)
		default:
			res.Decisions = append(res.Decisions, Decide(o, n))
		}
	}
	for file, why := range new.Encrypted {
		res.Encrypted = append(res.Encrypted, file+": "+why)
	}
	sort.Strings(res.Encrypted)
	if removed > 0 && removed == len(old.Instances) && len(new.Instances) == 0 && len(new.Invalid) == 0 && len(new.BrokenFiles) == 0 && len(new.Encrypted) == 0 && !opts.AllowEmpty {
		res.Held = ErrEmptyCommit
		for i := range res.Decisions {
			res.Decisions[i] = reject(res.Decisions[i], ErrEmptyCommit.Error())
		}
	}
	if len(new.Held) > 0 {
		// Every change is rejected; an instance the commit does not change stays "none", and
		// one rejected already keeps its own reason.
		res.Held = &HeldError{Findings: new.Held}
		for i := range res.Decisions {
			if res.Decisions[i].Changes() {
				res.Decisions[i] = reject(res.Decisions[i], res.Held.Error())
			}
		}
	}
	return res
}

func rejectedInvalid(key string, old *State, why string) Decision {
	ns, name, _ := strings.Cut(key, "/")
	d := Decision{Namespace: ns, Instance: name, Old: old, Reasons: []string{}}
	return reject(d, why)
}
