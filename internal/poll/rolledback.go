package poll

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// endRollback ends a rollback's hold when git moved on to a commit that asks for what the
// instance runs (a revert): no plan runs, the spec points at the new commit and the mark goes,
// so `kudod status` shows the instance in sync again (docs/recovery.md, Rollback).
func (p *Poller) endRollback(ctx context.Context, existing, want *v1alpha1.Instance, commit string) error {
	want.Spec.Source.Revision = commit
	if err := p.apply(ctx, want); err != nil {
		return err
	}
	patch := client.MergeFrom(existing.DeepCopy())
	existing.Status.RolledBack = nil
	if err := p.opts.Client.Status().Patch(ctx, existing, patch); err != nil {
		return fmt.Errorf("end the rollback of %s/%s: %w", existing.Namespace, existing.Name, err)
	}
	p.log.Info("git moved on from the commit rolled back", "instance", existing.Namespace+"/"+existing.Name, "revision", v1alpha1.ShortRevision(commit))
	return nil
}
