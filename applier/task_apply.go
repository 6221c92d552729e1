package applier

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/manifests"
)

// applyTask is an Apply task: its objects join the step's batch, which applies them
// (apply.go) and waits until they are healthy (wait.go); the inventory records them.
type applyTask struct {
	sets []*objectSet
}

func renderApply(ctx context.Context, r *planRender, in manifests.RenderInput, t *manifests.Task) (task, error) {
	sets, err := r.resources(ctx, t, in, true)
	if err != nil {
		return nil, err
	}
	return &applyTask{sets: sets}, nil
}

func (a *applyTask) batch() (apply, remove []*unstructured.Unstructured) {
	return objectsOf(a.sets), nil
}

func (a *applyTask) write(context.Context, context.Context, *stepExecution) ([]*unstructured.Unstructured, error) {
	return nil, nil
}

func (a *applyTask) wait(context.Context, *stepExecution) error { return nil }

func (a *applyTask) inventory(string) []*unstructured.Unstructured { return objectsOf(a.sets) }

func (a *applyTask) preview(pv *planPreview) { pv.apply(objectsOf(a.sets)...) }

func (a *applyTask) output() (string, []*objectSet) { return "applied", a.sets }
