package manifests

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Verify checks a loaded package the way `kubectl kudo package verify` does (docs/operators.md,
// Checking a package), plus checks KUDO lacked where a mistake would otherwise surface only
// while a plan runs. Errors make the package unusable; warnings are advice. Every finding names
// the file and, where known, the line. The result is sorted. Templates render within the
// default render limits.
func Verify(p *Package) Findings {
	return VerifyContext(context.Background(), p)
}

// VerifyContext is Verify as one package render under ctx: every template it renders counts
// against one budget (RenderLimits, set with WithRenderLimits), and the render stops when ctx ends.
func VerifyContext(ctx context.Context, p *Package) Findings {
	ctx, done := StartRender(ctx)
	defer done()
	v := &verifier{ctx: ctx, p: p}
	v.parameters()
	v.versions()
	v.tasks()
	v.plans()
	v.templates()
	return v.result()
}

// verifier collects the findings of one Verify.
type verifier struct {
	ctx      context.Context
	p        *Package
	input    RenderInput // the dummy instance templates are rendered for
	findings Findings
	// refsIncomplete is set when a template does not parse, so what it uses is unknown.
	refsIncomplete bool
}

func (v *verifier) errorf(file string, line int, format string, args ...any) {
	v.findings = append(v.findings, errorf(file, line, format, args...))
}

func (v *verifier) warnf(file string, line int, format string, args ...any) {
	v.findings = append(v.findings, warnf(file, line, format, args...))
}

// result sorts the findings and drops exact repetitions (a template used by two tasks is
// checked once, but a missing one is reported per task line).
func (v *verifier) result() Findings {
	v.findings.Sort()
	out := v.findings[:0]
	for i, f := range v.findings {
		if i > 0 && f == v.findings[i-1] {
			continue
		}
		out = append(out, f)
	}
	return out
}

func (v *verifier) opLine(key string) int { return v.p.lines.operator[key] }

func (v *verifier) paramsLine(key string) int { return v.p.lines.params[key] }

// versions: operatorVersion and kubernetesVersion are required, every version is semver
// (Masterminds semver v3, lenient as KUDO's: "1.13" and "v1.2.3" are accepted).
func (v *verifier) versions() {
	file := v.p.OperatorFilePath()
	if v.p.Name == "" {
		// KUDO did not check it; kudod indexes packages by name and names objects after it.
		v.errorf(file, v.opLine("name"), `"name" is required`)
	}
	for _, f := range []struct {
		key, value string
		required   bool
	}{
		{"operatorVersion", v.p.OperatorVersion, true},
		{"kubernetesVersion", v.p.KubernetesVersion, true},
		{"appVersion", v.p.AppVersion, false},
		{"kudoVersion", v.p.KudoVersion, false},
	} {
		switch {
		case f.value == "" && f.required:
			v.errorf(file, v.opLine(f.key), "%q is required and must be semver", f.key)
		case f.value != "":
			if _, err := semver.NewVersion(f.value); err != nil {
				v.errorf(file, v.opLine(f.key), "%s %q is not semver: %v", f.key, f.value, err)
			}
		}
	}
}

// tasks: names unique and set, and each task buildable as KUDO's task.Build requires.
func (v *verifier) tasks() {
	file := v.p.OperatorFilePath()
	seen := map[string]int{}
	for _, t := range v.p.Tasks {
		if t.Name == "" {
			v.errorf(file, t.Line, "task without a name")
		} else if first, dup := seen[t.Name]; dup {
			v.errorf(file, t.Line, "task %q is defined twice (first at line %d)", t.Name, first)
		} else {
			seen[t.Name] = t.Line
		}
		v.taskSpec(file, t)
		if t.Kind == TaskKudoOperator && resolveChild([]*Package{v.p}, t.Spec.OperatorVersion, t.Spec.AppVersion) != nil && t.Spec.Package == v.p.Name {
			v.errorf(file, t.Line, "KudoOperator task %q names the package itself: each instance would create another without end", t.Name)
		}
	}
}

func (v *verifier) taskSpec(file string, t Task) {
	k := t.kind()
	switch {
	case k != nil && k.check != nil:
		for _, problem := range k.check(&t) {
			v.errorf(file, t.Line, "%s", problem)
		}
	case k != nil:
	case t.Kind == "":
		v.errorf(file, t.Line, "task %q has no kind (%s)", t.Name, strings.Join(taskKindNames(), ", "))
	default:
		v.errorf(file, t.Line, "task %q has unknown kind %q (%s)", t.Name, t.Kind, strings.Join(taskKindNames(), ", "))
	}
}

// plans: a deploy plan exists; plan, phase and step names are set and unique within their
// parent; strategies are serial or parallel; steps name defined tasks; every task is used; a
// pipe key is produced once per plan.
func (v *verifier) plans() {
	file := v.p.OperatorFilePath()
	if !v.p.HasPlan(PlanDeploy) {
		v.errorf(file, v.opLine("plans"), "operator has no %q plan: every package must have one", PlanDeploy)
	}
	used := map[string]bool{}
	for _, name := range v.p.PlanNames() {
		plan := v.p.Plans[name]
		if name == "" {
			v.errorf(file, plan.Line, "plan without a name")
		}
		v.strategy(file, plan.Line, fmt.Sprintf("plan %q", name), plan.Strategy, len(plan.Phases), "phases")
		phases := map[string]int{}
		for _, ph := range plan.Phases {
			where := fmt.Sprintf("plan %q phase %q", name, ph.Name)
			if ph.Name == "" {
				v.errorf(file, ph.Line, "plan %q has a phase without a name", name)
			} else if first, dup := phases[ph.Name]; dup {
				v.errorf(file, ph.Line, "plan %q has two phases named %q (first at line %d)", name, ph.Name, first)
			} else {
				phases[ph.Name] = ph.Line
			}
			v.strategy(file, ph.Line, where, ph.Strategy, len(ph.Steps), "steps")
			steps := map[string]int{}
			for _, st := range ph.Steps {
				if st.Name == "" {
					v.errorf(file, st.Line, "%s has a step without a name", where)
				} else if first, dup := steps[st.Name]; dup {
					v.errorf(file, st.Line, "%s has two steps named %q (first at line %d)", where, st.Name, first)
				} else {
					steps[st.Name] = st.Line
				}
				for _, tn := range st.Tasks {
					used[tn] = true
					if v.p.Task(tn) == nil {
						v.errorf(file, st.Line, "task %q in plan %q (phase %q, step %q) is not defined", tn, name, ph.Name, st.Name)
					}
				}
			}
		}
		keys := map[string]PipeRef{}
		for _, r := range v.p.PipeRefs(name) {
			if first, dup := keys[r.Key]; dup && r.Key != "" {
				v.errorf(file, plan.Line, "plan %q produces pipe key %q twice (tasks %q and %q)", name, r.Key, first.Task, r.Task)
			}
			keys[r.Key] = r
		}
	}
	for _, t := range v.p.Tasks {
		if t.Name != "" && !used[t.Name] {
			v.warnf(file, t.Line, "task %q defined but not used", t.Name)
		}
	}
}

// strategy checks a plan's or phase's strategy. kudod runs an unset strategy serially
// (docs/design.md, Running a plan) where KUDO ran it in parallel (KUDO #1766): worth a warning
// only when there is more than one child, since that is when the two differ.
func (v *verifier) strategy(file string, line int, where, strategy string, children int, what string) {
	switch strategy {
	case StrategySerial, StrategyParallel:
	case "":
		if children > 1 {
			v.warnf(file, line, "%s has no strategy: kudod runs its %d %s one after another (serial), KUDO ran them in parallel", where, children, what)
		}
	default:
		v.errorf(file, line, "%s has strategy %q: only %q and %q are supported", where, strategy, StrategySerial, StrategyParallel)
	}
}

// sortedKeys returns the keys of a map, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := slices.Sorted(maps.Keys(m))
	return out
}
