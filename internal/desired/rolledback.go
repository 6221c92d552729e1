package desired

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/planner"
)

// holdRolledBack keeps a commit that was rolled back from being applied again
// (docs/recovery.md, Rollback): while git asks for what the rolled-back commit asked for —
// the same package and parameters — the decision for the instance is none, with no new state,
// so polls leave the rolled-back spec as it is and previews say why. A commit that asks for
// anything else is planned as usual, against the rolled-back spec.
func (p *Planner) holdRolledBack(ctx context.Context, repository string, existing map[string]*v1alpha1.Instance, res *planner.Result, log logr.Logger) {
	for i := range res.Decisions {
		d := &res.Decisions[i]
		in := existing[d.Key()]
		if in == nil || in.Status.RolledBack == nil || d.New == nil || in.DeletionTimestamp != nil {
			continue
		}
		mark := in.Status.RolledBack
		failed, err := p.Store.InstanceAt(ctx, repository, mark.Revision, in.Namespace, in.Name)
		if err != nil {
			// The commit is gone from git (a force-push): git has moved on.
			log.V(1).Info("the commit rolled back cannot be read; planning as usual", "instance", d.Key(), "error", err.Error())
			continue
		}
		if !planner.SameDesired(planner.StateOf(failed), d.New) {
			continue
		}
		*d = planner.Decision{
			Namespace: d.Namespace, Instance: d.Instance, Action: planner.ActionNone, Old: d.Old,
			Reasons: []string{fmt.Sprintf("commit %s was rolled back to %s: kudod applies it again only once git changes the instance", v1alpha1.ShortRevision(mark.Revision), v1alpha1.ShortRevision(mark.To))},
		}
	}
}
