package manifests

import (
	"regexp"
	"strings"
)

// PipeRef is one pipe key of a plan: the Pipe task that produces it and where in the plan it runs.
type PipeRef struct {
	Key   string
	Kind  string // Secret or ConfigMap
	Plan  string
	Phase string
	Step  string
	Task  string
}

// PipeRefs returns the pipe keys the Pipe tasks of a plan produce, in plan order. A key produced
// twice in one plan is returned twice (Verify reports it; KUDO failed the plan at run time).
func (p *Package) PipeRefs(plan string) []PipeRef {
	pl, ok := p.Plans[plan]
	if !ok {
		return nil
	}
	var out []PipeRef
	for _, ph := range pl.Phases {
		for _, st := range ph.Steps {
			for _, tn := range st.Tasks {
				t := p.Task(tn)
				if t == nil || t.Kind != TaskPipe {
					continue
				}
				for _, pipe := range t.Spec.Pipe {
					out = append(out, PipeRef{Key: pipe.Key, Kind: pipe.Kind, Plan: plan, Phase: ph.Name, Step: st.Name, Task: t.Name})
				}
			}
		}
	}
	return out
}

// Pipes maps the pipe keys of a plan to the names of their Secrets or ConfigMaps for an
// instance: the .Pipes variable of the plan's templates (RenderInput.Pipes).
func (p *Package) Pipes(instance, plan string) map[string]string {
	out := map[string]string{}
	for _, r := range p.PipeRefs(plan) {
		if _, dup := out[r.Key]; !dup {
			out[r.Key] = PipeArtifactName(instance, r)
		}
	}
	return out
}

var nonAlnum = regexp.MustCompile(`[^a-z0-9]+`)

// PipeArtifactName is the name of the Secret or ConfigMap a pipe key becomes, as KUDO names it
// (task_pipe.go): <instance>.<plan>.<phase>.<step>.<task>.<key>, each part lower-cased with
// everything but letters and digits removed, so the name is a valid DNS subdomain.
func PipeArtifactName(instance string, r PipeRef) string {
	return pipeName(instance, r, r.Key)
}

// PipePodName is the name of the pod a Pipe task runs, as KUDO names it:
// <instance>.<plan>.<phase>.<step>.<task>.pipepod.
func PipePodName(instance string, r PipeRef) string {
	return pipeName(instance, r, "pipepod")
}

func pipeName(instance string, r PipeRef, suffix string) string {
	parts := []string{instance, r.Plan, r.Phase, r.Step, r.Task, suffix}
	for i, s := range parts {
		parts[i] = nonAlnum.ReplaceAllString(strings.ToLower(s), "")
	}
	return strings.Join(parts, ".")
}
