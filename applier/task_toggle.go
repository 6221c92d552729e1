package applier

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/manifests"
)

// toggleTask is a Toggle task: an Apply task while its boolean parameter is true, a Delete task
// while it is false, so turning the parameter off removes what turning it on created.
type toggleTask struct {
	parameter string
	on        bool
	sets      []*objectSet
}

func renderToggle(ctx context.Context, r *planRender, in manifests.RenderInput, t *manifests.Task) (task, error) {
	value := r.params[t.Spec.Parameter]
	on, err := strconv.ParseBool(strings.TrimSpace(value))
	if err != nil {
		return nil, fmt.Errorf("the Toggle parameter %s is %q, not a boolean", t.Spec.Parameter, value)
	}
	sets, err := r.resources(ctx, t, in, on)
	if err != nil {
		return nil, err
	}
	return &toggleTask{parameter: t.Spec.Parameter, on: on, sets: sets}, nil
}

func (g *toggleTask) batch() (apply, remove []*unstructured.Unstructured) {
	if g.on {
		return objectsOf(g.sets), nil
	}
	return nil, objectsOf(g.sets)
}

func (g *toggleTask) write(context.Context, context.Context, *stepExecution) ([]*unstructured.Unstructured, error) {
	return nil, nil
}

func (g *toggleTask) wait(context.Context, *stepExecution) error { return nil }

func (g *toggleTask) inventory(string) []*unstructured.Unstructured {
	if g.on {
		return objectsOf(g.sets)
	}
	return nil
}

func (g *toggleTask) preview(pv *planPreview) {
	if g.on {
		pv.apply(objectsOf(g.sets)...)
	} else {
		pv.delete(objectsOf(g.sets)...)
	}
}

func (g *toggleTask) output() (string, []*objectSet) {
	if g.on {
		return fmt.Sprintf("applied: %s is true", g.parameter), g.sets
	}
	return fmt.Sprintf("deleted: %s is false", g.parameter), g.sets
}
