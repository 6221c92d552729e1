package app

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/manifests"
)

type renderOptions struct {
	limits    limitFlags
	params    []string
	instance  string
	namespace string
	plan      string
}

func newRenderCommand(s streams) *cobra.Command {
	var o renderOptions
	cmd := &cobra.Command{
		Use:   "render DIR",
		Short: "Print the Kubernetes objects a KUDO operator package renders to",
		Long: `Render the templates of the KUDO operator package in DIR and print the objects as YAML.

Without --plan, every template is rendered except KudoOperator parameterFiles and Pipe pods.
With --plan, the resources of the plan's Apply, Toggle and Delete tasks are rendered in plan
order, each with the plan, phase and step it runs in (.PlanName, .PhaseName, .StepName).

Parameters take their defaults unless given with -p NAME=VALUE (arrays and maps as YAML).
Nothing is sent to a cluster: API versions are printed as the templates write them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), s, args[0])
		},
	}
	cmd.Flags().StringArrayVarP(&o.params, "parameter", "p", nil, "a parameter value, NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&o.instance, "instance", "", "the instance name (.Name); default: <operator name>-instance, as KUDO names it")
	cmd.Flags().StringVar(&o.namespace, "namespace", "default", "the instance namespace (.Namespace)")
	cmd.Flags().StringVar(&o.plan, "plan", "", "render the resources of this plan's tasks, in plan order")
	o.limits.addRender(cmd.Flags())
	return cmd
}

func (o *renderOptions) run(ctx context.Context, s streams, dir string) error {
	values, err := parseParameterFlags(o.params)
	if err != nil {
		return exitCode(2, err)
	}
	ctx = o.limits.context(ctx)
	p, findings := readPackage(ctx, dir)
	printFindings(s.Err, findings.Warnings())
	if errs := findings.Errors(); len(errs) > 0 {
		printFindings(s.Err, errs)
		return exitCode(1, fmt.Errorf("%s: the package has %s", dir, countNoun(len(errs), "error")))
	}
	if err := checkParameterValues(p, values); err != nil {
		return exitCode(1, err)
	}
	instance := o.instance
	if instance == "" {
		instance = p.Name + "-instance"
	}
	in := manifests.RenderInput{Name: instance, Namespace: o.namespace, Params: values}
	r := &objectPrinter{w: s.Out}
	if o.plan == "" {
		err = renderTemplates(ctx, r, p, in)
	} else {
		err = renderPlan(ctx, r, p, in, o.plan)
	}
	if err != nil {
		return exitCode(1, err)
	}
	return nil
}

// parseParameterFlags reads -p NAME=VALUE flags; the last value of a name wins.
func parseParameterFlags(flags []string) (map[string]string, error) {
	values := map[string]string{}
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("invalid parameter %q: want -p NAME=VALUE", f)
		}
		values[name] = value
	}
	return values, nil
}

// checkParameterValues validates values against the package's parameters and requires a value
// for every required parameter without a default, as KUDO's install does.
func checkParameterValues(p *manifests.Package, values map[string]string) error {
	names := slices.Sorted(maps.Keys(values))
	var problems []string
	for _, name := range names {
		par := p.Parameter(name)
		if par == nil {
			problems = append(problems, fmt.Sprintf("unknown parameter %q%s", name, p.DidYouMean(name)))
			continue
		}
		if err := par.ValidateValue(manifests.StringValue(values[name])); err != nil {
			msg := err.Error()
			if par.IsSensitive() {
				msg = manifests.HideValue(msg, values[name])
			}
			problems = append(problems, fmt.Sprintf("parameter %s: %s", name, msg))
		}
	}
	for _, par := range p.Parameters {
		if _, given := values[par.Name]; !given && par.Required && par.Default == nil {
			problems = append(problems, fmt.Sprintf("parameter %s is required and has no default: give it with -p %s=VALUE", par.Name, par.Name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// renderTemplates prints every template that renders to objects of the instance itself: not
// KudoOperator parameterFiles (a child's parameters) nor Pipe pods (run, then deleted).
func renderTemplates(ctx context.Context, r *objectPrinter, p *manifests.Package, in manifests.RenderInput) error {
	ctx, done := manifests.StartRender(ctx)
	defer done()
	skip := map[string]bool{}
	for _, t := range p.Tasks {
		for _, tt := range t.Templates() {
			if tt.Role != manifests.RoleResource {
				skip[tt.Key] = true
			}
		}
	}
	// Templates outside a plan see the pipe keys of every plan, as verify renders them.
	in.Pipes = map[string]string{}
	for _, plan := range p.PlanNames() {
		for k, v := range p.Pipes(in.Name, plan) {
			if _, ok := in.Pipes[k]; !ok {
				in.Pipes[k] = v
			}
		}
	}
	for _, key := range p.TemplateKeys() {
		if skip[key] {
			continue
		}
		objs, err := p.RenderContext(ctx, key, in)
		if err != nil {
			return err
		}
		if err := r.print(p.TemplatePath(key), objs); err != nil {
			return err
		}
	}
	return nil
}

// renderPlan prints the resources of a plan's Apply, Toggle and Delete tasks in the order the
// plan runs them, each rendered for its plan, phase and step, as the daemon renders them but
// without a cluster (applier.RenderOffline). The whole plan renders before anything is printed.
func renderPlan(ctx context.Context, r *objectPrinter, p *manifests.Package, in manifests.RenderInput, planName string) error {
	if !p.HasPlan(planName) {
		return fmt.Errorf("the package has no plan %q (plans: %s)", planName, strings.Join(p.PlanNames(), ", "))
	}
	rp, err := applier.RenderOffline(ctx, p, in.Name, in.Namespace, planName, in.Params)
	if err != nil {
		return err
	}
	for _, t := range rp.Tasks() {
		where := fmt.Sprintf("plan %s, phase %s, step %s, task %s", planName, t.Phase, t.Step, t.Task.Name)
		if t.Action == "" {
			r.comment(fmt.Sprintf("%s: %s task, no objects to render", where, t.Task.Kind))
			continue
		}
		for _, tpl := range t.Templates {
			if err := r.print(fmt.Sprintf("%s (%s, %s)", tpl.Path, where, t.Action), tpl.Objects); err != nil {
				return err
			}
		}
	}
	return nil
}

// objectPrinter writes objects as a YAML stream, each document headed by where it came from.
type objectPrinter struct {
	w io.Writer
}

func (r *objectPrinter) print(source string, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		out, err := sigsyaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("%s: %s/%s: %w", source, o.GetKind(), o.GetName(), err)
		}
		fmt.Fprintf(r.w, "---\n# Source: %s\n%s", source, out)
	}
	return nil
}

func (r *objectPrinter) comment(text string) {
	fmt.Fprintf(r.w, "# %s\n", text)
}
