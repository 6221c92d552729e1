package manifests

import (
	"fmt"
	"regexp"
)

// Task kinds.
const (
	TaskApply        = "Apply"
	TaskDelete       = "Delete"
	TaskToggle       = "Toggle"
	TaskPipe         = "Pipe"
	TaskKudoOperator = "KudoOperator"
	TaskDummy        = "Dummy"
)

// TemplateRole is what a task uses a template for.
type TemplateRole int

// Template roles.
const (
	// RoleResource: the template renders objects the task applies or deletes.
	RoleResource TemplateRole = iota
	// RolePipePod: the template renders the pod of a Pipe task, run and then deleted.
	RolePipePod
	// RoleParameterFile: the template renders a KudoOperator task's child parameters, a YAML map.
	RoleParameterFile
)

// TaskTemplate is a template a task names.
type TaskTemplate struct {
	Key  string
	Role TemplateRole
}

// taskKind is what the package model knows about one task kind: what its spec must hold and
// which templates it names. Running a kind is the applier's (applier/task_<kind>.go).
type taskKind struct {
	name string
	// check returns what is wrong with a task's spec, as KUDO's task.Build rejected it.
	check func(t *Task) []string
	// templates are the templates a task names.
	templates func(t *Task) []TaskTemplate
}

// taskKinds are the task kinds a package may use, in the order messages list them.
var taskKinds = []taskKind{
	{name: TaskApply, check: checkResources, templates: resourceTemplates},
	{name: TaskDelete, check: checkResources, templates: resourceTemplates},
	{name: TaskToggle, check: checkToggle, templates: resourceTemplates},
	{name: TaskPipe, check: checkPipe, templates: func(t *Task) []TaskTemplate {
		return []TaskTemplate{{Key: t.Spec.Pod, Role: RolePipePod}}
	}},
	{name: TaskKudoOperator, check: checkKudoOperator, templates: func(t *Task) []TaskTemplate {
		return []TaskTemplate{{Key: t.Spec.ParameterFile, Role: RoleParameterFile}}
	}},
	{name: TaskDummy},
}

// kind returns what is known about the task's kind, nil when the kind is unknown.
func (t *Task) kind() *taskKind {
	for i := range taskKinds {
		if taskKinds[i].name == t.Kind {
			return &taskKinds[i]
		}
	}
	return nil
}

// Templates returns the templates the task names, in order (a name may be empty when the spec
// lacks it; Verify reports that).
func (t *Task) Templates() []TaskTemplate {
	k := t.kind()
	if k == nil || k.templates == nil {
		return nil
	}
	return k.templates(t)
}

func taskKindNames() []string {
	names := make([]string, 0, len(taskKinds))
	for _, k := range taskKinds {
		names = append(names, k.name)
	}
	return names
}

func resourceTemplates(t *Task) []TaskTemplate {
	out := make([]TaskTemplate, 0, len(t.Spec.Resources))
	for _, r := range t.Spec.Resources {
		out = append(out, TaskTemplate{Key: r, Role: RoleResource})
	}
	return out
}

func checkResources(t *Task) []string {
	if len(t.Spec.Resources) == 0 {
		return []string{fmt.Sprintf("task %q (%s) has no resources", t.Name, t.Kind)}
	}
	return nil
}

func checkToggle(t *Task) []string {
	problems := checkResources(t)
	if t.Spec.Parameter == "" {
		problems = append(problems, fmt.Sprintf("task %q (Toggle) has no parameter", t.Name))
	}
	return problems
}

// pipeKeyPattern is what KUDO accepts as a pipe key (task_pipe.go).
var pipeKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9_\-]+$`)

func checkPipe(t *Task) []string {
	var problems []string
	s := t.Spec
	if s.Pod == "" {
		problems = append(problems, fmt.Sprintf("task %q (Pipe) has no pod template", t.Name))
	}
	if len(s.Pipe) == 0 {
		problems = append(problems, fmt.Sprintf("task %q (Pipe) has no pipe files", t.Name))
	}
	for i, pf := range s.Pipe {
		if (pf.File == "") == (pf.EnvFile == "") {
			problems = append(problems, fmt.Sprintf("task %q (Pipe) pipe %d must set exactly one of file and envFile", t.Name, i+1))
		}
		if pf.Kind != "Secret" && pf.Kind != "ConfigMap" {
			problems = append(problems, fmt.Sprintf("task %q (Pipe) pipe %d has kind %q: only Secret and ConfigMap are supported", t.Name, i+1, pf.Kind))
		}
		if !pipeKeyPattern.MatchString(pf.Key) {
			problems = append(problems, fmt.Sprintf("task %q (Pipe) pipe %d has key %q, which does not match %s", t.Name, i+1, pf.Key, pipeKeyPattern))
		}
	}
	return problems
}

func checkKudoOperator(t *Task) []string {
	if t.Spec.Package == "" {
		return []string{fmt.Sprintf("task %q (KudoOperator) has no package", t.Name)}
	}
	return nil
}
