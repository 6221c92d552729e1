package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"
)

// RenderInput holds the variables of one render: the instance, where in a plan the render
// happens, and the parameter values.
type RenderInput struct {
	// Name and Namespace of the instance.
	Name      string
	Namespace string
	// PlanName, PhaseName and StepName of the step rendering the template (empty outside a plan).
	PlanName  string
	PhaseName string
	StepName  string
	// Params are the instance's parameter values as stored (strings; arrays and maps as YAML).
	// Parameters of the package without a value get their default, or "".
	Params map[string]string
	// Pipes maps pipe keys of the current plan to the names of their Secrets or ConfigMaps.
	Pipes map[string]string
}

// ImplicitVariables are the variables templates may use besides .Params and .Pipes.
var ImplicitVariables = []string{"Name", "Namespace", "OperatorName", "OperatorVersion", "AppVersion", "PlanName", "PhaseName", "StepName"}

// disabledFuncs are sprig functions templates may not call: they read the daemon's
// environment, resolve hosts, or work on paths of the daemon's file system. Calling one fails
// the render with a message saying why, rather than "function not defined".
var disabledFuncs = map[string]string{
	"env":           "it would read the daemon's environment",
	"expandenv":     "it would read the daemon's environment",
	"getHostByName": "it would resolve host names from the daemon",
	"base":          "path functions are not available in templates",
	"dir":           "path functions are not available in templates",
	"clean":         "path functions are not available in templates",
	"ext":           "path functions are not available in templates",
	"isAbs":         "path functions are not available in templates",
	"osBase":        "path functions are not available in templates",
	"osClean":       "path functions are not available in templates",
	"osDir":         "path functions are not available in templates",
	"osExt":         "path functions are not available in templates",
	"osIsAbs":       "path functions are not available in templates",
}

// funcMap is sprig's text function map minus disabledFuncs plus toYaml. Built once: sprig
// allocates a fresh map of ~200 entries per call.
var funcMap = sync.OnceValue(func() template.FuncMap {
	fm := sprig.TxtFuncMap()
	for name, why := range disabledFuncs {
		fm[name] = disabledFunc(name, why)
	}
	fm["toYaml"] = toYaml
	// Bounded where sprig allocates what a parameter asks for: kafka and zookeeper call
	// `until (int .Params.NODE_COUNT)`, and a value of 10000000000 must not exhaust memory.
	fm["until"] = boundedUntil
	fm["untilStep"] = boundedUntilStep
	fm["repeat"] = boundedRepeat
	return fm
})

// Limits on what a template may build: a sequence's length and the rendered output's size.
const (
	maxSequence   = 100_000
	maxOutputSize = 8 << 20
)

func boundedUntil(count int) ([]int, error) {
	step := 1
	if count < 0 {
		step = -1
	}
	return boundedUntilStep(0, count, step)
}

func boundedUntilStep(start, stop, step int) ([]int, error) {
	if step == 0 || (stop-start)/step < 0 {
		return []int{}, nil
	}
	if n := (stop - start) / step; n > maxSequence {
		return nil, fmt.Errorf("untilStep: a sequence of %d numbers is more than the %d a template may build", n, maxSequence)
	}
	var out []int
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		out = append(out, i)
	}
	return out, nil
}

func boundedRepeat(count int, s string) (string, error) {
	if count > 0 && len(s)*count > maxOutputSize {
		return "", fmt.Errorf("repeat: %d copies of a %d-byte string exceed the %d bytes a template may render", count, len(s), maxOutputSize)
	}
	return strings.Repeat(s, max(count, 0)), nil
}

// cappedBuffer fails writes beyond maxOutputSize, so a template cannot render without bound.
type cappedBuffer struct{ bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxOutputSize {
		return 0, fmt.Errorf("the rendered output exceeds %d bytes", maxOutputSize)
	}
	return b.Buffer.Write(p)
}

func disabledFunc(name, why string) func(...any) (string, error) {
	return func(...any) (string, error) {
		return "", fmt.Errorf("function %q is not allowed in kudod templates: %s", name, why)
	}
}

// toYaml marshals a value as YAML, as KUDO's toYaml does (an error renders as "").
func toYaml(v any) string {
	out, err := sigsyaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(out), "\n")
}

// renderer caches the parsed templates of a package: parsing is done once, execution is safe
// for concurrent use.
type renderer struct {
	once      sync.Once
	templates map[string]*template.Template
	errs      map[string]error
}

func (p *Package) parsed(key string) (*template.Template, error) {
	if p.renderer == nil {
		// Packages are built by Load; a zero renderer is created lazily for hand-built ones.
		p.renderer = &renderer{}
	}
	r := p.renderer
	r.once.Do(func() {
		r.templates = make(map[string]*template.Template, len(p.Templates))
		r.errs = map[string]error{}
		for k, t := range p.Templates {
			tpl, err := template.New(k).Option("missingkey=error").Funcs(funcMap()).Parse(t.Content)
			if err != nil {
				r.errs[k] = cleanExecError(err)
				continue
			}
			r.templates[k] = tpl
		}
	})
	if err, ok := r.errs[key]; ok {
		return nil, &RenderError{Template: p.TemplatePath(key), Err: err}
	}
	t, ok := r.templates[key]
	if !ok {
		return nil, &RenderError{Template: p.TemplatePath(key), Err: errors.New("no such template in the package")}
	}
	return t, nil
}

// RenderError is a failure to render a template: it names the template's path, and the
// wrapped text/template error names the line and the failing expression.
type RenderError struct {
	Template string
	// Document is the 1-based YAML document of the output that failed to parse (0: the template).
	Document int
	Err      error
}

func (e *RenderError) Error() string {
	if e.Document > 0 {
		return fmt.Sprintf("render %s: document %d: %v", e.Template, e.Document, e.Err)
	}
	return fmt.Sprintf("render %s: %v", e.Template, e.Err)
}

func (e *RenderError) Unwrap() error { return e.Err }

// Variables returns the template variables for a render.
func (p *Package) Variables(in RenderInput) (map[string]any, error) {
	params := make(map[string]any, len(p.Parameters))
	for _, par := range p.Parameters {
		text, ok := in.Params[par.Name]
		if !ok {
			if par.Default != nil {
				text = par.Default.Text
			}
		}
		v, err := par.TemplateValue(text)
		if err != nil {
			return nil, err
		}
		params[par.Name] = v
	}
	pipes := make(map[string]any, len(in.Pipes))
	for k, v := range in.Pipes {
		pipes[k] = v
	}
	return map[string]any{
		"Name":            in.Name,
		"Namespace":       in.Namespace,
		"OperatorName":    p.Name,
		"OperatorVersion": p.OperatorVersion,
		"AppVersion":      p.AppVersion,
		"PlanName":        in.PlanName,
		"PhaseName":       in.PhaseName,
		"StepName":        in.StepName,
		"Params":          params,
		"Pipes":           pipes,
	}, nil
}

// RenderText executes one template and returns its text.
func (p *Package) RenderText(key string, in RenderInput) (string, error) {
	vars, err := p.Variables(in)
	if err != nil {
		return "", &RenderError{Template: p.TemplatePath(key), Err: err}
	}
	return p.renderText(key, vars)
}

func (p *Package) renderText(key string, vars map[string]any) (string, error) {
	t, err := p.parsed(key)
	if err != nil {
		return "", err
	}
	var buf cappedBuffer
	if err := t.Execute(&buf, vars); err != nil {
		return "", &RenderError{Template: p.TemplatePath(key), Err: cleanExecError(err)}
	}
	return buf.String(), nil
}

// Render executes one template and parses its output into Kubernetes objects: several
// documents per template, empty and comment-only documents skipped, each object required to
// have apiVersion and kind (a Pipe task's pod gets its name from kudod).
func (p *Package) Render(key string, in RenderInput) ([]*unstructured.Unstructured, error) {
	text, err := p.RenderText(key, in)
	if err != nil {
		return nil, err
	}
	return ParseObjects(p.TemplatePath(key), text)
}

// RenderAll renders several templates with the same variables, in order.
func (p *Package) RenderAll(keys []string, in RenderInput) ([]*unstructured.Unstructured, error) {
	vars, err := p.Variables(in)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, k := range keys {
		text, err := p.renderText(k, vars)
		if err != nil {
			return nil, err
		}
		objs, err := ParseObjects(p.TemplatePath(k), text)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// cleanExecError drops text/template's "template: " prefix from execution and parse errors:
// the RenderError names the template's path already.
func cleanExecError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "template: "))
}

// ParseObjects parses rendered YAML into objects. name is used in errors.
func ParseObjects(name, text string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for i, doc := range splitDocuments(text) {
		if isBlankDocument(doc.text) {
			continue
		}
		js, err := sigsyaml.YAMLToJSON([]byte(doc.text))
		if err != nil {
			return nil, &RenderError{Template: name, Document: i + 1, Err: shiftYAMLLine(err, doc.line)}
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			return nil, &RenderError{Template: name, Document: i + 1, Err: fmt.Errorf("line %d: not a Kubernetes object (a YAML mapping is expected)", doc.line)}
		}
		// Checked on the map before UnmarshalJSON, whose own message for a missing kind
		// dumps the whole object.
		var missing []string
		if v, _ := m["apiVersion"].(string); v == "" {
			missing = append(missing, "apiVersion")
		}
		if v, _ := m["kind"].(string); v == "" {
			missing = append(missing, "kind")
		}
		if len(missing) > 0 {
			return nil, &RenderError{Template: name, Document: i + 1, Err: fmt.Errorf("line %d: object without %s", doc.line, strings.Join(missing, ", "))}
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, &RenderError{Template: name, Document: i + 1, Err: fmt.Errorf("line %d: not a Kubernetes object: %w", doc.line, err)}
		}
		out = append(out, u)
	}
	return out, nil
}

type document struct {
	text string
	line int // 1-based line of the document's first line in the whole output
}

// splitDocuments splits YAML on document separators, remembering where each document starts.
func splitDocuments(text string) []document {
	var docs []document
	lines := strings.SplitAfter(text, "\n")
	start := 1
	var cur strings.Builder
	for i, l := range lines {
		trimmed := strings.TrimRight(l, "\r\n")
		if trimmed == "---" || strings.HasPrefix(trimmed, "--- ") || strings.HasPrefix(trimmed, "---\t") {
			docs = append(docs, document{text: cur.String(), line: start})
			cur.Reset()
			start = i + 2
			continue
		}
		cur.WriteString(l)
	}
	docs = append(docs, document{text: cur.String(), line: start})
	return docs
}

func isBlankDocument(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

// shiftYAMLLine rewrites "line N" in a YAML error to the line in the whole rendered output.
func shiftYAMLLine(err error, offset int) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	n := lineOf(msg)
	if n == 0 {
		return errors.New(msg)
	}
	return fmt.Errorf("line %d: %s", n+offset-1, stripLine(msg))
}

// TemplateKeys returns the package's template keys, sorted.
func (p *Package) TemplateKeys() []string {
	keys := make([]string, 0, len(p.Templates))
	for k := range p.Templates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
