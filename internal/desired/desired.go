// Package desired plans a git snapshot against the cluster: it indexes the snapshot, lists the
// repository's Instances, builds the planner's old side from the packages they were last
// planned with, and asks planner.Diff what each instance needs (docs/design.md, Plan
// selection). The poll loop acts on the result and previews report it: both go through Plan.
// Instance is the Instance object a decision applies.
package desired

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/lanes"
	"github.com/kudod-dev/kudod/internal/store"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

// Repository is what planning needs of a configured repository.
type Repository struct {
	// Name is the repository's name in the configuration.
	Name string
	// Prune cleans up instances removed from git.
	Prune bool
	// AllowEmpty lets a commit remove every instance.
	AllowEmpty bool
	// Approval and Windows are the repository's defaults for its instances
	// (docs/operations.md).
	Approval *v1alpha1.Approval
	Windows  []v1alpha1.Window
	// Lane refuses instances outside the namespaces the repository may target.
	Lane lanes.Policy
}

// Planner plans snapshots against the Instances in the cluster.
type Planner struct {
	// Client lists Instances.
	Client client.Reader
	// Store indexes snapshots and finds the packages Instances were planned with.
	Store *store.Store
	Log   logr.Logger
	// Now is the clock windows are evaluated with (default time.Now).
	Now func() time.Time
}

// Plan is a snapshot planned against the cluster.
type Plan struct {
	// Index is the snapshot's index.
	Index *manifests.Index
	// Existing are the repository's Instances from git (not KudoOperator children), by
	// namespace/name: the cache's objects, read-only (DeepCopy before changing one).
	Existing map[string]*v1alpha1.Instance
	// Result holds a decision per instance, or why the whole commit is held.
	planner.Result
}

// Plan indexes a snapshot of a repository and plans it against the repository's Instances.
func (p *Planner) Plan(ctx context.Context, repo Repository, snap sources.Snapshot) (*Plan, error) {
	idx, err := p.Store.IndexSnapshot(ctx, repo.Name, snap)
	if err != nil {
		return nil, err
	}
	// The cache's own objects, not copies (thousands of Instances on every new commit): a
	// plan only reads them; whoever changes one (the poll's cleanup) copies it first.
	var list v1alpha1.InstanceList
	if err := p.Client.List(ctx, &list, client.MatchingLabels{v1alpha1.LabelRepository: repo.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list instances of %s: %w", repo.Name, err)
	}
	existing := topLevel(list.Items)
	old := p.clusterSide(ctx, repo.Name, existing, idx, p.Log.WithValues("repository", repo.Name))
	res := planner.Diff(old, planner.FromIndex(idx), planner.Options{AllowEmpty: repo.AllowEmpty, NoPrune: !repo.Prune})
	repo.Lane.Refuse(&res)
	p.holdRolledBack(ctx, repo.Name, existing, &res, p.Log.WithValues("repository", repo.Name))
	outside, err := p.outsideGraph(ctx, repo.Name, &res)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	planner.CheckDependencies(&res, planner.GraphOf(&res, outside), planner.DependencyOptions{Approval: repo.Approval, Windows: repo.Windows, Now: now()})
	return &Plan{Index: idx, Existing: existing, Result: res}, nil
}

// outsideGraph is the dependency graph of the Instances outside the repository that the
// client sees: the daemon's cache holds those of every repository it follows (docs/operations.md,
// Ordering). Only a commit that declares a dependency needs it.
func (p *Planner) outsideGraph(ctx context.Context, repository string, res *planner.Result) (planner.DependencyGraph, error) {
	needed := false
	for i := range res.Decisions {
		if n := res.Decisions[i].New; n != nil && len(n.DependsOn) > 0 {
			needed = true
			break
		}
	}
	if !needed {
		return nil, nil
	}
	var all v1alpha1.InstanceList
	if err := p.Client.List(ctx, &all); err != nil {
		return nil, fmt.Errorf("list instances for dependencies: %w", err)
	}
	g := planner.DependencyGraph{}
	for i := range all.Items {
		in := &all.Items[i]
		if in.DeletionTimestamp != nil || (in.Labels[v1alpha1.LabelRepository] == repository && in.Labels[v1alpha1.LabelParent] == "") {
			continue // going away, or this repository's own (its decisions say what becomes of them)
		}
		g[in.Namespace+"/"+in.Name] = planner.RefKeys(in.Spec.DependsOn, in.Namespace)
	}
	return g, nil
}

// topLevel maps the Instances that come from git (not KudoOperator children) by key.
func topLevel(items []v1alpha1.Instance) map[string]*v1alpha1.Instance {
	existing := map[string]*v1alpha1.Instance{}
	for i := range items {
		in := &items[i]
		if _, child := in.Labels[v1alpha1.LabelParent]; child {
			continue
		}
		existing[in.Namespace+"/"+in.Name] = in
	}
	return existing
}

// clusterSide is the planner's old side: what each Instance in the cluster last accepted.
func (p *Planner) clusterSide(ctx context.Context, repository string, existing map[string]*v1alpha1.Instance, current *manifests.Index, log logr.Logger) planner.Side {
	side := planner.Side{Instances: map[string]*planner.State{}, Invalid: map[string]string{}, BrokenFiles: map[string]string{}}
	for key, in := range existing {
		if in.DeletionTimestamp != nil {
			continue // being cleaned up: if git has it again, it is new once the cleanup is done
		}
		side.Instances[key] = &planner.State{
			Namespace:      in.Namespace,
			Name:           in.Name,
			Package:        p.oldPackage(ctx, repository, in, current, log),
			Parameters:     in.Spec.Parameters,
			ParametersFrom: in.Spec.ParametersFrom,
			File:           in.Spec.Source.Path,
			Suspend:        in.Spec.Suspend,
			NeverCompleted: in.Status.Applied == nil,
			DependsOn:      in.Spec.DependsOn,
			Approval:       in.Spec.Approval,
			Windows:        in.Spec.Windows,
		}
	}
	return side
}

// oldPackage returns the package an Instance was last planned with. When git no longer has it
// (a force-push wiped the commit from the cache), the current package stands in with the old
// versions and digest, so the planner still sees a version or template change.
func (p *Planner) oldPackage(ctx context.Context, repository string, in *v1alpha1.Instance, current *manifests.Index, log logr.Logger) *manifests.Package {
	pkg, err := p.Store.PackageAt(ctx, repository, in.Spec.Source.Revision, in.Spec.Source.PackagePath, in.Spec.PackageDigest)
	if err == nil {
		return pkg
	}
	log.V(1).Info("old package not available; comparing against the current one", "instance", in.Namespace+"/"+in.Name, "error", err.Error())
	stand := &manifests.Package{Name: in.Spec.Operator.Name, OperatorVersion: in.Spec.Operator.Version, AppVersion: in.Spec.Operator.AppVersion, Digest: in.Spec.PackageDigest, Plans: map[string]*manifests.Plan{}}
	if cur := current.Package(in.Spec.Operator.Name, "", ""); cur != nil {
		c := *cur
		c.OperatorVersion, c.AppVersion, c.Digest = stand.OperatorVersion, stand.AppVersion, stand.Digest
		return &c
	}
	return stand
}

// Instance is the Instance object kudod applies for an instance file at a revision: its spec
// is the desired state, owned by the daemon's field manager. plan is the plan git asks for
// (nil: none).
func Instance(repository, revision string, in *manifests.Instance, plan *v1alpha1.PlanRequest) *v1alpha1.Instance {
	p := in.Package
	inst := &v1alpha1.Instance{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Instance"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      in.Name,
			Namespace: in.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelRepository: repository,
				v1alpha1.LabelManagedBy:  "kudod",
				applier.LabelOperator:    p.Name,
			},
			Finalizers: []string{v1alpha1.FinalizerCleanup},
		},
		Spec: v1alpha1.InstanceSpec{
			Operator:      v1alpha1.OperatorRef{Name: p.Name, Version: p.OperatorVersion, AppVersion: p.AppVersion},
			PackageDigest: p.Digest,
			// Sensitive values as their digests: the values stay in git (docs/secrets.md).
			Parameters:      in.StoredParameters(),
			Source:          v1alpha1.SourceRef{Repository: repository, Path: in.File, PackagePath: p.Dir, Revision: revision},
			Plan:            plan,
			Schedules:       in.Schedules,
			Suspend:         in.Suspend,
			DriftCorrection: in.DriftCorrection,
			// Policy fields, copied as written (their behaviour lives with their readers).
			ParametersFrom:     in.ParametersFrom,
			ServiceAccountName: in.ServiceAccountName,
			DependsOn:          in.DependsOn,
			Approval:           in.Approval,
			Windows:            in.Windows,
			OnFailure:          in.OnFailure,
		},
	}
	if len(inst.Spec.Parameters) == 0 {
		inst.Spec.Parameters = nil
	}
	if in.StepTimeout != nil {
		inst.Spec.StepTimeout = &metav1.Duration{Duration: *in.StepTimeout}
	}
	if in.DriftInterval != nil {
		inst.Spec.DriftInterval = &metav1.Duration{Duration: *in.DriftInterval}
	}
	return inst
}

// SameSpec reports whether applying want over have would leave have's spec as it is, ignoring
// the plan request and the revision: a commit that changes nothing about an instance neither
// rewrites it nor re-runs anything.
func SameSpec(have, want *v1alpha1.Instance) bool {
	a, b := have.Spec.DeepCopy(), want.Spec.DeepCopy()
	a.Plan, b.Plan = nil, nil
	a.Source.Revision, b.Source.Revision = "", ""
	if len(a.Parameters) == 0 {
		a.Parameters = nil
	}
	if len(b.Parameters) == 0 {
		b.Parameters = nil
	}
	return equality.Semantic.DeepEqual(a, b) && have.Labels[v1alpha1.LabelRepository] == want.Labels[v1alpha1.LabelRepository]
}
