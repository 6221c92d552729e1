package manifests

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// ValidateValue follows KUDO's ValidateParameterValueForType, except that a value is judged by
// what it was written as: an unquoted 1 is an integer (KUDO's float64 gotcha), a YAML scalar is
// a valid string, and a string is parsed for the other types (CLI values, KUDO Instances).
func TestValidateValue(t *testing.T) {
	tests := []struct {
		typ     ParamType
		value   Value
		wantErr string // "" means valid
	}{
		{"", Value{"abc", KindString}, ""},
		{"", Value{"3", KindInt}, ""},
		{"", Value{"- a\n", KindArray}, "a array is not a valid string"},
		{TypeString, Value{"true", KindBool}, ""},
		{TypeString, Value{"1.5", KindFloat}, ""},
		{TypeString, Value{"a: b\n", KindMap}, "a map is not a valid string"},

		{TypeInteger, Value{"1", KindInt}, ""},
		{TypeInteger, Value{"1000000", KindInt}, ""},
		{TypeInteger, Value{"-42", KindString}, ""},
		{TypeInteger, Value{" 7 ", KindString}, ""},
		{TypeInteger, Value{"1.5", KindFloat}, `"1.5" (a number) is not an integer`},
		{TypeInteger, Value{"1.5", KindString}, `"1.5" is not an integer`},
		{TypeInteger, Value{"1e6", KindString}, `"1e6" is not an integer`},
		{TypeInteger, Value{"true", KindBool}, "is not an integer"},
		{TypeInteger, Value{"- 1\n", KindArray}, "is not an integer"},

		{TypeNumber, Value{"0.5", KindFloat}, ""},
		{TypeNumber, Value{"3", KindInt}, ""},
		{TypeNumber, Value{"2.5e3", KindString}, ""},
		{TypeNumber, Value{"abc", KindString}, `"abc" is not a number`},
		{TypeNumber, Value{"false", KindBool}, "is not a number"},

		{TypeBoolean, Value{"true", KindBool}, ""},
		{TypeBoolean, Value{"false", KindString}, ""},
		{TypeBoolean, Value{"1", KindString}, ""},
		{TypeBoolean, Value{"yes", KindString}, `"yes" is not a boolean`},
		{TypeBoolean, Value{"1", KindInt}, "is not a boolean"},

		{TypeArray, Value{"- a\n- b\n", KindArray}, ""},
		{TypeArray, Value{"[1, 2]", KindString}, ""},
		{TypeArray, Value{"a: b", KindString}, "is not an array"},
		{TypeArray, Value{"a: b\n", KindMap}, "a map is not an array"},

		{TypeMap, Value{"a: 1\n", KindMap}, ""},
		{TypeMap, Value{"{a: 1}", KindString}, ""},
		{TypeMap, Value{"[1]", KindString}, "is not a map"},
		{TypeMap, Value{"- 1\n", KindArray}, "a array is not a map"},

		{"long", Value{"1", KindInt}, `unknown parameter type "long"`},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ)+"/"+tt.value.Text, func(t *testing.T) {
			err := (&Parameter{Name: "P", Type: tt.typ}).ValidateValue(tt.value)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("%s %+v: %v", tt.typ, tt.value, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("%s %+v: error %v, want %q", tt.typ, tt.value, err, tt.wantErr)
			}
		})
	}
}

// Enums compare by meaning for typed parameters, so "3" is in [1, 3, 5].
func TestValidateValueEnum(t *testing.T) {
	tests := []struct {
		typ   ParamType
		enum  []Value
		value Value
		ok    bool
	}{
		{TypeInteger, []Value{{"1", KindInt}, {"3", KindInt}}, Value{"3", KindString}, true},
		{TypeInteger, []Value{{"1", KindInt}, {"3", KindInt}}, Value{"4", KindString}, false},
		{TypeNumber, []Value{{"1", KindInt}, {"2.5", KindFloat}}, Value{"1.0", KindString}, true},
		{TypeBoolean, []Value{{"true", KindBool}}, Value{"True", KindString}, true},
		{"", []Value{{"small", KindString}, {"large", KindString}}, Value{"Small", KindString}, false},
		{"", []Value{{"small", KindString}}, Value{"small", KindString}, true},
	}
	for _, tt := range tests {
		err := (&Parameter{Name: "P", Type: tt.typ, Enum: tt.enum}).ValidateValue(tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("%s enum %v value %q: %v", tt.typ, tt.enum, tt.value.Text, err)
		}
		if err != nil && !strings.Contains(err.Error(), "is not one of the allowed values") {
			t.Errorf("error %q does not list the allowed values", err)
		}
	}
}

// ValueFromNode keeps the literal text of scalars and marshals arrays and maps as YAML.
func TestValueFromNode(t *testing.T) {
	tests := []struct {
		yaml string
		want Value
		ok   bool
	}{
		{"v: 1000000", Value{"1000000", KindInt}, true},
		{"v: 1e6", Value{"1e6", KindFloat}, true},
		{"v: 0.10", Value{"0.10", KindFloat}, true},
		{`v: "1"`, Value{"1", KindString}, true},
		{"v: true", Value{"true", KindBool}, true},
		{"v: hello", Value{"hello", KindString}, true},
		{"v: ~", Value{}, false},
		{"v: [a, 1]", Value{"- a\n- 1\n", KindArray}, true},
		{"v: {z: 1, a: [x]}", Value{"a:\n    - x\nz: 1\n", KindMap}, true},
		{"x: &anchor 42\nv: *anchor", Value{"42", KindInt}, true},
	}
	for _, tt := range tests {
		var doc map[string]yaml.Node
		if err := yaml.Unmarshal([]byte(tt.yaml), &doc); err != nil {
			t.Fatal(err)
		}
		n := doc["v"]
		got, ok, err := ValueFromNode(&n)
		if err != nil || ok != tt.ok || got != tt.want {
			t.Errorf("%s: got %+v ok=%v err=%v, want %+v ok=%v", tt.yaml, got, ok, err, tt.want, tt.ok)
		}
	}
	if _, ok, err := ValueFromNode(nil); ok || err != nil {
		t.Errorf("nil node: ok=%v err=%v", ok, err)
	}
}

// Templates see arrays and maps unwrapped and every other type as the stored string, as KUDO
// passes them ("all .Params have a type of string").
func TestTemplateValue(t *testing.T) {
	tests := []struct {
		typ  ParamType
		text string
		want any
	}{
		{TypeInteger, "3", "3"},
		{TypeBoolean, "true", "true"},
		{TypeNumber, "0.5", "0.5"},
		{"", "x", "x"},
		{TypeArray, "- a\n- 2\n", []any{"a", 2}},
		{TypeArray, "", []any(nil)},
		{TypeMap, "a: 1\n", map[string]any{"a": 1}},
	}
	for _, tt := range tests {
		got, err := (&Parameter{Name: "P", Type: tt.typ}).TemplateValue(tt.text)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %q: %#v %v, want %#v", tt.typ, tt.text, got, err, tt.want)
		}
	}
	if _, err := (&Parameter{Name: "P", Type: TypeMap}).TemplateValue("[1]"); err == nil || !strings.Contains(err.Error(), "parameter P") {
		t.Errorf("a list for a map: %v", err)
	}
}

// EffectiveParams: instance values over defaults, "" without either, unknown names dropped.
func TestEffectiveParams(t *testing.T) {
	p := &Package{Parameters: []*Parameter{
		{Name: "A", Default: &Value{"1", KindInt}},
		{Name: "B", Default: &Value{"x", KindString}},
		{Name: "C"},
	}}
	got := p.EffectiveParams(map[string]string{"B": "y", "UNKNOWN": "z"})
	want := map[string]string{"A": "1", "B": "y", "C": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestSensitiveParameters(t *testing.T) {
	for name, sensitive := range map[string]bool{
		"PASSWORD": true, "db_password": true, "API_TOKEN": true, "TLS_KEY": true, "SecretName": false, // the name of a Secret, not a secret
		"AWS_CREDENTIALS": true, "NODE_COUNT": false, "": false,
	} {
		if IsSensitive(name) != sensitive {
			t.Errorf("IsSensitive(%q) = %v", name, !sensitive)
		}
		want := "v"
		if sensitive {
			want = MaskedValue
		}
		if got := DisplayValue(name, "v"); got != want {
			t.Errorf("DisplayValue(%q) = %q", name, got)
		}
	}
}
