package manifests

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// parsePolicy reads the spec fields that say where values come from, whose rights a plan
// uses and when it may run: parametersFrom, serviceAccountName, dependsOn, approval, windows
// and onFailure. Each is checked for form here; what it refers to (a package's plans and
// parameters, other instances) is checked by the index and the planner.
func (in *Instance) parsePolicy(file string, spec *yaml.Node) Findings {
	var fs Findings
	if n := mappingValue(spec, "parametersFrom"); n != nil && !isNull(n) {
		fs = append(fs, in.parseParametersFrom(file, n)...)
	}
	if n := mappingValue(spec, "serviceAccountName"); n != nil && !isNull(n) {
		in.ServiceAccountName = n.Value
		if n.Kind != yaml.ScalarNode {
			fs = append(fs, errorf(file, n.Line, "spec.serviceAccountName must be a name"))
		} else if errs := validation.IsDNS1123Subdomain(n.Value); len(errs) > 0 {
			fs = append(fs, errorf(file, n.Line, "spec.serviceAccountName %q is not a valid name: %s", n.Value, strings.Join(errs, "; ")))
		}
	}
	if n := mappingValue(spec, "dependsOn"); n != nil && !isNull(n) {
		fs = append(fs, in.parseDependsOn(file, n)...)
	}
	if n := mappingValue(spec, "approval"); n != nil && !isNull(n) {
		fs = append(fs, in.parseApproval(file, n)...)
	}
	if n := mappingValue(spec, "windows"); n != nil && !isNull(n) {
		fs = append(fs, in.parseWindows(file, n)...)
	}
	if n := mappingValue(spec, "onFailure"); n != nil && !isNull(n) {
		switch v1alpha1.FailurePolicy(n.Value) {
		case v1alpha1.FailureRollback:
			in.OnFailure = v1alpha1.FailureRollback
		default:
			fs = append(fs, errorf(file, n.Line, "spec.onFailure: %q is not a failure policy (rollback)", n.Value))
		}
	}
	return fs
}

func (in *Instance) parseParametersFrom(file string, n *yaml.Node) Findings {
	return eachMapping(file, n, "spec.parametersFrom", func(field string, item *yaml.Node) Findings {
		var fs Findings
		var src v1alpha1.ParameterSource
		src.Kind, fs = scalarField(file, item, "kind", field+".kind", fs)
		src.Name, fs = scalarField(file, item, "name", field+".name", fs)
		src.Key, fs = scalarField(file, item, "key", field+".key", fs)
		src.Parameter, fs = scalarField(file, item, "parameter", field+".parameter", fs)
		if v := mappingValue(item, "optional"); v != nil {
			if err := v.Decode(&src.Optional); err != nil {
				fs = append(fs, errorf(file, v.Line, "%s.optional: %q is not a boolean", field, v.Value))
			}
		}
		switch src.Kind {
		case "Secret", "ConfigMap":
		case "":
			fs = append(fs, errorf(file, item.Line, "%s.kind is required: Secret or ConfigMap", field))
		default:
			fs = append(fs, errorf(file, keyLine(item, "kind", item.Line), "%s.kind: %q is not Secret or ConfigMap", field, src.Kind))
		}
		if src.Name == "" {
			fs = append(fs, errorf(file, item.Line, "%s.name is required", field))
		} else if errs := validation.IsDNS1123Subdomain(src.Name); len(errs) > 0 {
			fs = append(fs, errorf(file, keyLine(item, "name", item.Line), "%s.name %q is not a valid name: %s", field, src.Name, strings.Join(errs, "; ")))
		}
		if src.Parameter != "" && src.Key == "" {
			fs = append(fs, errorf(file, keyLine(item, "parameter", item.Line), "%s.parameter needs a key: name the key of %s %s that holds the value", field, src.Kind, src.Name))
		}
		if src.Key != "" && src.Parameter == "" {
			src.Parameter = src.Key
		}
		in.ParametersFrom = append(in.ParametersFrom, src)
		in.lines[field] = item.Line
		return fs
	})
}

func (in *Instance) parseDependsOn(file string, n *yaml.Node) Findings {
	return eachMapping(file, n, "spec.dependsOn", func(field string, item *yaml.Node) Findings {
		var fs Findings
		var ref v1alpha1.InstanceRef
		ref.Name, fs = scalarField(file, item, "name", field+".name", fs)
		ref.Namespace, fs = scalarField(file, item, "namespace", field+".namespace", fs)
		if ref.Namespace == "" {
			ref.Namespace = in.Namespace
		}
		if ref.Name == "" {
			fs = append(fs, errorf(file, item.Line, "%s.name is required", field))
		} else if ref.Name == in.Name && ref.Namespace == in.Namespace {
			fs = append(fs, errorf(file, item.Line, "%s: an instance cannot depend on itself", field))
		}
		in.DependsOn = append(in.DependsOn, ref)
		in.lines[field] = item.Line
		return fs
	})
}

func (in *Instance) parseApproval(file string, n *yaml.Node) Findings {
	if n.Kind != yaml.MappingNode {
		return Findings{errorf(file, n.Line, "spec.approval must be a mapping such as {plans: [upgrade]}")}
	}
	fs := checkKeys(file, n, "spec.approval", instanceKeys["spec.approval"])
	a := &v1alpha1.Approval{}
	if p := mappingValue(n, "plans"); p != nil && !isNull(p) {
		if p.Kind != yaml.SequenceNode {
			fs = append(fs, errorf(file, p.Line, "spec.approval.plans must be a list of plan names"))
		} else {
			for _, item := range p.Content {
				if item.Kind != yaml.ScalarNode || item.Value == "" {
					fs = append(fs, errorf(file, item.Line, "spec.approval.plans: each entry is a plan name"))
					continue
				}
				a.Plans = append(a.Plans, item.Value)
			}
		}
		in.lines["spec.approval.plans"] = p.Line
	}
	in.Approval = a
	return fs
}

func (in *Instance) parseWindows(file string, n *yaml.Node) Findings {
	return eachMapping(file, n, "spec.windows", func(field string, item *yaml.Node) Findings {
		var fs Findings
		var w v1alpha1.Window
		var kind, duration string
		w.Schedule, fs = scalarField(file, item, "schedule", field+".schedule", fs)
		duration, fs = scalarField(file, item, "duration", field+".duration", fs)
		w.TimeZone, fs = scalarField(file, item, "timeZone", field+".timeZone", fs)
		kind, fs = scalarField(file, item, "kind", field+".kind", fs)
		if v := mappingValue(item, "scheduled"); v != nil {
			if err := v.Decode(&w.Scheduled); err != nil {
				fs = append(fs, errorf(file, v.Line, "%s.scheduled: %q is not a boolean", field, v.Value))
			}
		}
		if w.Schedule == "" {
			fs = append(fs, errorf(file, item.Line, "%s.schedule is required: a cron expression of when the window opens", field))
		} else if err := CheckCron(w.Schedule, w.TimeZone, time.Now()); err != nil {
			fs = append(fs, errorf(file, keyLine(item, "schedule", item.Line), "%s.schedule: %v", field, err))
		}
		if d, err := time.ParseDuration(duration); err != nil || d <= 0 {
			fs = append(fs, errorf(file, keyLine(item, "duration", item.Line), "%s.duration: %q is not a positive duration such as 4h", field, duration))
		} else {
			w.Duration = metav1.Duration{Duration: d}
		}
		if w.TimeZone != "" {
			if _, err := time.LoadLocation(w.TimeZone); err != nil {
				fs = append(fs, errorf(file, keyLine(item, "timeZone", item.Line), "%s.timeZone: unknown time zone %q", field, w.TimeZone))
			}
		}
		switch v1alpha1.WindowKind(kind) {
		case "", v1alpha1.WindowAllow:
			w.Kind = v1alpha1.WindowAllow
		case v1alpha1.WindowDeny:
			w.Kind = v1alpha1.WindowDeny
		default:
			fs = append(fs, errorf(file, keyLine(item, "kind", item.Line), "%s.kind: %q is not allow or deny", field, kind))
		}
		in.Windows = append(in.Windows, w)
		in.lines[field] = item.Line
		return fs
	})
}

// stringMap reads a mapping of names to scalar values as strings (YAML text, as written).
func stringMap(file string, n *yaml.Node, field string) (map[string]string, Findings) {
	if n.Kind != yaml.MappingNode {
		return nil, Findings{errorf(file, n.Line, "%s must be a mapping of names to values", field)}
	}
	var fs Findings
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		val, ok, err := ValueFromNode(v)
		switch {
		case err != nil:
			fs = append(fs, errorf(file, v.Line, "%s.%s: %v", field, k.Value, err))
		case !ok:
			fs = append(fs, errorf(file, v.Line, "%s.%s: null is not a value", field, k.Value))
		default:
			out[k.Value] = val.Text
		}
	}
	return out, fs
}

// validateSources checks parametersFrom against the instance's package: a reference that
// names a parameter names one the package declares, and no parameter is given twice (in
// spec.parameters and by a reference, or by two references). What each reference holds is
// read from the cluster when a plan renders (docs/secrets.md).
func (in *Instance) validateSources(p *Package) Findings {
	var fs Findings
	seen := map[string]int{}
	for i, src := range in.ParametersFrom {
		if src.Parameter == "" {
			continue
		}
		field := fmt.Sprintf("spec.parametersFrom[%d]", i)
		line := in.line(field)
		_, inline := in.Parameters[src.Parameter]
		switch {
		case p.Parameter(src.Parameter) == nil:
			fs = append(fs, errorf(in.File, line, "%s.parameter: unknown parameter %s for %s %s%s", field, src.Parameter, p.Name, p.OperatorVersion, p.DidYouMean(src.Parameter)))
		case inline:
			fs = append(fs, errorf(in.File, line, "%s: parameter %s is also set in spec.parameters: set it in one place", field, src.Parameter))
		}
		if prev, dup := seen[src.Parameter]; dup {
			fs = append(fs, errorf(in.File, line, "%s: parameter %s is already taken from spec.parametersFrom[%d]", field, src.Parameter, prev))
		} else {
			seen[src.Parameter] = i
		}
	}
	return fs
}

// takesFromSources reports whether a parameter may get its value from parametersFrom: a
// reference names it, or a reference takes every key of its object.
func (in *Instance) takesFromSources(name string) bool {
	for _, src := range in.ParametersFrom {
		if src.Parameter == name || src.Key == "" {
			return true
		}
	}
	return false
}

// eachMapping reads a list of mappings of an instance document: n must be a list, each item a
// mapping with the keys instanceKeys allows for key+"[]"; fn reads each item, named
// field ("spec.windows[0]"). The findings of all are returned.
func eachMapping(file string, n *yaml.Node, key string, fn func(field string, item *yaml.Node) Findings) Findings {
	if n.Kind != yaml.SequenceNode {
		return Findings{errorf(file, n.Line, "%s must be a list", key)}
	}
	var fs Findings
	for i, item := range n.Content {
		field := fmt.Sprintf("%s[%d]", key, i)
		if item.Kind != yaml.MappingNode {
			fs = append(fs, errorf(file, item.Line, "%s must be a mapping", field))
			continue
		}
		fs = append(fs, checkKeys(file, item, field, instanceKeys[key+"[]"])...)
		fs = append(fs, fn(field, item)...)
	}
	return fs
}
