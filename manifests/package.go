// Package manifests reads, verifies and renders KUDO operator packages and
// kudod instance files. It is the model every later stage works on: sources
// hand it a file tree, the planner compares what it returns, the applier
// renders objects through it.
package manifests

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DefaultAPIVersion is the only API version of operator.yaml and params.yaml KUDO accepts.
const DefaultAPIVersion = "kudo.dev/v1beta1"

// Reserved plan names with meaning to the planner (KUDO's instance_types.go).
const (
	PlanDeploy  = "deploy"
	PlanUpdate  = "update"
	PlanUpgrade = "upgrade"
	PlanCleanup = "cleanup"
)

// Strategies of plans and phases. Unlike KUDO, an empty strategy is serial (KUDO issue #1766).
const (
	StrategySerial   = "serial"
	StrategyParallel = "parallel"
)

// Package is one KUDO operator package: operator.yaml, params.yaml and templates/.
type Package struct {
	// Dir is the package directory within the file tree it was loaded from ("." for the root).
	Dir string
	// Digest identifies the package content: sha256 over every file the package reads.
	Digest string

	APIVersion        string
	Name              string
	Description       string
	OperatorVersion   string
	AppVersion        string
	KudoVersion       string
	KubernetesVersion string
	URL               string
	Maintainers       []Maintainer
	Tasks             []Task
	Plans             map[string]*Plan
	NamespaceManifest string

	ParamsAPIVersion string
	Groups           []ParameterGroup
	Parameters       []*Parameter

	// Templates by key: the path relative to templates/ ("subfolder/statefulset.yaml").
	Templates map[string]*Template

	// Lines of notable keys in operator.yaml and params.yaml, for messages.
	lines fileLines

	renderer *renderer
}

// Maintainer is an entry of operator.yaml's maintainers list.
type Maintainer struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
}

// Task is a named unit of work that steps refer to.
type Task struct {
	Name string
	Kind string
	Spec TaskSpec
	// Line of the task in operator.yaml.
	Line int
}

// TaskSpec holds the fields of every task kind, as KUDO's flat TaskSpec does.
type TaskSpec struct {
	// Apply, Delete, Toggle.
	Resources []string `yaml:"resources"`
	// Toggle.
	Parameter string `yaml:"parameter"`
	// Pipe.
	Pod  string     `yaml:"pod"`
	Pipe []PipeSpec `yaml:"pipe"`
	// KudoOperator.
	Package         string `yaml:"package"`
	InstanceName    string `yaml:"instanceName"`
	AppVersion      string `yaml:"appVersion"`
	OperatorVersion string `yaml:"operatorVersion"`
	ParameterFile   string `yaml:"parameterFile"`
	// Dummy.
	WantErr bool `yaml:"wantErr"`
	Fatal   bool `yaml:"fatal"`
	Done    bool `yaml:"done"`
}

// PipeSpec is one file a Pipe task copies out of its pod into a Secret or ConfigMap.
type PipeSpec struct {
	File    string `yaml:"file"`
	EnvFile string `yaml:"envFile"`
	Kind    string `yaml:"kind"`
	Key     string `yaml:"key"`
}

// Plan is an ordered list of phases.
type Plan struct {
	Name     string
	Strategy string
	Phases   []Phase
	Line     int
}

// Phase is an ordered list of steps.
type Phase struct {
	Name     string
	Strategy string
	Steps    []Step
	Line     int
}

// Step runs its tasks on every pass until all are done.
type Step struct {
	Name  string
	Tasks []string
	Line  int
}

// ParameterGroup is params.yaml's optional grouping metadata.
type ParameterGroup struct {
	Name        string `yaml:"name"`
	DisplayName string `yaml:"displayName"`
	Description string `yaml:"description"`
	Priority    int    `yaml:"prio"`
}

// Template is one file under templates/.
type Template struct {
	// Key is the path relative to templates/, the name tasks refer to.
	Key string
	// Path is the file's path within the file tree the package came from.
	Path    string
	Content string
}

// File names within a package.
const (
	OperatorFileName = "operator.yaml"
	ParamsFileName   = "params.yaml"
	TemplatesDir     = "templates"
)

// PlanNames returns the package's plan names, sorted.
func (p *Package) PlanNames() []string {
	names := slices.Sorted(maps.Keys(p.Plans))
	return names
}

// Task returns the task with the given name, or nil.
func (p *Package) Task(name string) *Task {
	for i := range p.Tasks {
		if p.Tasks[i].Name == name {
			return &p.Tasks[i]
		}
	}
	return nil
}

// Parameter returns the parameter with the given name, or nil.
func (p *Package) Parameter(name string) *Parameter {
	for _, par := range p.Parameters {
		if par.Name == name {
			return par
		}
	}
	return nil
}

// DidYouMean is the hint for a parameter name the package does not define: " (did you mean
// "REPLICAS"?)" when a parameter's name differs from it only in case, the usual slip, else "".
// kudod verify, instance files and kudod render all hint with it.
func (p *Package) DidYouMean(name string) string {
	if s := p.similarParameter(name); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// similarParameter names the parameter whose name differs from name only in case, or "".
func (p *Package) similarParameter(name string) string {
	for _, par := range p.Parameters {
		if strings.EqualFold(par.Name, name) {
			return par.Name
		}
	}
	return ""
}

// HasPlan reports whether the package defines the plan.
func (p *Package) HasPlan(name string) bool {
	_, ok := p.Plans[name]
	return ok
}

// ID is "<name>-<appVersion>-<operatorVersion>", or "<name>-<operatorVersion>" without an
// appVersion: KUDO's OperatorVersion name.
func (p *Package) ID() string {
	if p.AppVersion == "" {
		return p.Name + "-" + p.OperatorVersion
	}
	return p.Name + "-" + p.AppVersion + "-" + p.OperatorVersion
}

// OperatorFilePath is the path of operator.yaml within the package's file tree.
func (p *Package) OperatorFilePath() string { return joinPath(p.Dir, OperatorFileName) }

// ParamsFilePath is the path of params.yaml within the package's file tree.
func (p *Package) ParamsFilePath() string { return joinPath(p.Dir, ParamsFileName) }

// TemplatePath is the path of a template within the package's file tree.
func (p *Package) TemplatePath(key string) string {
	return joinPath(p.Dir, TemplatesDir+"/"+key)
}

func joinPath(dir, name string) string {
	if dir == "" || dir == "." {
		return name
	}
	return dir + "/" + name
}

// fileLines remembers where keys were found, for messages naming a line.
type fileLines struct {
	operator map[string]int // "name", "operatorVersion", "plans", "tasks", ...
	params   map[string]int // "parameters", ...
}
