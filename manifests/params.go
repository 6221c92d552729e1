package manifests

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParamType is a parameter's declared type.
type ParamType string

// Parameter types of params.yaml. An empty type behaves as string.
const (
	TypeString  ParamType = "string"
	TypeInteger ParamType = "integer"
	TypeNumber  ParamType = "number"
	TypeBoolean ParamType = "boolean"
	TypeArray   ParamType = "array"
	TypeMap     ParamType = "map"
)

// KnownParamTypes lists the types params.yaml may declare.
var knownParamTypes = map[ParamType]bool{
	"": true, TypeString: true, TypeInteger: true, TypeNumber: true, TypeBoolean: true, TypeArray: true, TypeMap: true,
}

// Parameter is one entry of params.yaml.
type Parameter struct {
	Name        string
	DisplayName string
	Description string
	// Default is nil when the parameter has no default (absent or null).
	Default   *Value
	Required  bool
	Trigger   string
	Type      ParamType
	Immutable bool
	Enum      []Value
	Group     string
	Advanced  bool
	Hint      string
	// Scope is "plan" for a parameter only set per run (ScopePlan), else "".
	Scope string
	// Sensitive is params.yaml's `sensitive: true` (a field KUDO's loader ignores): the value
	// is masked in every output and never written to the Instance (docs/secrets.md).
	Sensitive bool
	// Line of the parameter in params.yaml.
	Line int
}

// ValueKind is the YAML kind a parameter value was written as.
type ValueKind int

// Value kinds. KindString covers quoted scalars and anything YAML reads as a string.
const (
	KindString ValueKind = iota
	KindInt
	KindFloat
	KindBool
	KindArray
	KindMap
)

func (k ValueKind) String() string {
	switch k {
	case KindInt:
		return "integer"
	case KindFloat:
		return "number"
	case KindBool:
		return "boolean"
	case KindArray:
		return "array"
	case KindMap:
		return "map"
	default:
		return "string"
	}
}

// Value is a parameter value: the string KUDO stores (scalars as written, arrays and maps as
// YAML) and the kind it was written as. Keeping the literal text avoids KUDO's number
// gotchas: an unquoted 1000000 stays "1000000", never "1e+06".
type Value struct {
	Text string
	Kind ValueKind
}

// StringValue is a value given as a string (a CLI -p flag, a KUDO Instance's string map).
func StringValue(s string) Value { return Value{Text: s, Kind: KindString} }

// ValueFromNode converts a YAML node into a Value. A null node returns ok=false.
func ValueFromNode(n *yaml.Node) (v Value, ok bool, err error) {
	if n == nil {
		return Value{}, false, nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return Value{}, false, nil
		case "!!int":
			return Value{Text: n.Value, Kind: KindInt}, true, nil
		case "!!float":
			return Value{Text: n.Value, Kind: KindFloat}, true, nil
		case "!!bool":
			return Value{Text: n.Value, Kind: KindBool}, true, nil
		default:
			return Value{Text: n.Value, Kind: KindString}, true, nil
		}
	case yaml.SequenceNode, yaml.MappingNode:
		var x any
		if err := n.Decode(&x); err != nil {
			return Value{}, false, err
		}
		out, err := yaml.Marshal(x)
		if err != nil {
			return Value{}, false, err
		}
		kind := KindArray
		if n.Kind == yaml.MappingNode {
			kind = KindMap
		}
		return Value{Text: string(out), Kind: kind}, true, nil
	default:
		return Value{}, false, fmt.Errorf("unsupported YAML node")
	}
}

// EffectiveType is the parameter's type, string when none is declared.
func (p *Parameter) EffectiveType() ParamType {
	if p.Type == "" {
		return TypeString
	}
	return p.Type
}

// ValidateValue checks a value against the parameter's declared type and enum, as KUDO's
// ValidateParameterValueForType does, except that a YAML scalar is accepted for string and
// untyped parameters and a typed YAML value is judged by what it was written as.
func (p *Parameter) ValidateValue(v Value) error {
	if err := checkType(p.Type, v); err != nil {
		return err
	}
	if len(p.Enum) > 0 {
		for _, e := range p.Enum {
			if valuesEqual(p.Type, e, v) {
				return nil
			}
		}
		// The first values only: an enum of thousands would make a message of megabytes.
		const shown = 20
		allowed := make([]string, 0, min(len(p.Enum), shown)+1)
		for _, e := range p.Enum[:min(len(p.Enum), shown)] {
			allowed = append(allowed, strconv.Quote(e.Text))
		}
		if len(p.Enum) > shown {
			allowed = append(allowed, fmt.Sprintf("... (%d more)", len(p.Enum)-shown))
		}
		return fmt.Errorf("value %q is not one of the allowed values [%s]", v.Text, strings.Join(allowed, ", "))
	}
	return nil
}

func checkType(t ParamType, v Value) error {
	switch t {
	case "", TypeString:
		if v.Kind == KindArray || v.Kind == KindMap {
			return fmt.Errorf("a %s is not a valid string", v.Kind)
		}
	case TypeInteger:
		switch v.Kind {
		case KindInt, KindString:
			if _, err := strconv.ParseInt(strings.TrimSpace(v.Text), 10, 64); err != nil {
				return fmt.Errorf("%q is not an integer", v.Text)
			}
		default:
			return fmt.Errorf("%q (a %s) is not an integer", v.Text, v.Kind)
		}
	case TypeNumber:
		switch v.Kind {
		case KindInt, KindFloat, KindString:
			if _, err := strconv.ParseFloat(strings.TrimSpace(v.Text), 64); err != nil {
				if _, err := strconv.ParseInt(strings.TrimSpace(v.Text), 10, 64); err != nil {
					return fmt.Errorf("%q is not a number", v.Text)
				}
			}
		default:
			return fmt.Errorf("%q (a %s) is not a number", v.Text, v.Kind)
		}
	case TypeBoolean:
		switch v.Kind {
		case KindBool, KindString:
			if _, err := strconv.ParseBool(strings.TrimSpace(v.Text)); err != nil {
				return fmt.Errorf("%q is not a boolean", v.Text)
			}
		default:
			return fmt.Errorf("%q (a %s) is not a boolean", v.Text, v.Kind)
		}
	case TypeArray:
		switch v.Kind {
		case KindArray:
		case KindString:
			var x []any
			if err := yaml.Unmarshal([]byte(v.Text), &x); err != nil {
				return fmt.Errorf("%q is not an array", v.Text)
			}
		default:
			return fmt.Errorf("a %s is not an array", v.Kind)
		}
	case TypeMap:
		switch v.Kind {
		case KindMap:
		case KindString:
			var x map[string]any
			if err := yaml.Unmarshal([]byte(v.Text), &x); err != nil {
				return fmt.Errorf("%q is not a map", v.Text)
			}
		default:
			return fmt.Errorf("a %s is not a map", v.Kind)
		}
	default:
		return fmt.Errorf("unknown parameter type %q", t)
	}
	return nil
}

// valuesEqual compares two values of a parameter by meaning, so an enum [1, 3] accepts "3".
func valuesEqual(t ParamType, a, b Value) bool {
	if a.Text == b.Text {
		return true
	}
	switch t {
	case TypeInteger:
		x, err1 := strconv.ParseInt(strings.TrimSpace(a.Text), 10, 64)
		y, err2 := strconv.ParseInt(strings.TrimSpace(b.Text), 10, 64)
		return err1 == nil && err2 == nil && x == y
	case TypeNumber:
		x, err1 := strconv.ParseFloat(strings.TrimSpace(a.Text), 64)
		y, err2 := strconv.ParseFloat(strings.TrimSpace(b.Text), 64)
		return err1 == nil && err2 == nil && x == y
	case TypeBoolean:
		x, err1 := strconv.ParseBool(strings.TrimSpace(a.Text))
		y, err2 := strconv.ParseBool(strings.TrimSpace(b.Text))
		return err1 == nil && err2 == nil && x == y
	}
	return false
}

// TemplateValue is how a parameter's stored string reaches templates: KUDO unwraps arrays
// and maps and leaves every other type a string (docs: "all .Params have a type of string").
func (p *Parameter) TemplateValue(text string) (any, error) {
	switch p.Type {
	case TypeArray:
		var x []any
		if err := yaml.Unmarshal([]byte(text), &x); err != nil {
			return nil, fmt.Errorf("parameter %s: %q is not an array: %w", p.Name, text, err)
		}
		return x, nil
	case TypeMap:
		var x map[string]any
		if err := yaml.Unmarshal([]byte(text), &x); err != nil {
			return nil, fmt.Errorf("parameter %s: %q is not a map: %w", p.Name, text, err)
		}
		return x, nil
	default:
		return text, nil
	}
}

// EffectiveParams merges instance values over the package defaults: every parameter of the
// package gets a string, "" when it has neither (as KUDO renders a missing default).
// Values for names the package does not declare are dropped.
func (p *Package) EffectiveParams(values map[string]string) map[string]string {
	out := make(map[string]string, len(p.Parameters))
	for _, par := range p.Parameters {
		if v, ok := values[par.Name]; ok {
			out[par.Name] = v
		} else if par.Default != nil {
			out[par.Name] = par.Default.Text
		} else {
			out[par.Name] = ""
		}
	}
	return out
}
