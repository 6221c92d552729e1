package manifests

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// Instance API versions kudod reads from git.
const (
	InstanceAPIVersion     = "kudod.dev/v1alpha1"
	KUDOInstanceAPIVersion = "kudo.dev/v1beta1"
	InstanceKind           = "Instance"
)

// Instance is one instance document from git: which operator and version, where, and with
// which parameters and schedules.
type Instance struct {
	APIVersion string
	Name       string
	Namespace  string
	Operator   v1alpha1.OperatorRef
	// Parameters as written, typed by how YAML read them.
	Parameters map[string]Value
	// ParameterLines are the lines of each parameter value, for messages.
	ParameterLines map[string]int
	// Decrypted names the parameters whose values were encrypted in git (SOPS): they are
	// sensitive (docs/secrets.md).
	Decrypted       map[string]bool
	Schedules       []v1alpha1.Schedule
	Suspend         bool
	StepTimeout     *time.Duration
	DriftCorrection *bool
	DriftInterval   *time.Duration
	// ParametersFrom, ServiceAccountName, DependsOn, Approval, Windows and OnFailure are
	// spec fields of the same names (instance_policy.go reads them).
	ParametersFrom     []v1alpha1.ParameterSource
	ServiceAccountName string
	DependsOn          []v1alpha1.InstanceRef
	Approval           *v1alpha1.Approval
	Windows            []v1alpha1.Window
	OnFailure          v1alpha1.FailurePolicy

	// File and Line locate the document in the repository.
	File string
	Line int

	// Package is the package the operator reference resolved to (set by the index).
	Package *Package
	// lines of keys within the document, for messages.
	lines map[string]int
}

// Key identifies an instance across a repository: "<namespace>/<name>".
func (in *Instance) Key() string { return in.Namespace + "/" + in.Name }

// ParameterStrings returns the parameter values as KUDO stores them.
func (in *Instance) ParameterStrings() map[string]string {
	out := make(map[string]string, len(in.Parameters))
	for k, v := range in.Parameters {
		out[k] = v.Text
	}
	return out
}

func (in *Instance) line(key string) int {
	if l, ok := in.lines[key]; ok {
		return l
	}
	return in.Line
}

// allowed keys per level of a kudod Instance document; unknown keys are errors, so a typo
// ("shedules") never silently does nothing.
var instanceKeys = map[string][]string{
	"":                          {"apiVersion", "kind", "metadata", "spec", "status"},
	"metadata":                  {"name", "namespace", "labels", "annotations"},
	"spec":                      {"operator", "parameters", "schedules", "suspend", "stepTimeout", "driftCorrection", "driftInterval", "parametersFrom", "serviceAccountName", "dependsOn", "approval", "windows", "onFailure"},
	"spec.operator":             {"name", "version", "appVersion"},
	"spec.schedules[]":          {"name", "plan", "cron", "timeZone", "concurrencyPolicy", "startingDeadlineSeconds", "suspend", "parameters"},
	"spec.parametersFrom[]":     {"kind", "name", "key", "parameter", "optional"},
	"spec.dependsOn[]":          {"name", "namespace"},
	"spec.approval":             {"plans"},
	"spec.windows[]":            {"schedule", "duration", "timeZone", "kind", "scheduled"},
	"kudo:spec":                 {"operatorVersion", "parameters", "planExecution"},
	"kudo:spec.operatorVersion": {"name", "namespace", "kind", "apiVersion"},
}

// parseInstance reads one Instance document. It returns the instance with whatever could be
// read (identity first, so a broken instance is still known by namespace and name) and the
// problems found.
func parseInstance(file string, doc *yaml.Node, apiVersion string) (*Instance, Findings) {
	in := &Instance{APIVersion: apiVersion, File: file, Line: doc.Line, lines: map[string]int{}, ParameterLines: map[string]int{}}
	var fs Findings
	kudo := apiVersion == KUDOInstanceAPIVersion
	fs = append(fs, checkKeys(file, doc, "", instanceKeys[""])...)

	meta := mappingValue(doc, "metadata")
	if meta == nil || meta.Kind != yaml.MappingNode {
		fs = append(fs, errorf(file, doc.Line, "Instance without metadata"))
	} else {
		fs = append(fs, checkKeys(file, meta, "metadata", instanceKeys["metadata"])...)
		in.Name, fs = scalarField(file, meta, "name", "metadata.name", fs)
		in.Namespace, fs = scalarField(file, meta, "namespace", "metadata.namespace", fs)
		in.lines["metadata.name"] = keyLine(meta, "name", meta.Line)
		in.lines["metadata.namespace"] = keyLine(meta, "namespace", meta.Line)
	}
	if in.Name == "" {
		fs = append(fs, errorf(file, in.line("metadata.name"), "metadata.name is required"))
	} else if errs := validation.IsDNS1123Label(in.Name); len(errs) > 0 {
		fs = append(fs, errorf(file, in.line("metadata.name"), "metadata.name %q is not a valid name: %s", in.Name, strings.Join(errs, "; ")))
	}
	if in.Namespace == "" {
		fs = append(fs, errorf(file, in.line("metadata.namespace"), "metadata.namespace is required"))
	} else if errs := validation.IsDNS1123Label(in.Namespace); len(errs) > 0 {
		fs = append(fs, errorf(file, in.line("metadata.namespace"), "metadata.namespace %q is not a valid namespace name: %s", in.Namespace, strings.Join(errs, "; ")))
	}

	spec := mappingValue(doc, "spec")
	if spec == nil || spec.Kind != yaml.MappingNode {
		fs = append(fs, errorf(file, doc.Line, "Instance %s/%s without spec", in.Namespace, in.Name))
		return in, fs
	}
	if kudo {
		fs = append(fs, in.parseKUDOSpec(file, spec)...)
	} else {
		fs = append(fs, in.parseSpec(file, spec)...)
	}
	return in, fs
}

func (in *Instance) parseSpec(file string, spec *yaml.Node) Findings {
	fs := checkKeys(file, spec, "spec", instanceKeys["spec"])
	op := mappingValue(spec, "operator")
	if op == nil || op.Kind != yaml.MappingNode {
		fs = append(fs, errorf(file, keyLine(spec, "operator", spec.Line), "spec.operator is required: name the package (and optionally version, appVersion)"))
	} else {
		fs = append(fs, checkKeys(file, op, "spec.operator", instanceKeys["spec.operator"])...)
		in.Operator.Name, fs = scalarField(file, op, "name", "spec.operator.name", fs)
		in.Operator.Version, fs = scalarField(file, op, "version", "spec.operator.version", fs)
		in.Operator.AppVersion, fs = scalarField(file, op, "appVersion", "spec.operator.appVersion", fs)
		in.lines["spec.operator"] = keyLine(spec, "operator", spec.Line)
		if in.Operator.Name == "" {
			fs = append(fs, errorf(file, op.Line, "spec.operator.name is required"))
		}
	}
	if p := mappingValue(spec, "parameters"); p != nil && !isNull(p) {
		if p.Kind != yaml.MappingNode {
			fs = append(fs, errorf(file, p.Line, "spec.parameters must be a mapping of parameter names to values"))
		} else {
			in.Parameters = map[string]Value{}
			for i := 0; i+1 < len(p.Content); i += 2 {
				k, v := p.Content[i], p.Content[i+1]
				val, ok, err := ValueFromNode(v)
				switch {
				case err != nil:
					fs = append(fs, errorf(file, v.Line, "spec.parameters.%s: %v", k.Value, err))
				case !ok:
					fs = append(fs, errorf(file, v.Line, "spec.parameters.%s: null is not a value; remove the key to use the default", k.Value))
				default:
					in.Parameters[k.Value] = val
					in.ParameterLines[k.Value] = v.Line
				}
			}
		}
	}
	if s := mappingValue(spec, "schedules"); s != nil && !isNull(s) {
		fs = append(fs, in.parseSchedules(file, s)...)
	}
	if n := mappingValue(spec, "suspend"); n != nil {
		if err := n.Decode(&in.Suspend); err != nil {
			fs = append(fs, errorf(file, n.Line, "spec.suspend: %q is not a boolean", n.Value))
		}
	}
	if n := mappingValue(spec, "driftCorrection"); n != nil {
		var b bool
		if err := n.Decode(&b); err != nil {
			fs = append(fs, errorf(file, n.Line, "spec.driftCorrection: %q is not a boolean", n.Value))
		} else {
			in.DriftCorrection = &b
		}
	}
	var f *Finding
	if in.DriftInterval, f = durationField(file, spec, "driftInterval"); f != nil {
		fs = append(fs, *f)
	}
	if in.StepTimeout, f = durationField(file, spec, "stepTimeout"); f != nil {
		fs = append(fs, *f)
	}
	fs = append(fs, in.parsePolicy(file, spec)...)
	return fs
}

// parseKUDOSpec reads KUDO's own Instance: spec.operatorVersion.name is
// "<name>-<appVersion>-<operatorVersion>" (resolved against the repository's packages later)
// and spec.parameters is a string map.
func (in *Instance) parseKUDOSpec(file string, spec *yaml.Node) Findings {
	fs := checkKeys(file, spec, "spec", instanceKeys["kudo:spec"])
	ov := mappingValue(spec, "operatorVersion")
	if ov == nil || ov.Kind != yaml.MappingNode {
		fs = append(fs, errorf(file, keyLine(spec, "operatorVersion", spec.Line), "spec.operatorVersion.name is required in a %s Instance", KUDOInstanceAPIVersion))
	} else {
		var name string
		name, fs = scalarField(file, ov, "name", "spec.operatorVersion.name", fs)
		in.lines["spec.operator"] = keyLine(spec, "operatorVersion", spec.Line)
		if name == "" {
			fs = append(fs, errorf(file, ov.Line, "spec.operatorVersion.name is required"))
		}
		// Resolved by the index: the name holds the package ID.
		in.Operator.Name = name
		in.Operator.Version = kudoOperatorVersionMarker
	}
	if p := mappingValue(spec, "parameters"); p != nil && !isNull(p) {
		if p.Kind != yaml.MappingNode {
			fs = append(fs, errorf(file, p.Line, "spec.parameters must be a mapping of parameter names to strings"))
		} else {
			in.Parameters = map[string]Value{}
			for i := 0; i+1 < len(p.Content); i += 2 {
				k, v := p.Content[i], p.Content[i+1]
				if v.Kind != yaml.ScalarNode || isNull(v) {
					fs = append(fs, errorf(file, v.Line, "spec.parameters.%s: a %s Instance holds string values", k.Value, KUDOInstanceAPIVersion))
					continue
				}
				// KUDO stores every value as a string; its meaning comes from the declared type.
				in.Parameters[k.Value] = StringValue(v.Value)
				in.ParameterLines[k.Value] = v.Line
			}
		}
	}
	return fs
}

// kudoOperatorVersionMarker marks an operator reference that holds a KUDO OperatorVersion name.
const kudoOperatorVersionMarker = "\x00kudo"

func (in *Instance) parseSchedules(file string, s *yaml.Node) Findings {
	seen := map[string]int{}
	return eachMapping(file, s, "spec.schedules", func(field string, n *yaml.Node) Findings {
		var fs Findings
		var sc v1alpha1.Schedule
		sc.Name, fs = scalarField(file, n, "name", field+".name", fs)
		sc.Plan, fs = scalarField(file, n, "plan", field+".plan", fs)
		sc.Cron, fs = scalarField(file, n, "cron", field+".cron", fs)
		sc.TimeZone, fs = scalarField(file, n, "timeZone", field+".timeZone", fs)
		var policy string
		policy, fs = scalarField(file, n, "concurrencyPolicy", field+".concurrencyPolicy", fs)
		sc.ConcurrencyPolicy = v1alpha1.ConcurrencyPolicy(policy)
		if v := mappingValue(n, "startingDeadlineSeconds"); v != nil {
			d, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil || d < 0 {
				fs = append(fs, errorf(file, v.Line, "%s.startingDeadlineSeconds: %q is not a non-negative integer", field, v.Value))
			} else {
				sc.StartingDeadlineSeconds = &d
			}
		}
		if v := mappingValue(n, "suspend"); v != nil {
			if err := v.Decode(&sc.Suspend); err != nil {
				fs = append(fs, errorf(file, v.Line, "%s.suspend: %q is not a boolean", field, v.Value))
			}
		}
		if v := mappingValue(n, "parameters"); v != nil && !isNull(v) {
			var f Findings
			sc.Parameters, f = stringMap(file, v, field+".parameters")
			fs = append(fs, f...)
		}
		if sc.Name == "" {
			fs = append(fs, errorf(file, n.Line, "%s.name is required", field))
		} else if errs := validation.IsDNS1123Label(sc.Name); len(errs) > 0 {
			fs = append(fs, errorf(file, keyLine(n, "name", n.Line), "%s.name %q is not a valid name: %s", field, sc.Name, strings.Join(errs, "; ")))
		} else if prev, dup := seen[sc.Name]; dup {
			fs = append(fs, errorf(file, keyLine(n, "name", n.Line), "%s.name: duplicate schedule name %q (first at line %d)", field, sc.Name, prev))
		} else {
			seen[sc.Name] = keyLine(n, "name", n.Line)
		}
		if sc.Plan == "" {
			fs = append(fs, errorf(file, n.Line, "%s.plan is required", field))
		} else if sc.Plan == PlanCleanup {
			fs = append(fs, errorf(file, keyLine(n, "plan", n.Line), "%s.plan: the cleanup plan cannot be scheduled", field))
		}
		if sc.Cron == "" {
			fs = append(fs, errorf(file, n.Line, "%s.cron is required", field))
		} else if err := CheckCron(sc.Cron, sc.TimeZone, time.Now()); err != nil {
			fs = append(fs, errorf(file, keyLine(n, "cron", n.Line), "%s.cron: %v", field, err))
		}
		if sc.TimeZone != "" {
			if _, err := time.LoadLocation(sc.TimeZone); err != nil {
				fs = append(fs, errorf(file, keyLine(n, "timeZone", n.Line), "%s.timeZone: unknown time zone %q", field, sc.TimeZone))
			}
		}
		switch sc.ConcurrencyPolicy {
		case "", v1alpha1.ForbidConcurrent, v1alpha1.ReplaceConcurrent:
		default:
			fs = append(fs, errorf(file, keyLine(n, "concurrencyPolicy", n.Line), "%s.concurrencyPolicy: %q is not Forbid or Replace", field, policy))
		}
		in.Schedules = append(in.Schedules, sc)
		in.lines[field] = n.Line
		in.lines[field+".plan"] = keyLine(n, "plan", n.Line)
		return fs
	})
}

// durationField reads spec.<key> as a positive duration: nil when the key is absent, and a
// finding when its value is not one.
func durationField(file string, spec *yaml.Node, key string) (*time.Duration, *Finding) {
	n := mappingValue(spec, key)
	if n == nil {
		return nil, nil
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || d <= 0 {
		f := errorf(file, n.Line, "spec.%s: %q is not a positive duration such as 10m", key, n.Value)
		return nil, &f
	}
	return &d, nil
}

// ParseCron parses a 5-field cron expression or a descriptor (@daily, @hourly, ...), as
// Kubernetes CronJobs accept them. Time zones belong in the timeZone field, not in the expression.
func ParseCron(expr string) (cron.Schedule, error) {
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, fmt.Errorf("%q: set the time zone in timeZone, not in the expression", expr)
	}
	if strings.HasPrefix(expr, "@every") || expr == "@reboot" {
		return nil, fmt.Errorf("%q: not supported; use a 5-field expression or @yearly, @monthly, @weekly, @daily, @hourly", expr)
	}
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid cron expression: %w", expr, err)
	}
	return s, nil
}

// checkKeys reports keys of a mapping that are not among the allowed ones.
func checkKeys(file string, m *yaml.Node, field string, allowed []string) Findings {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	var fs Findings
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		ok := false
		for _, a := range allowed {
			if k.Value == a {
				ok = true
				break
			}
		}
		if !ok {
			where := "top level"
			if field != "" {
				where = field
			}
			sorted := append([]string(nil), allowed...)
			sort.Strings(sorted)
			fs = append(fs, errorf(file, k.Line, "%s: unknown field %q (known: %s)", where, k.Value, strings.Join(sorted, ", ")))
		}
	}
	return fs
}

// scalarField reads a string field of a mapping; a non-scalar value is a finding.
func scalarField(file string, m *yaml.Node, key, field string, fs Findings) (string, Findings) {
	v := mappingValue(m, key)
	if v == nil || isNull(v) {
		return "", fs
	}
	if v.Kind != yaml.ScalarNode {
		return "", append(fs, errorf(file, v.Line, "%s must be a string", field))
	}
	return v.Value, fs
}

func keyLine(m *yaml.Node, key string, fallback int) int {
	if m == nil {
		return fallback
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return fallback
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }
