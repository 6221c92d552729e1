package applier

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/manifests"
)

// dummyTask is KUDO's Dummy task: an error when wantErr (fatal when fatal), done when done,
// and otherwise a pause that only a newer plan, an abort or the step timeout ends.
type dummyTask struct {
	def *manifests.Task
}

func renderDummy(_ context.Context, _ *planRender, _ manifests.RenderInput, t *manifests.Task) (task, error) {
	return &dummyTask{def: t}, nil
}

func (d *dummyTask) batch() (apply, remove []*unstructured.Unstructured) { return nil, nil }

func (d *dummyTask) write(context.Context, context.Context, *stepExecution) ([]*unstructured.Unstructured, error) {
	return nil, nil
}

func (d *dummyTask) wait(ctx context.Context, _ *stepExecution) error {
	t := d.def
	switch {
	case t.Spec.WantErr && t.Spec.Fatal:
		return fatal(fmt.Errorf("dummy task %s failed (wantErr, fatal)", t.Name))
	case t.Spec.WantErr:
		return fmt.Errorf("dummy task %s failed (wantErr)", t.Name)
	case t.Spec.Done:
		return nil
	}
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), errStepTimeout) {
		return fmt.Errorf("dummy task %s never completes (it has neither done nor wantErr set)", t.Name)
	}
	return context.Cause(ctx)
}

func (d *dummyTask) inventory(string) []*unstructured.Unstructured { return nil }

func (d *dummyTask) preview(*planPreview) {}

func (d *dummyTask) output() (string, []*objectSet) { return "", nil }
