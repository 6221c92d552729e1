package applier

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// RenderedPlan is every object a plan run writes, rendered before the first write: a render
// error rejects the plan with nothing written (docs/design.md, Running a plan).
type RenderedPlan struct {
	Plan  *manifests.Plan
	steps map[string]*renderedStep
	// Warnings are API version upgrades made, each naming the template.
	Warnings []string
}

type renderedStep struct {
	phase, step string
	tasks       []renderedTask
}

// renderedTask is a task of a step with its definition.
type renderedTask struct {
	task
	def *manifests.Task
}

// batch returns what the step's tasks apply and delete, in task order.
func (rs *renderedStep) batch() (apply, remove []*unstructured.Unstructured) {
	for _, t := range rs.tasks {
		a, r := t.batch()
		apply, remove = append(apply, a...), append(remove, r...)
	}
	return apply, remove
}

func stepKey(phase, step string) string { return phase + "/" + step }

func (rp *RenderedPlan) step(phase, step string) *renderedStep {
	return rp.steps[stepKey(phase, step)]
}

// eachStep calls fn for the plan's steps in plan order.
func (rp *RenderedPlan) eachStep(fn func(*renderedStep)) {
	for _, ph := range rp.Plan.Phases {
		for _, st := range ph.Steps {
			fn(rp.step(ph.Name, st.Name))
		}
	}
}

// Objects returns every object the plan applies, in plan order.
func (rp *RenderedPlan) Objects() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	rp.eachStep(func(rs *renderedStep) {
		apply, _ := rs.batch()
		out = append(out, apply...)
	})
	return out
}

// Inventory is everything the plan records in an instance's inventory when it runs, as each
// task kind says: the objects of its Apply tasks and Toggle tasks that are on, its Pipe
// artifacts and children.
func (rp *RenderedPlan) Inventory(namespace string) Inventory {
	inv := Inventory{}
	rp.eachStep(func(rs *renderedStep) {
		for _, t := range rs.tasks {
			inv.Add(t.inventory(namespace)...)
		}
	})
	return inv
}

// RenderedTask is one task of a rendered plan as `kudod render --plan` prints it.
type RenderedTask struct {
	Phase, Step string
	Task        *manifests.Task
	// Action says what the plan does with the objects: "applied", "deleted", "applied: P is
	// true", "deleted: P is false"; empty for a task without objects of its own.
	Action string
	// Templates are the task's objects by template, in the task's order.
	Templates []RenderedTemplate
}

// RenderedTemplate is the objects one template rendered for a task.
type RenderedTemplate struct {
	// Path is the template's path in the package's file tree.
	Path    string
	Objects []*unstructured.Unstructured
}

// Tasks returns the plan's tasks in plan order with what each renders.
func (rp *RenderedPlan) Tasks() []RenderedTask {
	var out []RenderedTask
	rp.eachStep(func(rs *renderedStep) {
		for _, t := range rs.tasks {
			action, sets := t.output()
			rt := RenderedTask{Phase: rs.phase, Step: rs.step, Task: t.def, Action: action}
			for _, s := range sets {
				rt.Templates = append(rt.Templates, RenderedTemplate{Path: s.template, Objects: s.objects})
			}
			out = append(out, rt)
		}
	})
	return out
}

// PackageFinder finds the packages KudoOperator tasks name, in the instance's repository.
type PackageFinder interface {
	FindPackage(ctx context.Context, name, operatorVersion, appVersion string) (*manifests.Package, error)
}

// Render renders every template of the run's plan and prepares the objects for the cluster;
// an error means nothing must be written.
func (e *Engine) Render(ctx context.Context, run *Run) (*RenderedPlan, error) {
	return e.render(ctx, run, false)
}

// render renders a run's plan against the engine's cluster. keepOnly renders for the set of
// objects pruning keeps: an object of a kind the cluster does not serve cannot exist, so it is
// left out instead of failing the render.
func (e *Engine) render(ctx context.Context, run *Run, keepOnly bool) (*RenderedPlan, error) {
	ctx = manifests.WithRenderLimits(ctx, e.opts.RenderLimits)
	r := &planRender{
		instance: run.Instance, pkg: run.Package, params: run.Package.EffectiveParams(run.Params),
		children: run.Children, mapper: e.mapper,
		prepare: prepareOptions{allowClusterScoped: e.opts.AllowClusterScoped, strictNamespaces: e.strictNamespaces, dropUnserved: keepOnly},
	}
	rp, err := r.render(ctx, run.Plan)
	if err != nil {
		return nil, fatal(err)
	}
	return rp, nil
}

// RenderOffline renders a plan without a cluster, as `kudod render --plan` prints it: objects
// as their templates write them (API versions not upgraded, namespaces not forced, no labels)
// and KudoOperator tasks without their child's package. params are explicit values.
func RenderOffline(ctx context.Context, pkg *manifests.Package, instance, namespace, plan string, params map[string]string) (*RenderedPlan, error) {
	inst := &v1alpha1.Instance{}
	inst.Name, inst.Namespace = instance, namespace
	r := &planRender{instance: inst, pkg: pkg, params: pkg.EffectiveParams(params), offline: true}
	return r.render(ctx, plan)
}

// planRender is one render of a plan: what it renders for, and the objects rendered so far,
// which are prepared for the cluster once every task is rendered.
type planRender struct {
	instance *v1alpha1.Instance
	pkg      *manifests.Package
	params   map[string]string // effective values
	children PackageFinder
	// mapper is the cluster's discovery; offline renders have none.
	mapper  meta.RESTMapper
	prepare prepareOptions
	// offline renders without a cluster: objects are not prepared, child packages not looked up.
	offline bool
	sets    []*objectSet
	// where is the task being rendered, for messages.
	where string
}

// render renders every task of every step of a plan, then prepares the objects for the
// cluster. Preparing comes second because API version upgrades and scopes need the CRDs the
// plan itself applies. Every template of the plan counts against one render budget
// (manifests.StartRender), with the limits set on ctx.
func (r *planRender) render(ctx context.Context, planName string) (*RenderedPlan, error) {
	ctx, done := manifests.StartRender(ctx)
	defer done()
	plan, ok := r.pkg.Plans[planName]
	if !ok {
		return nil, fmt.Errorf("%s has no plan %q", r.pkg.ID(), planName)
	}
	rp := &RenderedPlan{Plan: plan, steps: map[string]*renderedStep{}}
	pipes := r.pkg.Pipes(r.instance.Name, plan.Name)
	for _, ph := range plan.Phases {
		for _, st := range ph.Steps {
			rs := &renderedStep{phase: ph.Name, step: st.Name}
			rp.steps[stepKey(ph.Name, st.Name)] = rs
			in := manifests.RenderInput{
				Name: r.instance.Name, Namespace: r.instance.Namespace,
				PlanName: plan.Name, PhaseName: ph.Name, StepName: st.Name,
				Params: r.params, Pipes: pipes,
			}
			for _, tn := range st.Tasks {
				def := r.pkg.Task(tn)
				if def == nil {
					return nil, fmt.Errorf("step %s/%s names task %q, which %s does not define", ph.Name, st.Name, tn, r.pkg.ID())
				}
				kind, ok := taskKinds[def.Kind]
				if !ok {
					return nil, fmt.Errorf("task %s: unknown task kind %q", def.Name, def.Kind)
				}
				r.where = fmt.Sprintf("plan %s, phase %s, step %s, task %s", plan.Name, ph.Name, st.Name, def.Name)
				t, err := kind(ctx, r, in, def)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", r.where, err)
				}
				rs.tasks = append(rs.tasks, renderedTask{task: t, def: def})
			}
		}
	}
	if r.offline {
		return rp, nil
	}
	warnings, err := r.prepareAll()
	if err != nil {
		return nil, err
	}
	rp.Warnings = warnings
	return rp, nil
}

// resources renders the resources of an Apply, Delete or Toggle task: applied says whether
// the plan applies or deletes them.
func (r *planRender) resources(ctx context.Context, t *manifests.Task, in manifests.RenderInput, applied bool) ([]*objectSet, error) {
	var sets []*objectSet
	for _, key := range t.Spec.Resources {
		objs, err := r.pkg.RenderContext(ctx, key, in)
		if err != nil {
			return nil, err
		}
		path := r.pkg.TemplatePath(key)
		for _, o := range objs {
			if o.GetName() == "" {
				return nil, fmt.Errorf("%s: %s without metadata.name", path, o.GetKind())
			}
		}
		sets = append(sets, r.add(path, objs, applied))
	}
	return sets, nil
}

// add records objects a task rendered from a template, to be prepared with the rest.
func (r *planRender) add(template string, objs []*unstructured.Unstructured, applied bool) *objectSet {
	s := &objectSet{template: template, objects: objs, applied: applied, where: r.where}
	r.sets = append(r.sets, s)
	return s
}

// prepareAll prepares every rendered object for the cluster (prepare). An object the plan
// deletes whose kind the cluster does not serve cannot exist: there is nothing to delete, so it
// is dropped rather than failing the plan (a Toggle that is off whose kind is an optional CRD,
// such as a ServiceMonitor without the Prometheus operator).
func (r *planRender) prepareAll() ([]string, error) {
	var applied []*unstructured.Unstructured
	for _, s := range r.sets {
		if s.applied {
			applied = append(applied, s.objects...)
		}
	}
	sc := newScope(r.mapper, applied)
	var warnings []string
	for _, s := range r.sets {
		kept := s.objects[:0]
		for _, o := range s.objects {
			w, err := prepare(o, s.template, r.instance, r.pkg, sc, r.prepare, !s.applied)
			var ns *notServedError
			if errors.As(err, &ns) && (!s.applied || r.prepare.dropUnserved) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.where, err)
			}
			warnings = append(warnings, w...)
			kept = append(kept, o)
		}
		s.objects = kept
	}
	return warnings, nil
}
