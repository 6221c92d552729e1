package manifests

import (
	"strconv"
	"strings"
)

// parameters checks params.yaml on its own: names, types, defaults, enums, immutability,
// groups and triggers. Whether templates use the parameters is checked with the templates.
func (v *verifier) parameters() {
	file := v.p.ParamsFilePath()
	seen := map[string]*Parameter{}
	for _, par := range v.p.Parameters {
		if par.Name == "" {
			v.errorf(file, par.Line, "parameter without a name")
		}
		if first, dup := seen[strings.ToLower(par.Name)]; dup {
			v.errorf(file, par.Line, "parameter %q has a duplicate: %q at line %d (names are compared case-insensitively)", par.Name, first.Name, first.Line)
		} else {
			seen[strings.ToLower(par.Name)] = par
		}
		for _, c := range ",;" {
			if strings.ContainsRune(par.Name, c) {
				v.errorf(file, par.Line, "parameter %q contains invalid character '%c'", par.Name, c)
			}
		}
		v.parameterValues(file, par)
		if par.Immutable && !par.Required && par.Default == nil {
			v.errorf(file, par.Line, "parameter %q is immutable but neither required nor given a default: it could never be set", par.Name)
		}
		if par.Advanced && par.Required && par.Default == nil {
			v.errorf(file, par.Line, "parameter %q is advanced and required but has no default", par.Name)
		}
		if par.Trigger != "" && !v.p.HasPlan(par.Trigger) {
			v.errorf(file, par.Line, "parameter %q triggers plan %q, which is not defined", par.Name, par.Trigger)
		}
		v.parameterScope(file, par)
	}
	v.groups(file)
}

// parameterValues checks the type, the enum and the default of a parameter.
func (v *verifier) parameterValues(file string, par *Parameter) {
	if !knownParamTypes[par.Type] {
		// KUDO accepts any type string and then validates nothing (its PR #1784 was never
		// merged); kudod rejects it, since a typo such as "long" would silently turn every
		// check of the parameter off.
		v.errorf(file, par.Line, "parameter %q has unknown type %q (string, integer, number, boolean, array, map)", par.Name, par.Type)
		return
	}
	enumValid := true
	if par.Enum != nil && len(par.Enum) == 0 {
		v.errorf(file, par.Line, "parameter %q has an empty enum", par.Name)
		enumValid = false
	}
	for _, e := range par.Enum {
		if err := checkType(par.Type, e); err != nil {
			v.errorf(file, par.Line, "parameter %q: enum value %s is not a valid %s: %v", par.Name, strconv.Quote(e.Text), par.EffectiveType(), err)
			enumValid = false
		}
	}
	if par.Default == nil {
		return
	}
	if err := checkType(par.Type, *par.Default); err != nil {
		v.errorf(file, par.Line, "parameter %q has an invalid default for type %s: %v", par.Name, par.EffectiveType(), err)
		return
	}
	if enumValid && len(par.Enum) > 0 {
		if err := par.ValidateValue(*par.Default); err != nil {
			v.errorf(file, par.Line, "parameter %q has a default that is not in its enum: %v", par.Name, err)
		}
	}
}

// groups: group names are unique and free of '/', and a parameter's group is declared.
func (v *verifier) groups(file string) {
	line := v.paramsLine("groups")
	declared := map[string]bool{}
	for _, g := range v.p.Groups {
		if strings.Contains(g.Name, "/") {
			v.errorf(file, line, "group %q contains invalid character '/'", g.Name)
		}
		if declared[g.Name] {
			v.errorf(file, line, "group %q is defined twice", g.Name)
		}
		declared[g.Name] = true
	}
	for _, par := range v.p.Parameters {
		if par.Group == "" {
			continue
		}
		if strings.Contains(par.Group, "/") {
			v.errorf(file, par.Line, "parameter %q: group %q contains invalid character '/'", par.Name, par.Group)
		} else if !declared[par.Group] {
			v.errorf(file, par.Line, "parameter %q is in group %q, which is not defined in groups", par.Name, par.Group)
		}
	}
}
