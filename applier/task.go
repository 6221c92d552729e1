package applier

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/manifests"
)

// task is one rendered task of a step, as KUDO's engine has task kinds behind one small
// interface. Each kind lives in its task_<kind>.go: how it renders, what it writes and waits
// for, what it leaves in the inventory, how a preview and `kudod render` show it.
type task interface {
	// batch returns the objects the task applies and those it deletes. A step applies the
	// objects of all its tasks in one batch, validated by dry-run first, so a step with an
	// invalid object writes nothing (apply.go); then deletes (delete.go); and waits until the
	// applied objects are healthy (wait.go) and the deleted ones gone.
	batch() (apply, remove []*unstructured.Unstructured)
	// write does the task's own writes, after the step's batch, in task order. ctx ends with
	// the step (waits within a write use it); writeCtx ends only at the step's deadline, so a
	// superseded step finishes what it writes. It returns objects to add to the inventory.
	write(ctx, writeCtx context.Context, x *stepExecution) ([]*unstructured.Unstructured, error)
	// wait returns nil once the task is done, after the batch's objects are.
	wait(ctx context.Context, x *stepExecution) error
	// inventory is what running the task records in the instance's inventory, as skeletons
	// in namespace where the task makes them: pruning keeps these.
	inventory(namespace string) []*unstructured.Unstructured
	// preview adds what running the task would do to a plan's preview.
	preview(pv *planPreview)
	// output is what `kudod render --plan` prints for the task: what the plan does with its
	// objects ("applied", "deleted: P is false") and the objects by template; none for kinds
	// whose objects are not the instance's own (Pipe pods, child instances) or that have none.
	output() (action string, sets []*objectSet)
}

// renderTask renders one task for one step; in carries the plan, phase and step names.
type renderTask func(ctx context.Context, r *planRender, in manifests.RenderInput, t *manifests.Task) (task, error)

// taskKinds are the task kinds kudod runs, each rendered by its task_<kind>.go: a new kind is
// one file and one line here (and its spec check in manifests/tasks.go).
var taskKinds = map[string]renderTask{
	manifests.TaskApply:        renderApply,
	manifests.TaskDelete:       renderDelete,
	manifests.TaskToggle:       renderToggle,
	manifests.TaskPipe:         renderPipe,
	manifests.TaskKudoOperator: renderKudoOperator,
	manifests.TaskDummy:        renderDummy,
}

// objectSet is what one template rendered for one task: the unit the render prepares for the
// cluster and `kudod render` prints.
type objectSet struct {
	// template is the template's path in the package's file tree.
	template string
	objects  []*unstructured.Unstructured
	// applied: the plan applies the objects; false: it deletes them. Only objects it applies
	// may define kinds (CRDs) or be refused for a kind the cluster does not serve.
	applied bool
	// where is the task that rendered them ("plan P, phase H, step S, task T"), for messages.
	where string
}

// objectsOf returns the objects of sets, in order.
func objectsOf(sets []*objectSet) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, s := range sets {
		out = append(out, s.objects...)
	}
	return out
}
