package instances

import (
	"fmt"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/lanes"
	"github.com/kudod-dev/kudod/internal/parameters"
)

// engineFor returns the engine an instance's plans, prunes, deletions and drift checks run
// with: as the service account the instance, its repository or the daemon names
// (docs/security.md), with its repository's cluster-scope policy and lane. An instance outside
// its repository's lane gets a fatal error and nothing of it runs: the poll never applies such
// an instance, so this guards against an Instance someone else created with the repository's
// label, or one applied before the lane was narrowed.
func (r *Controller) engineFor(inst *v1alpha1.Instance) (*applier.Engine, error) {
	repo := inst.Labels[v1alpha1.LabelRepository]
	p, ok := r.lanes[repo]
	if !ok {
		return nil, &applier.FatalError{Err: fmt.Errorf("refused: this kudod does not follow repository %q", repo)}
	}
	if err := p.Check(inst.Namespace); err != nil {
		return nil, &applier.FatalError{Err: fmt.Errorf("refused: %w", err)}
	}
	t := applier.Tenant{AllowClusterScoped: p.AllowClusterScoped, StrictNamespaces: p.Closed()}
	if sa := p.ServiceAccount(inst); sa != "" {
		t.User = lanes.Username(inst.Namespace, sa)
	}
	return r.engine.For(t)
}

// resolver is the parameter resolver for an instance's plan: parametersFrom is read with the
// rights of the service account the plan impersonates, or else with the daemon's own through
// its direct reader (never the manager's cache, which would watch every Secret).
func (r *Controller) resolver(eng *applier.Engine) *parameters.Resolver {
	if eng == nil || eng.User() == "" {
		return r.params
	}
	res := *r.params
	res.Reader = eng.Reader()
	return &res
}
