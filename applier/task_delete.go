package applier

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/manifests"
)

// deleteTask is a Delete task: its objects join the step's deletions (delete.go), which wait
// until they are gone, as KUDO's Delete task does, and leave the inventory. An object of a kind
// the cluster does not serve cannot exist: the render drops it, so it is done at once.
type deleteTask struct {
	sets []*objectSet
}

func renderDelete(ctx context.Context, r *planRender, in manifests.RenderInput, t *manifests.Task) (task, error) {
	sets, err := r.resources(ctx, t, in, false)
	if err != nil {
		return nil, err
	}
	return &deleteTask{sets: sets}, nil
}

func (d *deleteTask) batch() (apply, remove []*unstructured.Unstructured) {
	return nil, objectsOf(d.sets)
}

func (d *deleteTask) write(context.Context, context.Context, *stepExecution) ([]*unstructured.Unstructured, error) {
	return nil, nil
}

func (d *deleteTask) wait(context.Context, *stepExecution) error { return nil }

func (d *deleteTask) inventory(string) []*unstructured.Unstructured { return nil }

func (d *deleteTask) preview(pv *planPreview) { pv.delete(objectsOf(d.sets)...) }

func (d *deleteTask) output() (string, []*objectSet) { return "deleted", d.sets }
