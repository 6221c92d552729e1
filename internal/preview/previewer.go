package preview

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/desired"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/internal/parameters"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

// Previewer computes previews. Give it a dry-run client and an engine on one: it only reads
// the cluster and sends dryRun=All requests.
type Previewer struct {
	// Planner plans the snapshot against the cluster, exactly as a poll would.
	Planner *desired.Planner
	// Engine renders and dry-runs each instance's plan.
	Engine *applier.Engine
	// Params reads the values of parametersFrom (GETs of the API server itself).
	Params *parameters.Resolver
	// Masker learns every sensitive value of the preview and masks the report
	// (docs/secrets.md).
	Masker *mask.Masker
}

// Preview builds the report of a snapshot (a pull request's head) of a repository.
func (p *Previewer) Preview(ctx context.Context, repo desired.Repository, snap sources.Snapshot) (*Report, error) {
	plan, err := p.Planner.Plan(ctx, repo, snap)
	if err != nil {
		return nil, err
	}
	rep := &Report{Repository: repo.Name, Ref: snap.RefName, SHA: snap.Commit, Decisions: plan.Decisions, Held: plan.Held,
		Changes: map[string][]applier.ObjectChange{}, Failures: map[string]string{}, Encrypted: plan.Encrypted, masker: p.Masker}
	for _, list := range [][]*manifests.Instance{plan.Index.Instances, plan.Index.Invalid} {
		for _, in := range list {
			p.Masker.Add(in.SensitiveValues()...)
		}
	}
	for i := range plan.Decisions {
		d := &plan.Decisions[i]
		if !d.Changes() || plan.Held != nil {
			continue
		}
		changes, err := p.previewDecision(ctx, repo, snap, d, plan.Existing[d.Key()])
		if err != nil {
			rep.Failures[d.Key()] = err.Error()
			continue
		}
		rep.Changes[d.Key()] = changes
	}
	return rep, nil
}

// previewDecision dry-runs what one decision would do: the plan's objects, or the deletion of
// a removed instance's inventory.
func (p *Previewer) previewDecision(ctx context.Context, repo desired.Repository, snap sources.Snapshot, d *planner.Decision, existing *v1alpha1.Instance) ([]applier.ObjectChange, error) {
	repository := repo.Name
	// The repository's lane applies to previews as to plans (the planner already refused
	// instances outside it); the requests are the previewer's own, reads and dry-runs.
	engine, err := p.Engine.For(applier.Tenant{AllowClusterScoped: repo.Lane.AllowClusterScoped, StrictNamespaces: repo.Lane.Closed()})
	if err != nil {
		return nil, err
	}
	if d.Action == planner.ActionCleanup {
		changes := []applier.ObjectChange{}
		if existing == nil {
			return changes, nil
		}
		return engine.PreviewDeletion(ctx, applier.NewInventory(existing.Status.Inventory))
	}
	inst := desired.Instance(repository, snap.Commit, d.New.Instance, nil)
	inv := applier.Inventory{}
	if existing != nil {
		inst.UID = existing.UID
		inv = applier.NewInventory(existing.Status.Inventory)
	} else {
		inst.UID = types.UID("preview-" + d.Key())
	}
	inst.CreationTimestamp = metav1.Now()
	// The plan renders with the values themselves: git's as read (decrypted), and what
	// parametersFrom holds in the cluster now.
	params := d.New.Instance.ParameterStrings()
	if p.Params != nil {
		sourced, _, err := p.Params.ReadSources(ctx, inst.Namespace, inst.Name, inst.Spec.ParametersFrom, d.New.Package)
		if err != nil {
			return nil, err
		}
		for k, v := range sourced {
			if _, inline := params[k]; !inline {
				params[k] = v
			}
		}
	}
	run := &applier.Run{
		Instance: inst, Package: d.New.Package, Plan: d.Plan, Params: params,
		Children: p.Planner.Store.Finder(repository, snap.Commit), Inventory: inv,
	}
	return engine.Preview(ctx, run)
}
