package applier

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// RenderedPlan is every object a plan run writes, rendered before the first write (SPEC §3):
// a render error rejects the plan with nothing written.
type RenderedPlan struct {
	Plan  *manifests.Plan
	steps map[string]*renderedStep
	// Warnings are API version upgrades made, each naming the template.
	Warnings []string
}

type renderedStep struct {
	phase, step string
	tasks       []*renderedTask
}

// renderedTask is one task of one step with what it writes.
type renderedTask struct {
	task *manifests.Task
	// apply holds the objects of an Apply task, or of a Toggle task whose parameter is true.
	apply []*unstructured.Unstructured
	// delete holds the objects of a Delete task, or of a Toggle task whose parameter is false.
	delete []*unstructured.Unstructured
	pipe   *pipeSpec
	child  *childSpec
}

// pipeSpec is a rendered Pipe task: its pod and the artifacts it produces.
type pipeSpec struct {
	pod       *unstructured.Unstructured
	artifacts []pipeArtifact
}

type pipeArtifact struct {
	manifests.PipeSpec
	// name of the Secret or ConfigMap.
	name string
}

// childSpec is a rendered KudoOperator task: the child instance to create.
type childSpec struct {
	name       string
	pkg        *manifests.Package
	parameters map[string]string
}

func stepKey(phase, step string) string { return phase + "/" + step }

func (rp *RenderedPlan) step(phase, step string) *renderedStep {
	return rp.steps[stepKey(phase, step)]
}

// Objects returns every object the plan applies, in plan order.
func (rp *RenderedPlan) Objects() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, ph := range rp.Plan.Phases {
		for _, st := range ph.Steps {
			for _, t := range rp.step(ph.Name, st.Name).tasks {
				out = append(out, t.apply...)
			}
		}
	}
	return out
}

// PackageFinder finds the packages KudoOperator tasks name, in the instance's repository.
type PackageFinder interface {
	FindPackage(ctx context.Context, name, operatorVersion, appVersion string) (*manifests.Package, error)
}

// renderInput describes one plan render.
type renderInput struct {
	instance *v1alpha1.Instance
	pkg      *manifests.Package
	plan     string
	params   map[string]string // effective values
	children PackageFinder
	prepare  prepareOptions
}

// renderPlan renders every task of every step of a plan and prepares the objects for the
// cluster. The API version upgrades need the plan's own CRDs, so rendering happens in two
// passes: render everything, then prepare with a scope that knows the plan's CRDs.
func renderPlan(ctx context.Context, in renderInput, mapperScope func([]*unstructured.Unstructured) *scope) (*RenderedPlan, error) {
	plan, ok := in.pkg.Plans[in.plan]
	if !ok {
		return nil, fmt.Errorf("%s has no plan %q", in.pkg.ID(), in.plan)
	}
	rp := &RenderedPlan{Plan: plan, steps: map[string]*renderedStep{}}
	pipes := in.pkg.Pipes(in.instance.Name, plan.Name)
	var all []*unstructured.Unstructured
	type prep struct {
		obj      *unstructured.Unstructured
		template string
	}
	var toPrepare []prep
	for _, ph := range plan.Phases {
		for _, st := range ph.Steps {
			rs := &renderedStep{phase: ph.Name, step: st.Name}
			rp.steps[stepKey(ph.Name, st.Name)] = rs
			ri := manifests.RenderInput{
				Name: in.instance.Name, Namespace: in.instance.Namespace,
				PlanName: plan.Name, PhaseName: ph.Name, StepName: st.Name,
				Params: in.params, Pipes: pipes,
			}
			for _, tn := range st.Tasks {
				task := in.pkg.Task(tn)
				if task == nil {
					return nil, fmt.Errorf("step %s/%s names task %q, which %s does not define", ph.Name, st.Name, tn, in.pkg.ID())
				}
				rt := &renderedTask{task: task}
				switch task.Kind {
				case manifests.TaskApply, manifests.TaskDelete, manifests.TaskToggle:
					on := task.Kind != manifests.TaskDelete
					if task.Kind == manifests.TaskToggle {
						v, err := strconv.ParseBool(strings.TrimSpace(in.params[task.Spec.Parameter]))
						if err != nil {
							return nil, fmt.Errorf("task %s: Toggle parameter %s is %q, not a boolean", task.Name, task.Spec.Parameter, in.params[task.Spec.Parameter])
						}
						on = v
					}
					for _, key := range task.Spec.Resources {
						objs, err := in.pkg.Render(key, ri)
						if err != nil {
							return nil, fmt.Errorf("task %s: %w", task.Name, err)
						}
						for _, o := range objs {
							if o.GetName() == "" {
								return nil, fmt.Errorf("task %s: %s: %s without metadata.name", task.Name, in.pkg.TemplatePath(key), o.GetKind())
							}
							toPrepare = append(toPrepare, prep{o, in.pkg.TemplatePath(key)})
						}
						if on {
							rt.apply = append(rt.apply, objs...)
						} else {
							rt.delete = append(rt.delete, objs...)
						}
						all = append(all, objs...)
					}
				case manifests.TaskPipe:
					ps, err := renderPipe(in, task, ri, ph.Name, st.Name)
					if err != nil {
						return nil, fmt.Errorf("task %s: %w", task.Name, err)
					}
					rt.pipe = ps
					toPrepare = append(toPrepare, prep{ps.pod, in.pkg.TemplatePath(task.Spec.Pod)})
					all = append(all, ps.pod)
				case manifests.TaskKudoOperator:
					cs, err := renderChild(ctx, in, task)
					if err != nil {
						return nil, fmt.Errorf("task %s: %w", task.Name, err)
					}
					rt.child = cs
				case manifests.TaskDummy:
				default:
					return nil, fmt.Errorf("task %s: unknown task kind %q", task.Name, task.Kind)
				}
				rs.tasks = append(rs.tasks, rt)
			}
		}
	}
	sc := mapperScope(all)
	for _, p := range toPrepare {
		w, err := prepare(p.obj, p.template, in.instance, in.pkg, sc, in.prepare)
		if err != nil {
			return nil, err
		}
		rp.Warnings = append(rp.Warnings, w...)
	}
	return rp, nil
}

func renderPipe(in renderInput, task *manifests.Task, ri manifests.RenderInput, phase, step string) (*pipeSpec, error) {
	objs, err := in.pkg.Render(task.Spec.Pod, ri)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 || objs[0].GetKind() != "Pod" {
		return nil, fmt.Errorf("%s: a Pipe task's pod template must hold exactly one Pod", in.pkg.TemplatePath(task.Spec.Pod))
	}
	pod := objs[0]
	pod.SetName(manifests.PipePodName(in.instance.Name, manifests.PipeRef{Plan: in.plan, Phase: phase, Step: step, Task: task.Name}))
	ps := &pipeSpec{pod: pod}
	for _, p := range task.Spec.Pipe {
		ps.artifacts = append(ps.artifacts, pipeArtifact{PipeSpec: p, name: ri.Pipes[p.Key]})
	}
	if err := manifests.CheckPipePod([]*unstructured.Unstructured{pod}, task.Spec.Pipe); err != nil {
		return nil, fmt.Errorf("%s: %w", in.pkg.TemplatePath(task.Spec.Pod), err)
	}
	return ps, nil
}

// renderChild renders a KudoOperator task's parameter file into the child's parameters.
func renderChild(ctx context.Context, in renderInput, task *manifests.Task) (*childSpec, error) {
	if in.children == nil {
		return nil, fmt.Errorf("KudoOperator tasks need the packages of the instance's repository")
	}
	pkg, err := in.children.FindPackage(ctx, task.Spec.Package, task.Spec.OperatorVersion, task.Spec.AppVersion)
	if err != nil {
		return nil, err
	}
	name := task.Spec.InstanceName
	if name == "" {
		name = in.instance.Name + "-" + task.Spec.Package
	}
	cs := &childSpec{name: name, pkg: pkg, parameters: map[string]string{}}
	if task.Spec.ParameterFile == "" {
		return cs, nil
	}
	text, err := in.pkg.RenderText(task.Spec.ParameterFile, manifests.RenderInput{
		Name: in.instance.Name, Namespace: in.instance.Namespace, Params: in.params,
	})
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("%s: rendered parameter file is not YAML: %w", in.pkg.TemplatePath(task.Spec.ParameterFile), err)
	}
	if len(doc.Content) == 0 {
		return cs, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: a parameter file must be a YAML map of parameter names to values", in.pkg.TemplatePath(task.Spec.ParameterFile))
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		v, ok, err := manifests.ValueFromNode(m.Content[i+1])
		if err != nil || !ok {
			return nil, fmt.Errorf("%s: parameter %s: null or invalid value", in.pkg.TemplatePath(task.Spec.ParameterFile), m.Content[i].Value)
		}
		par := pkg.Parameter(m.Content[i].Value)
		if par == nil {
			return nil, fmt.Errorf("%s: %s has no parameter %s", in.pkg.TemplatePath(task.Spec.ParameterFile), pkg.ID(), m.Content[i].Value)
		}
		if err := par.ValidateValue(v); err != nil {
			return nil, fmt.Errorf("%s: parameter %s of %s: %w", in.pkg.TemplatePath(task.Spec.ParameterFile), par.Name, pkg.ID(), err)
		}
		cs.parameters[m.Content[i].Value] = v.Text
	}
	return cs, nil
}
