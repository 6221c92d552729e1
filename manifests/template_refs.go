package manifests

import (
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
)

// templateRefs is what one template refers to, each name with the line of its first use.
type templateRefs struct {
	params    map[string]int // .Params.X, $.Params.X, $root.Params.X, index .Params "X"
	pipes     map[string]int // .Pipes.X
	implicits map[string]int // .X at the top-level dot, X not one of the variables kudod provides
	funcs     map[string]int // functions called
}

// findTemplateRefs walks the parse trees of a template (and of the templates it defines) the way
// KUDO's verifier/template/parser.go does: fields in the pipelines of actions, if, with, range
// and template calls. Unlike KUDO it follows the dot: inside range and with the dot is an
// element, so .X there is not a package variable; $.X always is.
func findTemplateRefs(tpl *template.Template, content string) templateRefs {
	w := &refWalker{
		content: content,
		refs: templateRefs{
			params: map[string]int{}, pipes: map[string]int{}, implicits: map[string]int{}, funcs: map[string]int{},
		},
	}
	// Sorted so the first recorded line of a name does not depend on map order.
	trees := tpl.Templates()
	sort.Slice(trees, func(i, j int) bool { return trees[i].Name() < trees[j].Name() })
	for _, t := range trees {
		if t.Tree != nil && t.Tree.Root != nil {
			w.list(t.Tree.Root, true)
		}
	}
	return w.refs
}

type refWalker struct {
	content string
	refs    templateRefs
}

// line converts a parse position (a byte offset into the template text) into a 1-based line.
func (w *refWalker) line(pos parse.Pos) int {
	n := int(pos)
	if n < 0 {
		return 0
	}
	if n > len(w.content) {
		n = len(w.content)
	}
	return 1 + strings.Count(w.content[:n], "\n")
}

func record(m map[string]int, name string, line int) {
	if old, ok := m[name]; !ok || (line > 0 && line < old) {
		m[name] = line
	}
}

// list walks a list of nodes; atRoot says whether the dot is the template's top-level data.
func (w *refWalker) list(l *parse.ListNode, atRoot bool) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		w.node(n, atRoot)
	}
}

func (w *refWalker) node(n parse.Node, atRoot bool) {
	switch n := n.(type) {
	case *parse.ActionNode:
		w.pipe(n.Pipe, atRoot)
	case *parse.IfNode:
		w.branch(&n.BranchNode, atRoot, atRoot)
	case *parse.RangeNode:
		w.branch(&n.BranchNode, atRoot, false) // the dot is each element
	case *parse.WithNode:
		w.branch(&n.BranchNode, atRoot, false) // the dot is the pipeline's value
	case *parse.TemplateNode:
		w.pipe(n.Pipe, atRoot)
	case *parse.ListNode:
		w.list(n, atRoot)
	}
}

// branch walks an if, range or with: its pipeline and else branch see the outer dot, its body
// sees bodyAtRoot.
func (w *refWalker) branch(b *parse.BranchNode, atRoot, bodyAtRoot bool) {
	w.pipe(b.Pipe, atRoot)
	w.list(b.List, bodyAtRoot)
	w.list(b.ElseList, atRoot)
}

func (w *refWalker) pipe(p *parse.PipeNode, atRoot bool) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			w.arg(arg, atRoot)
		}
		w.indexParams(cmd, atRoot)
	}
}

func (w *refWalker) arg(n parse.Node, atRoot bool) {
	switch n := n.(type) {
	case *parse.FieldNode:
		if atRoot {
			w.field(n.Ident, w.line(n.Pos))
		}
	case *parse.VariableNode:
		switch {
		case len(n.Ident) >= 2 && n.Ident[0] == "$":
			w.field(n.Ident[1:], w.line(n.Pos))
		case len(n.Ident) >= 3 && n.Ident[1] == "Params":
			// $root.Params.X: a variable holding the top-level data (zookeeper's validation.yaml).
			record(w.refs.params, n.Ident[2], w.line(n.Pos))
		}
	case *parse.ChainNode:
		w.arg(n.Node, atRoot)
	case *parse.PipeNode:
		w.pipe(n, atRoot)
	case *parse.IdentifierNode:
		record(w.refs.funcs, n.Ident, w.line(n.Pos))
	}
}

// field records a reference to a field of the top-level data.
func (w *refWalker) field(ident []string, line int) {
	if len(ident) == 0 {
		return
	}
	switch ident[0] {
	case "Params":
		if len(ident) >= 2 {
			record(w.refs.params, ident[1], line)
		}
	case "Pipes":
		if len(ident) >= 2 {
			record(w.refs.pipes, ident[1], line)
		}
	default:
		if !isImplicitVariable(ident[0]) {
			record(w.refs.implicits, ident[0], line)
		}
	}
}

// indexParams records `index .Params "X"`, which KUDO's walker missed (it reported X unused).
func (w *refWalker) indexParams(cmd *parse.CommandNode, atRoot bool) {
	if len(cmd.Args) < 3 {
		return
	}
	if id, ok := cmd.Args[0].(*parse.IdentifierNode); !ok || id.Ident != "index" {
		return
	}
	isParams := false
	switch a := cmd.Args[1].(type) {
	case *parse.FieldNode:
		isParams = atRoot && len(a.Ident) == 1 && a.Ident[0] == "Params"
	case *parse.VariableNode:
		isParams = len(a.Ident) == 2 && a.Ident[1] == "Params"
	}
	if s, ok := cmd.Args[2].(*parse.StringNode); ok && isParams {
		record(w.refs.params, s.Text, w.line(s.Pos))
	}
}

func isImplicitVariable(name string) bool {
	for _, v := range ImplicitVariables {
		if v == name {
			return true
		}
	}
	return false
}
