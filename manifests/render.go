package manifests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"

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

// maxSequence bounds the lists until and untilStep build: kafka and zookeeper call
// `until (int .Params.NODE_COUNT)`, and a value of 10000000000 must not exhaust memory.
const maxSequence = 100_000

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

// cappedBuffer is a template's output: it fails writes beyond the render's MaxOutput, counts
// the output against the render's memory, and stops a render whose time is up. It also takes
// the marks instrument added (render_funcs.go): steps and template calls.
type cappedBuffer struct {
	bytes.Buffer
	b     *budget
	marks *marks
	depth int
	// line is that of the last mark: where a limit a mark found was reached.
	line int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if m, ok := c.marks.lookup(p); ok {
		return len(p), c.mark(m)
	}
	if err := c.b.cancelled(); err != nil {
		return 0, err
	}
	if c.Len()+len(p) > c.b.limits.MaxOutput {
		return 0, &LimitError{Limit: "output", Detail: fmt.Sprintf("the rendered output exceeds %s", byteSize(int64(c.b.limits.MaxOutput)))}
	}
	if total := c.b.alloc.Add(int64(len(p))); total > c.b.limits.MaxAlloc {
		return 0, &LimitError{Limit: "memory", Detail: fmt.Sprintf("the templates of the package render more than %s", byteSize(c.b.limits.MaxAlloc))}
	}
	return c.Buffer.Write(p)
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

func (c *cappedBuffer) mark(m mark) (err error) {
	switch m.kind {
	case markLeave:
		c.depth--
		return nil
	case markEnter:
		c.depth++
		if c.depth > c.b.limits.MaxDepth {
			c.line = m.line
			return &LimitError{Limit: "depth", Detail: fmt.Sprintf("template calls nest deeper than %d", c.b.limits.MaxDepth)}
		}
	}
	defer func() {
		if r := recover(); r != nil {
			le, ok := r.(*LimitError)
			if !ok {
				panic(r)
			}
			c.line, err = m.line, le
		}
	}()
	c.b.step()
	return nil
}

// renderer caches the parsed templates of a package: parsing is done once. Renders use
// clones, each with functions bound to its own slot (render_funcs.go), kept for the next render.
type renderer struct {
	once      sync.Once
	templates map[string]*template.Template
	marks     map[string]*marks
	errs      map[string]error

	mu   sync.Mutex
	free map[string][]*boundTemplate
}

// boundTemplate is a clone of a parsed template whose functions check its slot's budget.
type boundTemplate struct {
	t *template.Template
	s *slot
}

// maxFreeClones is how many idle clones of one template are kept: as many as renders of one
// package run at once, typically.
const maxFreeClones = 8

func (r *renderer) get(key string, base *template.Template) (*boundTemplate, error) {
	r.mu.Lock()
	if l := r.free[key]; len(l) > 0 {
		bt := l[len(l)-1]
		r.free[key] = l[:len(l)-1]
		r.mu.Unlock()
		return bt, nil
	}
	r.mu.Unlock()
	c, err := base.Clone()
	if err != nil {
		return nil, err
	}
	s := &slot{}
	return &boundTemplate{t: c.Funcs(s.funcs()), s: s}, nil
}

func (r *renderer) put(key string, bt *boundTemplate) {
	bt.s.b = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.free == nil {
		r.free = map[string][]*boundTemplate{}
	}
	if len(r.free[key]) < maxFreeClones {
		r.free[key] = append(r.free[key], bt)
	}
}

func (p *Package) parsed(key string) (*template.Template, error) {
	if p.renderer == nil {
		// Packages are built by Load; a zero renderer is created lazily for hand-built ones.
		p.renderer = &renderer{}
	}
	r := p.renderer
	r.once.Do(func() {
		r.templates = make(map[string]*template.Template, len(p.Templates))
		r.marks = make(map[string]*marks, len(p.Templates))
		r.errs = map[string]error{}
		for k, t := range p.Templates {
			if err := checkNesting(k, t.Content); err != nil {
				r.errs[k] = err
				continue
			}
			tpl, err := template.New(k).Option("missingkey=error").Funcs(funcMap()).Parse(t.Content)
			if err != nil {
				r.errs[k] = cleanExecError(err)
				continue
			}
			r.marks[k] = instrument(k, t.Content, tpl)
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

// RenderText executes one template and returns its text, within the default render limits.
func (p *Package) RenderText(key string, in RenderInput) (string, error) {
	return p.RenderTextContext(context.Background(), key, in)
}

// RenderTextContext executes one template and returns its text. The render counts against
// the budget of the package render ctx belongs to (StartRender), or a budget of its own, and
// stops when ctx ends.
func (p *Package) RenderTextContext(ctx context.Context, key string, in RenderInput) (string, error) {
	vars, err := p.Variables(in)
	if err != nil {
		return "", &RenderError{Template: p.TemplatePath(key), Err: err}
	}
	return p.renderText(ctx, key, vars)
}

func (p *Package) renderText(ctx context.Context, key string, vars map[string]any) (text string, err error) {
	t, err := p.parsed(key)
	if err != nil {
		return "", err
	}
	b := budgetFrom(ctx)
	if le := b.check(); le != nil {
		return "", &RenderError{Template: p.TemplatePath(key), Err: le}
	}
	bt, err := p.renderer.get(key, t)
	if err != nil {
		return "", &RenderError{Template: p.TemplatePath(key), Err: err}
	}
	bt.s.b = b
	defer func() {
		// text/template returns what functions panic with as errors; anything else escaping
		// a render is a bug of kudod's, which must not take the daemon down with it.
		if r := recover(); r != nil {
			text, err = "", &RenderError{Template: p.TemplatePath(key), Err: fmt.Errorf("render failed: %v", r)}
		}
	}()
	buf := cappedBuffer{b: b, marks: p.renderer.marks[key]}
	err = bt.t.Execute(&buf, vars)
	p.renderer.put(key, bt)
	if err != nil {
		return "", &RenderError{Template: p.TemplatePath(key), Err: execError(key, buf.line, err)}
	}
	return buf.String(), nil
}

// Render executes one template and parses its output into Kubernetes objects, within the
// default render limits.
func (p *Package) Render(key string, in RenderInput) ([]*unstructured.Unstructured, error) {
	return p.RenderContext(context.Background(), key, in)
}

// RenderContext executes one template and parses its output into Kubernetes objects: several
// documents per template, empty and comment-only documents skipped, each object required to
// have apiVersion and kind (a Pipe task's pod gets its name from kudod). The render counts
// against the budget of ctx's package render (RenderTextContext).
func (p *Package) RenderContext(ctx context.Context, key string, in RenderInput) ([]*unstructured.Unstructured, error) {
	text, err := p.RenderTextContext(ctx, key, in)
	if err != nil {
		return nil, err
	}
	return ParseObjects(p.TemplatePath(key), text)
}

// RenderAll renders several templates with the same variables, in order, as one package render.
func (p *Package) RenderAll(keys []string, in RenderInput) ([]*unstructured.Unstructured, error) {
	return p.RenderAllContext(context.Background(), keys, in)
}

// RenderAllContext is RenderAll under ctx: the templates share one budget.
func (p *Package) RenderAllContext(ctx context.Context, keys []string, in RenderInput) ([]*unstructured.Unstructured, error) {
	ctx, done := StartRender(ctx)
	defer done()
	vars, err := p.Variables(in)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, k := range keys {
		text, err := p.renderText(ctx, k, vars)
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

// execError cleans a text/template execution error. A limit reached in a function names the
// line the call is on: "key:LINE: what (which limit)".
func execError(key string, line int, err error) error {
	var le *LimitError
	if errors.As(err, &le) {
		m := execLocation.FindStringSubmatch(err.Error())
		if m == nil {
			if line > 0 {
				return &locatedError{prefix: fmt.Sprintf("%s:%d: ", key, line), err: le}
			}
			return le
		}
		prefix := m[1] + ":" + m[2] + ": "
		switch fn := m[3]; {
		case fn == fnOut:
			prefix += "printing: "
		case fn != "" && !strings.HasPrefix(fn, "_kudod") && !strings.HasPrefix(le.Detail, fn):
			prefix += fn + ": "
		}
		return &locatedError{prefix: prefix, err: le}
	}
	return cleanExecError(err)
}

// execLocation is where text/template says an execution error happened:
// "template: KEY:LINE:COL: executing "NAME" at <...>: error calling FUNC: ...".
var execLocation = regexp.MustCompile(`^template: (.*?):(\d+):\d+: executing .*?(?:: error calling ([^: ]+): |$)`)

// locatedError is a limit error with the template and line it happened at.
type locatedError struct {
	prefix string
	err    error
}

func (e *locatedError) Error() string { return e.prefix + e.err.Error() }
func (e *locatedError) Unwrap() error { return e.err }

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
	keys := slices.Sorted(maps.Keys(p.Templates))
	return keys
}
