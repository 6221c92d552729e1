package manifests

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/Masterminds/sprig/v3"
)

// text/template cannot be interrupted, so a render is stopped where it calls back into kudod:
// the functions it calls check the render's budget (budget.go) on every call, and the
// iterations of its range loops and its template calls write marks the output buffer counts
// (instrument). Each parsed template is cloned for renders, and each clone gets functions
// bound to its own slot; the slot points to the budget of the render using the clone
// (renderer.get). A function that would exceed a limit panics with a *LimitError, which
// text/template returns as the error of the call, with the line.
//
// Functions that build what their arguments ask for (randAlphaNum N, repeat N, indent N, seq,
// until, list growth, printf widths, string joins, toJson/toYaml of large values) count the
// bytes before they build them; everything else counts its string arguments, an estimate of
// what it returns. Values passed to functions or printed are walked for their depth, so a value
// nested without end (built with set in a loop, or one containing itself) is refused rather
// than overflowing the stack.

// fnOut is the function instrument appends to printed pipelines whose value may be a list or
// map. Templates cannot call it: it is not among the functions templates are parsed with.
const fnOut = "_kudodOut"

// Work and sizes the guards count.
const (
	// costlyCall is the work of one key or certificate generation or password hash, in
	// steps: a package render may make three.
	costlyCall = defaultMaxSteps / 4
	// elemSize is what an element of a list costs: an interface value, and the spare capacity
	// append leaves. entrySize is a map entry's.
	elemSize  = 32
	entrySize = 96
	// compareWork is how many pairs of elements uniq and without compare per step
	// (reflect.DeepEqual, 100 to 250 ns a pair).
	compareWork = 4
	// mapSize is what a new map costs before its entries: its header and first group.
	mapSize = 288
)

// slot is the state one clone of a parsed template renders with: the budget of the render
// using it.
type slot struct {
	b *budget
}

// baseFuncs are sprig's text functions minus disabledFuncs plus toYaml: what templates are
// parsed with, and what the slots' functions wrap. Built once: sprig allocates a fresh map of
// ~200 entries per call.
var baseFuncs = sync.OnceValue(func() template.FuncMap {
	fm := sprig.TxtFuncMap()
	for name, why := range disabledFuncs {
		fm[name] = disabledFunc(name, why)
	}
	fm["toYaml"] = toYaml
	return fm
})

// funcMap is what templates are parsed with.
func funcMap() template.FuncMap { return baseFuncs() }

// scalarFuncs are the functions (sprig's and text/template's builtins) that return a string,
// number or boolean: printing their result needs no depth check.
var scalarFuncs = sync.OnceValue(func() map[string]bool {
	out := map[string]bool{}
	for _, b := range []string{"print", "printf", "println", "html", "js", "urlquery", "len", "eq", "ne", "lt", "le", "gt", "ge", "not"} {
		out[b] = true
	}
	for name, f := range baseFuncs() {
		t := reflect.TypeOf(f)
		if t.NumOut() == 0 {
			continue
		}
		switch t.Out(0).Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64, reflect.Uint32:
			out[name] = true
		}
	}
	return out
})

// Marks are what instrument adds to a template's trees where it cannot call a function
// cheaply: text nodes the output buffer recognises by their address (a one-byte slice of the
// template's mark table), so a range iteration or a template call costs a Write, not a
// reflective function call (text/template runs ~150 ns per empty iteration; a function call
// would add ~500 ns).
type markKind uint8

const (
	markStep  markKind = iota // a range iteration
	markEnter                 // a template's body starts
	markLeave                 // a template's body ends
)

type mark struct {
	kind markKind
	line int
}

// marks is the mark table of one parsed template file.
type marks struct {
	key   string // the template's key, for messages
	arena []byte
	marks []mark
}

// lookup returns the mark p is, if it is one: the i-th mark is arena[i:i+1:len(arena)], so
// its capacity says which one it is and its address confirms it.
func (m *marks) lookup(p []byte) (mark, bool) {
	if m == nil || len(p) != 1 {
		return mark{}, false
	}
	i := len(m.arena) - cap(p)
	if i < 0 || i >= len(m.marks) || &m.arena[i] != &p[0] {
		return mark{}, false
	}
	return m.marks[i], true
}

// instrument adds the budget checks to every template of a parsed file: marks around each
// template's body (template calls nest at most MaxDepth deep) and at the start of each range
// body, and fnOut after printed pipelines whose value may be a list or map.
func instrument(key, content string, t *template.Template) *marks {
	m := &marks{key: key}
	type pending struct {
		node *parse.TextNode
		mark mark
	}
	var nodes []pending
	nests := callsAny(t, nestingFuncs)
	add := func(tree *parse.Tree, kind markKind, pos parse.Pos) *parse.TextNode {
		n := &parse.TextNode{NodeType: parse.NodeText, Pos: pos}
		line := 1 + strings.Count(content[:min(max(int(pos), 0), len(content))], "\n")
		nodes = append(nodes, pending{n, mark{kind: kind, line: line}})
		return n
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		tree := tt.Tree
		instrumentList(tree, tree.Root, nests, add)
		root := tree.Root
		body := make([]parse.Node, 0, len(root.Nodes)+2)
		body = append(body, add(tree, markEnter, root.Pos))
		body = append(body, root.Nodes...)
		root.Nodes = append(body, add(tree, markLeave, root.Pos))
	}
	m.arena = make([]byte, len(nodes))
	for i, p := range nodes {
		p.node.Text = m.arena[i : i+1 : len(m.arena)]
		m.marks = append(m.marks, p.mark)
	}
	return m
}

func instrumentList(tree *parse.Tree, l *parse.ListNode, nests bool, add func(*parse.Tree, markKind, parse.Pos) *parse.TextNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			if nests {
				instrumentAction(tree, n)
			}
		case *parse.IfNode:
			instrumentList(tree, n.List, nests, add)
			instrumentList(tree, n.ElseList, nests, add)
		case *parse.WithNode:
			instrumentList(tree, n.List, nests, add)
			instrumentList(tree, n.ElseList, nests, add)
		case *parse.RangeNode:
			instrumentList(tree, n.List, nests, add)
			instrumentList(tree, n.ElseList, nests, add)
			if n.List != nil {
				n.List.Nodes = append([]parse.Node{add(tree, markStep, n.Pos)}, n.List.Nodes...)
			}
		case *parse.ListNode:
			instrumentList(tree, n, nests, add)
		}
	}
}

// nestingFuncs are the functions that put lists or maps into lists or maps: only with them can
// a template build a value nested deeper than the YAML it reads (which kudod bounds), so only a
// template calling one of them needs its printed values checked (fnOut), which costs a
// function call per printed pipeline.
var nestingFuncs = map[string]bool{
	"dict": true, "list": true, "tuple": true, "append": true, "push": true, "prepend": true,
	"mustAppend": true, "mustPush": true, "mustPrepend": true, "set": true, "merge": true,
	"mergeOverwrite": true, "mustMerge": true, "mustMergeOverwrite": true, "chunk": true, "mustChunk": true,
}

// callsAny reports whether any template of a parsed file calls one of the functions.
func callsAny(t *template.Template, names map[string]bool) bool {
	found := false
	var node func(n parse.Node)
	node = func(n parse.Node) {
		if found || n == nil {
			return
		}
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				node(c)
			}
		case *parse.ActionNode:
			node(n.Pipe)
		case *parse.IfNode:
			node(n.Pipe)
			node(n.List)
			node(n.ElseList)
		case *parse.WithNode:
			node(n.Pipe)
			node(n.List)
			node(n.ElseList)
		case *parse.RangeNode:
			node(n.Pipe)
			node(n.List)
			node(n.ElseList)
		case *parse.TemplateNode:
			node(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				node(c)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				node(a)
			}
		case *parse.ChainNode:
			node(n.Node)
		case *parse.IdentifierNode:
			found = names[n.Ident]
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil && tt.Tree.Root != nil {
			node(tt.Tree.Root)
		}
	}
	return found
}

// instrumentAction appends fnOut to a printed pipeline unless its value is a literal or the
// result of a function returning a scalar.
func instrumentAction(tree *parse.Tree, a *parse.ActionNode) {
	p := a.Pipe
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) == 0 {
		return
	}
	last := p.Cmds[len(p.Cmds)-1]
	if len(last.Args) == 0 {
		return
	}
	switch first := last.Args[0].(type) {
	case *parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode:
		return
	case *parse.IdentifierNode:
		if scalarFuncs()[first.Ident] {
			return
		}
	}
	id := parse.NewIdentifier(fnOut).SetTree(tree).SetPos(a.Pos)
	p.Cmds = append(p.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: a.Pos, Args: []parse.Node{id}})
}

// funcs returns the functions of a clone: every base function wrapped to check the budget,
// the builtins that build strings, and the instrumentation's functions.
func (s *slot) funcs() template.FuncMap {
	fm := make(template.FuncMap, len(baseFuncs())+16)
	guards := s.guards()
	for name, f := range baseFuncs() {
		if _, disabled := disabledFuncs[name]; disabled {
			fm[name] = f
			continue
		}
		if g, ok := guards[name]; ok {
			fm[name] = g
			continue
		}
		fm[name] = s.wrap(name, f)
	}
	for _, name := range []string{"print", "printf", "println", "html", "js", "urlquery"} {
		fm[name] = guards[name]
	}
	fm[fnOut] = func(v any) any {
		switch v.(type) {
		case nil, string, bool, int, int64, float64:
			return v
		}
		e := s.measure(v)
		s.b.charge(e.size, "printing a value")
		return v
	}
	return fm
}

// remaining is what the render may still build.
func (s *slot) remaining() int64 { return max(s.b.limits.MaxAlloc-s.b.alloc.Load(), 0) }

// measure walks a value (budget.go) and stops the render when it is too deep or too large.
func (s *slot) measure(v any) extent {
	e, err := measure(v, s.remaining())
	if err != nil {
		panic(err)
	}
	return e
}

// size is what an argument weighs: a string its length, a list or map what measure finds.
func (s *slot) size(v any) int64 {
	switch v := v.(type) {
	case string:
		return int64(len(v))
	case nil, bool, int, int64, float64:
		return 8
	}
	return s.measure(v).size
}

// stringsCost is the estimate for functions returning strings from strings: twice what they
// get (base64 and escaping grow, most shrink).
func stringsCost(args ...string) int64 {
	n := int64(16)
	for _, a := range args {
		n = addSat(n, 2*int64(len(a)))
	}
	return n
}

// wrap returns f with a budget check: a step per call, and for functions that build strings,
// lists or maps the size of their arguments. Common signatures are wrapped directly; the rest
// through reflection.
func (s *slot) wrap(name string, f any) any {
	switch f := f.(type) {
	case func(string) string:
		return func(a string) string { s.b.step(); s.b.charge(stringsCost(a), name); return f(a) }
	case func(string, string) string:
		return func(a, b string) string { s.b.step(); s.b.charge(stringsCost(a, b), name); return f(a, b) }
	case func(int, string) string:
		return func(n int, a string) string { s.b.step(); s.b.charge(stringsCost(a), name); return f(n, a) }
	case func(int, int, string) string:
		return func(n, m int, a string) string { s.b.step(); s.b.charge(stringsCost(a), name); return f(n, m, a) }
	case func(string, string) bool:
		return func(a, b string) bool { s.b.step(); return f(a, b) }
	case func(string) bool:
		return func(a string) bool { s.b.step(); return f(a) }
	case func(string) int:
		return func(a string) int { s.b.step(); return f(a) }
	case func(any) string:
		return func(a any) string { s.b.step(); s.b.charge(2*s.size(a), name); return f(a) }
	case func(any) int64:
		return func(a any) int64 { s.b.step(); s.size(a); return f(a) }
	case func(any) int:
		return func(a any) int { s.b.step(); s.size(a); return f(a) }
	case func(any) float64:
		return func(a any) float64 { s.b.step(); s.size(a); return f(a) }
	case func(any) bool:
		return func(a any) bool { s.b.step(); s.size(a); return f(a) }
	case func(any) any:
		return func(a any) any { s.b.step(); s.size(a); return f(a) }
	case func(any, any) int64:
		return func(a, b any) int64 { s.b.step(); s.size(a); s.size(b); return f(a, b) }
	case func(any, any) bool:
		return func(a, b any) bool { s.b.step(); s.size(a); s.size(b); return f(a, b) }
	case func(any, ...any) int64:
		return func(a any, rest ...any) int64 { s.b.step(); s.sizes(a, rest); return f(a, rest...) }
	case func(any, ...any) float64:
		return func(a any, rest ...any) float64 { s.b.step(); s.sizes(a, rest); return f(a, rest...) }
	case func(any, ...any) any:
		return func(a any, rest ...any) any { s.b.step(); s.sizes(a, rest); return f(a, rest...) }
	case func(...any) int64:
		return func(args ...any) int64 { s.b.step(); s.sizes(nil, args); return f(args...) }
	case func(...any) float64:
		return func(args ...any) float64 { s.b.step(); s.sizes(nil, args); return f(args...) }
	case func(...any) any:
		return func(args ...any) any { s.b.step(); s.sizes(nil, args); return f(args...) }
	case func(...any) bool:
		return func(args ...any) bool { s.b.step(); s.sizes(nil, args); return f(args...) }
	case func(map[string]any, string) bool:
		return func(m map[string]any, k string) bool { s.b.step(); return f(m, k) }
	case func(map[string]any, string) any:
		return func(m map[string]any, k string) any { s.b.step(); return f(m, k) }
	case func(any, any, bool) any:
		return func(a, b any, c bool) any { s.b.step(); return f(a, b, c) }
	}
	return s.wrapReflect(name, f)
}

// sizes walks arguments for their depth and returns their total size.
func (s *slot) sizes(first any, rest []any) int64 {
	n := int64(0)
	if first != nil {
		n = s.size(first)
	}
	for _, a := range rest {
		n = addSat(n, s.size(a))
	}
	return n
}

// wrapReflect wraps a function of any other signature: the same checks, through reflection.
func (s *slot) wrapReflect(name string, f any) any {
	fv := reflect.ValueOf(f)
	ft := fv.Type()
	builds := false
	if ft.NumOut() > 0 {
		switch ft.Out(0).Kind() {
		case reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Struct:
			builds = true
		}
	}
	return reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
		s.b.step()
		n := int64(16)
		for i, a := range args {
			if ft.IsVariadic() && i == len(args)-1 {
				for j := range a.Len() {
					n = addSat(n, s.size(a.Index(j).Interface()))
				}
				continue
			}
			if a.IsValid() && a.CanInterface() {
				n = addSat(n, s.size(a.Interface()))
			}
		}
		if builds {
			s.b.charge(2*n, name)
		}
		if ft.IsVariadic() {
			return fv.CallSlice(args)
		}
		return fv.Call(args)
	}).Interface()
}

// lenOf is the length of a list a function gets (0 when it is not one: sprig reports that).
func lenOf(v any) int64 {
	switch v := v.(type) {
	case []any:
		return int64(len(v))
	case nil:
		return 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.String:
		return int64(rv.Len())
	}
	return 0
}

// guards are the functions checked by what they are asked to build, before they build it.
func (s *slot) guards() map[string]any {
	fm := baseFuncs()
	g := map[string]any{}

	// sprig draws every character from crypto/rand on its own, about a microsecond each:
	// a character is a step of work too.
	for _, name := range []string{"randAlpha", "randAlphaNum", "randNumeric", "randAscii"} {
		f := fm[name].(func(int) string)
		g[name] = func(n int) string {
			s.b.step()
			s.b.chargeArg(int64(n), name, n)
			s.b.work(int64(n), name)
			return f(n)
		}
	}
	// Key generation and password hashing take up to a second a call, which cannot be
	// interrupted: each counts as that many steps of work.
	for _, name := range []string{"genPrivateKey", "genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey", "buildCustomCert", "bcrypt", "htpasswd", "derivePassword"} {
		f := s.wrap(name, fm[name])
		fv := reflect.ValueOf(f)
		g[name] = reflect.MakeFunc(fv.Type(), func(args []reflect.Value) []reflect.Value {
			s.b.work(costlyCall, name)
			if fv.Type().IsVariadic() {
				return fv.CallSlice(args)
			}
			return fv.Call(args)
		}).Interface()
	}
	randBytes := fm["randBytes"].(func(int) (string, error))
	g["randBytes"] = func(n int) (string, error) {
		s.b.step()
		s.b.chargeArg(mulSat(int64(n), 2), "randBytes", n)
		return randBytes(n)
	}
	g["repeat"] = func(count int, str string) (string, error) {
		s.b.step()
		s.b.chargeArg(mulSat(int64(count), int64(len(str))), "repeat", count)
		return strings.Repeat(str, max(count, 0)), nil
	}
	for _, name := range []string{"indent", "nindent"} {
		f := fm[name].(func(int, string) string)
		g[name] = func(n int, str string) string {
			s.b.step()
			lines := int64(strings.Count(str, "\n")) + 2
			s.b.chargeArg(addSat(int64(len(str)), mulSat(int64(n), lines)), name, n)
			return f(n, str)
		}
	}
	wrapWith := fm["wrapWith"].(func(int, string, string) string)
	g["wrapWith"] = func(n int, sep, str string) string {
		s.b.step()
		breaks := int64(len(str))/int64(max(n, 1)) + 1
		s.b.charge(addSat(2*int64(len(str)), mulSat(breaks, int64(len(sep)))), "wrapWith")
		return wrapWith(n, sep, str)
	}
	seq := fm["seq"].(func(...int) string)
	g["seq"] = func(params ...int) string {
		s.b.step()
		count, width := seqExtent(params)
		s.b.charge(mulSat(count, width+1+8), "seq")
		return seq(params...)
	}
	g["until"] = func(count int) ([]int, error) {
		s.b.step()
		step := 1
		if count < 0 {
			step = -1
		}
		return s.untilStep(0, count, step)
	}
	g["untilStep"] = func(start, stop, step int) ([]int, error) { s.b.step(); return s.untilStep(start, stop, step) }

	// Lists and maps.
	for _, name := range []string{"list", "tuple"} {
		f := fm[name].(func(...any) []any)
		g[name] = func(args ...any) []any { s.b.step(); s.b.charge(elemSize*int64(len(args))+24, name); return f(args...) }
	}
	dict := fm["dict"].(func(...any) map[string]any)
	g["dict"] = func(args ...any) map[string]any {
		s.b.step()
		s.b.charge(entrySize*int64(len(args)/2)+mapSize, "dict")
		return dict(args...)
	}
	for _, name := range []string{"append", "push", "prepend"} {
		f := fm[name].(func(any, any) []any)
		g[name] = func(l, v any) []any {
			s.b.step()
			s.b.charge(elemSize*(lenOf(l)+1)+24, name)
			return f(l, v)
		}
	}
	for _, name := range []string{"mustAppend", "mustPush", "mustPrepend"} {
		f := fm[name].(func(any, any) ([]any, error))
		g[name] = func(l, v any) ([]any, error) {
			s.b.step()
			s.b.charge(elemSize*(lenOf(l)+1)+24, name)
			return f(l, v)
		}
	}
	concat := fm["concat"].(func(...any) any)
	g["concat"] = func(lists ...any) any {
		s.b.step()
		n := int64(24)
		for _, l := range lists {
			n = addSat(n, elemSize*lenOf(l))
		}
		s.b.charge(n, "concat")
		return concat(lists...)
	}
	chunk := fm["chunk"].(func(int, any) [][]any)
	g["chunk"] = func(size int, l any) [][]any {
		s.b.step()
		s.b.charge(elemSize*lenOf(l)+24*(lenOf(l)/int64(max(size, 1))+1), "chunk")
		return chunk(size, l)
	}
	mustChunk := fm["mustChunk"].(func(int, any) ([][]any, error))
	g["mustChunk"] = func(size int, l any) ([][]any, error) {
		s.b.step()
		s.b.charge(elemSize*lenOf(l)+24*(lenOf(l)/int64(max(size, 1))+1), "mustChunk")
		return mustChunk(size, l)
	}
	for _, name := range []string{"compact", "initial", "rest", "reverse"} {
		f := fm[name].(func(any) []any)
		g[name] = func(l any) []any { s.b.step(); s.b.charge(elemSize*lenOf(l)+24, name); return f(l) }
	}
	for _, name := range []string{"mustCompact", "mustInitial", "mustRest", "mustReverse"} {
		f := fm[name].(func(any) ([]any, error))
		g[name] = func(l any) ([]any, error) { s.b.step(); s.b.charge(elemSize*lenOf(l)+24, name); return f(l) }
	}
	// uniq and without compare every pair: their work is counted in steps.
	uniq := fm["uniq"].(func(any) []any)
	g["uniq"] = func(l any) []any {
		s.b.step()
		n := lenOf(l)
		s.b.work(mulSat(n, n)/2/compareWork, "uniq")
		s.measure(l)
		s.b.charge(elemSize*n+24, "uniq")
		return uniq(l)
	}
	mustUniq := fm["mustUniq"].(func(any) ([]any, error))
	g["mustUniq"] = func(l any) ([]any, error) {
		s.b.step()
		n := lenOf(l)
		s.b.work(mulSat(n, n)/2/compareWork, "mustUniq")
		s.measure(l)
		s.b.charge(elemSize*n+24, "mustUniq")
		return mustUniq(l)
	}
	without := fm["without"].(func(any, ...any) []any)
	g["without"] = func(l any, omit ...any) []any {
		s.b.step()
		n := lenOf(l)
		s.b.work(mulSat(n, int64(len(omit)))/compareWork, "without")
		s.sizes(l, omit)
		s.b.charge(elemSize*n+24, "without")
		return without(l, omit...)
	}
	mustWithout := fm["mustWithout"].(func(any, ...any) ([]any, error))
	g["mustWithout"] = func(l any, omit ...any) ([]any, error) {
		s.b.step()
		n := lenOf(l)
		s.b.work(mulSat(n, int64(len(omit)))/compareWork, "mustWithout")
		s.sizes(l, omit)
		s.b.charge(elemSize*n+24, "mustWithout")
		return mustWithout(l, omit...)
	}
	set := fm["set"].(func(map[string]any, string, any) map[string]any)
	g["set"] = func(m map[string]any, key string, v any) map[string]any {
		s.b.step()
		s.noCycle("set", m, v)
		s.b.charge(int64(len(key))+entrySize, "set")
		return set(m, key, v)
	}
	for _, name := range []string{"merge", "mergeOverwrite"} {
		f := fm[name].(func(map[string]any, ...map[string]any) any)
		g[name] = func(dst map[string]any, srcs ...map[string]any) any {
			s.b.step()
			s.b.charge(s.mergeCost(name, dst, srcs), name)
			return f(dst, srcs...)
		}
	}
	for _, name := range []string{"mustMerge", "mustMergeOverwrite"} {
		f := fm[name].(func(map[string]any, ...map[string]any) (any, error))
		g[name] = func(dst map[string]any, srcs ...map[string]any) (any, error) {
			s.b.step()
			s.b.charge(s.mergeCost(name, dst, srcs), name)
			return f(dst, srcs...)
		}
	}
	deepCopy := fm["deepCopy"].(func(any) any)
	g["deepCopy"] = func(v any) any { s.b.step(); s.b.charge(s.measure(v).size, "deepCopy"); return deepCopy(v) }
	mustDeepCopy := fm["mustDeepCopy"].(func(any) (any, error))
	g["mustDeepCopy"] = func(v any) (any, error) {
		s.b.step()
		s.b.charge(s.measure(v).size, "mustDeepCopy")
		return mustDeepCopy(v)
	}
	for _, name := range []string{"sortAlpha", "toStrings"} {
		f := fm[name].(func(any) []string)
		g[name] = func(v any) []string { s.b.step(); s.b.charge(2*s.measure(v).size, name); return f(v) }
	}
	keys := fm["keys"].(func(...map[string]any) []string)
	g["keys"] = func(ms ...map[string]any) []string {
		s.b.step()
		n := int64(24)
		for _, m := range ms {
			n = addSat(n, elemSize*int64(len(m)))
		}
		s.b.charge(n, "keys")
		return keys(ms...)
	}
	values := fm["values"].(func(map[string]any) []any)
	g["values"] = func(m map[string]any) []any {
		s.b.step()
		s.b.charge(elemSize*int64(len(m))+24, "values")
		return values(m)
	}

	// Strings from values: what printing the values takes.
	// toYaml converts through JSON and yaml.v2, about 150 ns a byte: its work counts in steps,
	// so a loop of toYaml over a large value stops before the time limit.
	for _, name := range []string{"toJson", "toPrettyJson", "toRawJson", "toString", "toYaml"} {
		f := fm[name].(func(any) string)
		perStep := int64(64)
		if name == "toYaml" {
			perStep = 8
		}
		g[name] = func(v any) string {
			s.b.step()
			cost := s.printCost(v)
			s.b.charge(cost, name)
			s.b.work(cost/perStep, name)
			return f(v)
		}
	}
	for _, name := range []string{"mustToJson", "mustToPrettyJson", "mustToRawJson"} {
		f := fm[name].(func(any) (string, error))
		g[name] = func(v any) (string, error) { s.b.step(); s.b.charge(s.printCost(v), name); return f(v) }
	}
	fromJSON := fm["fromJson"].(func(string) any)
	g["fromJson"] = func(str string) any {
		s.b.step()
		s.b.charge(mulSat(int64(len(str)), 16), "fromJson")
		v := fromJSON(str)
		s.measure(v)
		return v
	}
	mustFromJSON := fm["mustFromJson"].(func(string) (any, error))
	g["mustFromJson"] = func(str string) (any, error) {
		s.b.step()
		s.b.charge(mulSat(int64(len(str)), 16), "mustFromJson")
		v, err := mustFromJSON(str)
		if err == nil {
			s.measure(v)
		}
		return v, err
	}
	join := fm["join"].(func(string, any) string)
	g["join"] = func(sep string, v any) string {
		s.b.step()
		e := s.measure(v)
		s.b.charge(addSat(2*e.size, mulSat(lenOf(v), int64(len(sep)))), "join")
		return join(sep, v)
	}
	for _, name := range []string{"cat", "quote", "squote"} {
		f := fm[name].(func(...any) string)
		g[name] = func(args ...any) string {
			s.b.step()
			s.b.charge(addSat(2*s.sizes(nil, args), 4*int64(len(args))), name)
			return f(args...)
		}
	}
	g["print"] = func(args ...any) string {
		s.b.step()
		s.b.charge(addSat(2*s.sizes(nil, args), int64(len(args))), "print")
		return fmt.Sprint(args...)
	}
	g["println"] = func(args ...any) string {
		s.b.step()
		s.b.charge(addSat(2*s.sizes(nil, args), int64(len(args))+1), "println")
		return fmt.Sprintln(args...)
	}
	g["printf"] = func(format string, args ...any) string {
		s.b.step()
		s.b.charge(addSat(printfWidths(format), 4*s.sizes(nil, args)), "printf")
		return fmt.Sprintf(format, args...)
	}
	for _, name := range []string{"html", "js", "urlquery"} {
		var f func(...any) string
		switch name {
		case "html":
			f = template.HTMLEscaper
		case "js":
			f = template.JSEscaper
		default:
			f = template.URLQueryEscaper
		}
		g[name] = func(args ...any) string {
			s.b.step()
			s.b.charge(mulSat(addSat(s.sizes(nil, args), int64(len(args))), 6), name)
			return f(args...)
		}
	}

	// Strings from strings that can grow beyond twice their input.
	replace := fm["replace"].(func(string, string, string) string)
	g["replace"] = func(old, new, src string) string {
		s.b.step()
		n := int64(utf8.RuneCountInString(src)) + 1
		if old != "" {
			n = int64(strings.Count(src, old))
		}
		s.b.charge(addSat(int64(len(src)), mulSat(n, int64(len(new)))), "replace")
		return replace(old, new, src)
	}
	for _, name := range []string{"regexReplaceAll", "regexReplaceAllLiteral"} {
		f := fm[name].(func(string, string, string) string)
		g[name] = func(re, str, repl string) string {
			s.b.step()
			s.regexCost(name, re, str)
			s.b.charge(replaceAllCost(str, repl), name)
			return f(re, str, repl)
		}
	}
	for _, name := range []string{"mustRegexReplaceAll", "mustRegexReplaceAllLiteral"} {
		f := fm[name].(func(string, string, string) (string, error))
		g[name] = func(re, str, repl string) (string, error) {
			s.b.step()
			s.regexCost(name, re, str)
			s.b.charge(replaceAllCost(str, repl), name)
			return f(re, str, repl)
		}
	}
	regexFind := fm["regexFind"].(func(string, string) string)
	g["regexFind"] = func(re, str string) string { s.b.step(); s.regexCost("regexFind", re, str); return regexFind(re, str) }
	mustRegexFind := fm["mustRegexFind"].(func(string, string) (string, error))
	g["mustRegexFind"] = func(re, str string) (string, error) {
		s.b.step()
		s.regexCost("mustRegexFind", re, str)
		return mustRegexFind(re, str)
	}
	regexMatch := fm["regexMatch"].(func(string, string) bool)
	g["regexMatch"] = func(re, str string) bool { s.b.step(); s.regexCost("regexMatch", re, str); return regexMatch(re, str) }
	for _, name := range []string{"mustRegexMatch", "semverCompare"} {
		f := fm[name].(func(string, string) (bool, error))
		g[name] = func(a, b string) (bool, error) { s.b.step(); s.regexCost(name, a, b); return f(a, b) }
	}
	for _, name := range []string{"regexFindAll", "regexSplit"} {
		f := fm[name].(func(string, string, int) []string)
		g[name] = func(re, str string, n int) []string {
			s.b.step()
			s.regexCost(name, re, str)
			s.b.charge(piecesCost(str, n), name)
			return f(re, str, n)
		}
	}
	for _, name := range []string{"mustRegexFindAll", "mustRegexSplit"} {
		f := fm[name].(func(string, string, int) ([]string, error))
		g[name] = func(re, str string, n int) ([]string, error) {
			s.b.step()
			s.regexCost(name, re, str)
			s.b.charge(piecesCost(str, n), name)
			return f(re, str, n)
		}
	}
	split := fm["split"].(func(string, string) map[string]string)
	g["split"] = func(sep, str string) map[string]string {
		s.b.step()
		s.b.charge(splitCost(sep, str, -1), "split")
		return split(sep, str)
	}
	splitList := fm["splitList"].(func(string, string) []string)
	g["splitList"] = func(sep, str string) []string {
		s.b.step()
		s.b.charge(splitCost(sep, str, -1), "splitList")
		return splitList(sep, str)
	}
	splitn := fm["splitn"].(func(string, int, string) map[string]string)
	g["splitn"] = func(sep string, n int, str string) map[string]string {
		s.b.step()
		s.b.charge(splitCost(sep, str, n), "splitn")
		return splitn(sep, n, str)
	}
	return g
}

func (s *slot) untilStep(start, stop, step int) ([]int, error) {
	out, err := boundedUntilStep(start, stop, step)
	if err == nil {
		s.b.charge(elemSize*int64(len(out))+24, "untilStep")
	}
	return out, err
}

// noCycle refuses to put v into m when v holds m: the map would contain itself.
func (s *slot) noCycle(name string, m map[string]any, v any) {
	found, err := reaches(v, reflect.ValueOf(m))
	if err != nil {
		panic(err)
	}
	if found {
		panic(&LimitError{Limit: "nesting", Detail: name + ": the value holds the map it is put into, which would then contain itself"})
	}
}

// mergeCost refuses merges that would make dst contain itself and returns what they copy.
func (s *slot) mergeCost(name string, dst map[string]any, srcs []map[string]any) int64 {
	n := int64(48)
	for _, src := range srcs {
		s.noCycle(name, dst, src)
		n = addSat(n, s.measure(src).size)
	}
	s.measure(dst)
	return n
}

// printCost is what printing a value as JSON or YAML takes: its size, quoting, and an
// indentation per node as deep as the value nests.
func (s *slot) printCost(v any) int64 {
	e := s.measure(v)
	return addSat(2*e.size, mulSat(e.nodes, 2*int64(e.depth)+4))
}

// regexCost refuses regular expressions whose matching would take too long to be
// interrupted: Go's regexp is linear in the text, times the size of the expression.
func (s *slot) regexCost(name, re, str string) {
	s.b.work(mulSat(int64(len(re)), int64(len(str)))/4096, name)
}

// replaceAllCost bounds regexReplaceAll's result: every position may match, and every $n
// in the replacement may expand to the whole input.
func replaceAllCost(str, repl string) int64 {
	per := addSat(int64(len(repl)), mulSat(int64(strings.Count(repl, "$")), int64(len(str))))
	return addSat(int64(len(str)), mulSat(int64(len(str))+1, per))
}

// piecesCost bounds a list of up to n matches or pieces of str (n < 0: every position).
func piecesCost(str string, n int) int64 {
	pieces := int64(len(str)) + 1
	if n >= 0 && int64(n) < pieces {
		pieces = int64(n)
	}
	return addSat(int64(len(str)), mulSat(pieces, 24))
}

// splitCost bounds split, splitList and splitn: a piece per separator (per character for an
// empty separator), each a map entry.
func splitCost(sep, str string, n int) int64 {
	pieces := int64(utf8.RuneCountInString(str)) + 1
	if sep != "" {
		pieces = int64(strings.Count(str, sep)) + 1
	}
	if n >= 0 && int64(n) < pieces {
		pieces = int64(n)
	}
	return addSat(int64(len(str)), mulSat(pieces, 64))
}

// seqExtent returns how many numbers sprig's seq prints and how wide the widest is.
func seqExtent(params []int) (count, width int64) {
	var start, end, step int
	switch len(params) {
	case 1:
		start, end, step = 1, params[0], 1
	case 2:
		start, end, step = params[0], params[1], 1
	case 3:
		start, step, end = params[0], params[1], params[2]
	default:
		return 0, 0
	}
	if step == 0 {
		return 0, 0
	}
	span := int64(end) - int64(start)
	if span < 0 {
		span = -span
	}
	if step < 0 {
		step = -step
	}
	count = span/int64(step) + 1
	width = int64(max(len(fmt.Sprint(start)), len(fmt.Sprint(end))))
	return count, width
}

// printfWidths bounds what a format string's own text, widths and precisions print: fmt
// pads to a width of up to a million per verb, and `*` takes it from an argument.
// Every digit run and `*` after a % counts: an over-estimate for %[2]d, which is fine.
func printfWidths(format string) int64 {
	n := int64(len(format)) + 16
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
	directive:
		for i++; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				n = addSat(n, 1_000_000)
			case c >= '0' && c <= '9':
				v := int64(0)
				for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
					v = min(v*10+int64(format[i]-'0'), 1_000_000)
				}
				i--
				n = addSat(n, v)
			case strings.IndexByte("+-# .[]", c) >= 0:
			default:
				break directive // the verb ends the directive
			}
		}
	}
	return n
}
