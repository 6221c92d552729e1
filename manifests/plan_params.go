package manifests

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"
)

// ScopePlan is the scope of a parameter only a run sets (`scope: plan` in params.yaml, a field
// KUDO's loader ignores): `kudod trigger -p` and a schedule's parameters give it a value for
// one execution; instance files may not (docs/recovery.md, Plan-scoped parameters).
const ScopePlan = "plan"

// Bounds on the plan-scoped values of one run: they travel in an annotation and are recorded
// in the Instance's status.
const (
	MaxPlanParameters    = 64
	MaxPlanParameterSize = 16 << 10
)

// PlanScoped reports whether only runs set the parameter.
func (p *Parameter) PlanScoped() bool { return p.Scope == ScopePlan }

// parameterScope checks a parameter's scope.
func (v *verifier) parameterScope(file string, par *Parameter) {
	switch par.Scope {
	case "", ScopePlan:
	default:
		v.errorf(file, par.Line, "parameter %q has unknown scope %q (plan, or no scope for a parameter of the instance)", par.Name, par.Scope)
		return
	}
	if !par.PlanScoped() {
		return
	}
	if par.Immutable {
		v.errorf(file, par.Line, "parameter %q is plan-scoped and immutable: a value set for one run cannot also be fixed at install", par.Name)
	}
	if par.Trigger != "" {
		v.warnf(file, par.Line, "parameter %q is plan-scoped: instance files never set it, so its trigger %q never fires", par.Name, par.Trigger)
	}
}

// ValidatePlanParameters checks the values given for one run against params.yaml, as
// instance files are checked: every name a parameter of the package, every value valid for
// its type and enum, immutable parameters left alone. Values of sensitive parameters never
// appear in the error.
func (p *Package) ValidatePlanParameters(values map[string]string) error {
	if len(values) > MaxPlanParameters {
		return fmt.Errorf("%d plan-scoped parameters: at most %d may be set for one run", len(values), MaxPlanParameters)
	}
	names := slices.Sorted(maps.Keys(values))
	var errs []error
	for _, n := range names {
		v := values[n]
		par := p.Parameter(n)
		switch {
		case par == nil:
			errs = append(errs, fmt.Errorf("parameter %s: unknown parameter for %s %s%s", n, p.Name, p.OperatorVersion, p.DidYouMean(n)))
		case len(v) > MaxPlanParameterSize:
			errs = append(errs, fmt.Errorf("parameter %s: the value has %d bytes, more than the %d a run's parameter may have", n, len(v), MaxPlanParameterSize))
		case par.Immutable:
			errs = append(errs, fmt.Errorf("parameter %s is immutable: it cannot be set for one run", n))
		default:
			if err := par.ValidateValue(StringValue(v)); err != nil {
				errs = append(errs, fmt.Errorf("parameter %s: %s", n, maskError(par.IsSensitive(), v, err)))
			}
		}
	}
	return errors.Join(errs...)
}

// ScheduleValueInput holds what a schedule's parameter value may use: the time the run is
// scheduled for (in the schedule's time zone) and the instance's name and namespace.
type ScheduleValueInput struct {
	ScheduledTime time.Time
	Name          string
	Namespace     string
}

// maxScheduleValueOutput bounds what the template of one schedule parameter may render.
const maxScheduleValueOutput = MaxPlanParameterSize

// scheduleValueLimits bound rendering one schedule parameter's value.
var scheduleValueLimits = RenderLimits{Timeout: time.Second, MaxOutput: maxScheduleValueOutput, MaxAlloc: 1 << 20, MaxSteps: 10_000, MaxDepth: 10}

// scheduleFuncs is the templates' function map with `date` formatting a time in its own time
// zone (the schedule's), not the daemon's as sprig's does.
var scheduleFuncs = sync.OnceValue(func() template.FuncMap {
	fm := template.FuncMap{}
	for k, f := range funcMap() {
		fm[k] = f
	}
	sprigDate := fm["date"].(func(string, any) string)
	fm["date"] = func(layout string, t any) string {
		switch d := t.(type) {
		case time.Time:
			return d.Format(layout)
		case *time.Time:
			return d.Format(layout)
		}
		return sprigDate(layout, t)
	}
	return fm
})

// IsTemplateValue reports whether a schedule parameter's value is a template.
func IsTemplateValue(text string) bool { return strings.Contains(text, "{{") }

// ParseScheduleValue checks that a schedule parameter's value parses as a template.
func ParseScheduleValue(text string) error {
	if _, err := template.New("value").Option("missingkey=error").Funcs(scheduleFuncs()).Parse(text); err != nil {
		return cleanExecError(err)
	}
	return nil
}

// RenderScheduleValue renders a schedule parameter's value with the same restricted
// functions as package templates: `{{ .ScheduledTime | date "20060102-1504" }}`, .Name and
// .Namespace. A value without "{{" is returned as it is.
func RenderScheduleValue(text string, in ScheduleValueInput) (out string, err error) {
	if !IsTemplateValue(text) {
		return text, nil
	}
	t, err := template.New("value").Option("missingkey=error").Funcs(scheduleFuncs()).Parse(text)
	if err != nil {
		return "", cleanExecError(err)
	}
	// The value comes from git, like a package's templates: it renders within a budget of its
	// own, small one (docs/design.md, Limits).
	m := instrument("value", text, t)
	b := newBudget(context.Background(), scheduleValueLimits)
	fm := (&slot{b: b}).funcs()
	fm["date"] = scheduleFuncs()["date"]
	t = t.Funcs(fm)
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("render failed: %v", r)
		}
	}()
	buf := cappedBuffer{b: b, marks: m}
	vars := map[string]any{"ScheduledTime": in.ScheduledTime, "Name": in.Name, "Namespace": in.Namespace}
	if err := t.Execute(&buf, vars); err != nil {
		return "", cleanExecError(err)
	}
	if buf.Len() > maxScheduleValueOutput {
		return "", fmt.Errorf("the value renders to %d bytes, more than %d", buf.Len(), maxScheduleValueOutput)
	}
	return buf.String(), nil
}

// validateScheduleParameters checks the parameters of an instance's schedules: known names,
// templates that parse, and values that are no template valid for their parameter (a
// template's value is checked when the run renders it).
func validateScheduleParameters(in *Instance, p *Package) Findings {
	var fs Findings
	for i, sc := range in.Schedules {
		field := fmt.Sprintf("spec.schedules[%d].parameters", i)
		line := in.line(fmt.Sprintf("spec.schedules[%d]", i))
		if len(sc.Parameters) > MaxPlanParameters {
			fs = append(fs, errorf(in.File, line, "%s: %d parameters, at most %d", field, len(sc.Parameters), MaxPlanParameters))
			continue
		}
		literal := map[string]string{}
		names := slices.Sorted(maps.Keys(sc.Parameters))
		for _, n := range names {
			v := sc.Parameters[n]
			if !IsTemplateValue(v) {
				literal[n] = v
				continue
			}
			if p.Parameter(n) == nil {
				literal[n] = v // reported as unknown below
				continue
			}
			if err := ParseScheduleValue(v); err != nil {
				fs = append(fs, errorf(in.File, line, "%s.%s: %v", field, n, err))
			}
		}
		if err := p.ValidatePlanParameters(literal); err != nil {
			for _, e := range splitJoined(err) {
				fs = append(fs, errorf(in.File, line, "%s: %v", field, e))
			}
		}
	}
	return fs
}

// splitJoined returns the errors errors.Join joined, or err alone.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
