package manifests

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// templateUse is how the tasks of a package use one template.
type templateUse struct {
	byTask        bool
	parameterFile bool   // a KudoOperator parameterFile: a YAML map, not Kubernetes objects
	pipeTasks     []Task // the Pipe tasks using it as their pod
}

// Dummy variables for the render check: KUDO's verify used the variable names themselves
// ("Name"); kudod uses values that are valid object names.
var verifyRenderInput = RenderInput{
	Name: "instance", Namespace: "namespace", PlanName: "plan", PhaseName: "phase", StepName: "step",
}

// nonDeterministicFuncs are sprig functions whose result changes on every call. kudod
// re-renders templates to plan, prune and detect drift, so an object using one never settles.
var nonDeterministicFuncs = map[string]bool{
	"now": true, "ago": true, "randAlphaNum": true, "randAlpha": true, "randNumeric": true, "randAscii": true,
	"randBytes": true, "randInt": true, "uuidv4": true, "shuffle": true, "bcrypt": true, "htpasswd": true,
	"encryptAES": true, "genCA": true, "genCAWithKey": true, "genPrivateKey": true, "genSelfSignedCert": true,
	"genSelfSignedCertWithKey": true, "genSignedCert": true, "genSignedCertWithKey": true,
}

// templates checks everything about templates: which tasks use them, what they refer to
// (parameters, implicit variables, pipes, functions), that they render with default
// parameters into what their users expect, and where Namespaces may appear.
func (v *verifier) templates() {
	uses := v.templateUses()
	usedParams := map[string]bool{}
	v.input = v.renderInput()
	// Variables fails only for a default that is not valid for its type, which parameters()
	// reports; without variables nothing can render.
	vars, varsErr := v.p.Variables(v.input)
	for _, key := range v.p.TemplateKeys() {
		use := uses[key]
		if v.templateRefs(key, usedParams) && varsErr == nil {
			v.renderTemplate(key, use, vars)
		}
		v.namespaceInTemplate(key)
		if !use.byTask && key != v.p.NamespaceManifest {
			v.warnf(v.p.TemplatePath(key), 0, "template %q is not used by any task", key)
		}
	}
	v.toggleParameters(usedParams)
	v.unusedParameters(usedParams)
	if varsErr == nil {
		v.namespaceManifest(vars)
	}
}

// renderInput is the dummy instance of the render check, with the pipe keys of every plan.
func (v *verifier) renderInput() RenderInput {
	in := verifyRenderInput
	in.Pipes = map[string]string{}
	for _, plan := range v.p.PlanNames() {
		for k, name := range v.p.Pipes(in.Name, plan) {
			if _, ok := in.Pipes[k]; !ok {
				in.Pipes[k] = name
			}
		}
	}
	return in
}

// templateUses finds the templates tasks name and reports the names that are missing.
func (v *verifier) templateUses() map[string]templateUse {
	file := v.p.OperatorFilePath()
	uses := map[string]templateUse{}
	mark := func(t Task, key, role string, update func(*templateUse)) {
		if key == "" {
			return
		}
		if _, ok := v.p.Templates[key]; !ok {
			v.errorf(file, t.Line, "task %q names %s %q, which is not in %s/", t.Name, role, key, TemplatesDir)
			return
		}
		u := uses[key]
		u.byTask = true
		if update != nil {
			update(&u)
		}
		uses[key] = u
	}
	for _, t := range v.p.Tasks {
		for _, tt := range t.Templates() {
			switch tt.Role {
			case RoleResource:
				mark(t, tt.Key, "resource", nil)
			case RolePipePod:
				mark(t, tt.Key, "pod template", func(u *templateUse) { u.pipeTasks = append(u.pipeTasks, t) })
			case RoleParameterFile:
				mark(t, tt.Key, "parameterFile", func(u *templateUse) { u.parameterFile = true })
			}
		}
	}
	return uses
}

// templateRefs parses a template and checks what it refers to. It returns false when the
// template has errors a render would only repeat.
func (v *verifier) templateRefs(key string, usedParams map[string]bool) bool {
	file := v.p.TemplatePath(key)
	tpl, err := v.p.parsed(key)
	if err != nil {
		line, msg := templateErrorLine(key, unwrapRenderError(err))
		v.errorf(file, line, "template does not parse: %s", msg)
		v.refsIncomplete = true
		return false
	}
	refs := findTemplateRefs(tpl, v.p.Templates[key].Content)
	ok := true
	for _, name := range sortedKeys(refs.params) {
		usedParams[name] = true
		if v.p.Parameter(name) == nil {
			v.errorf(file, refs.params[name], "template %s uses parameter %q, which is not defined in %s%s", key, name, ParamsFileName, v.p.DidYouMean(name))
			ok = false
		}
	}
	for _, name := range sortedKeys(refs.implicits) {
		v.errorf(file, refs.implicits[name], "template %s defines an invalid implicit parameter %q (available: %s, .Params, .Pipes)", key, name, strings.Join(ImplicitVariables, ", "))
		ok = false
	}
	for _, name := range sortedKeys(refs.pipes) {
		if _, defined := v.input.Pipes[name]; !defined {
			v.errorf(file, refs.pipes[name], "template %s uses pipe key %q, which no Pipe task of any plan produces", key, name)
			ok = false
		}
	}
	for _, name := range sortedKeys(refs.funcs) {
		if why, disabled := disabledFuncs[name]; disabled {
			v.errorf(file, refs.funcs[name], "template %s calls %s, which kudod does not allow: %s", key, name, why)
			ok = false
		} else if nonDeterministicFuncs[name] {
			v.warnf(file, refs.funcs[name], "template %s calls %s, whose result changes on every render: kudod re-renders templates for every plan and drift check, so the objects never settle", key, name)
		}
	}
	return ok
}

// renderTemplate renders a template with default parameters and checks the result is what its
// users need: a YAML map for a KudoOperator parameterFile, a valid pipe pod for a Pipe task,
// Kubernetes objects with a name for everything else.
func (v *verifier) renderTemplate(key string, use templateUse, vars map[string]any) {
	file := v.p.TemplatePath(key)
	text, err := v.p.renderText(v.ctx, key, vars)
	if err != nil {
		line, msg := templateErrorLine(key, unwrapRenderError(err))
		v.errorf(file, line, "template does not render with default parameters: %s", msg)
		return
	}
	if use.parameterFile {
		v.parameterFile(file, text)
		if len(use.pipeTasks) == 0 && !v.usedAsResource(key) {
			return
		}
	}
	objs, err := ParseObjects(file, text)
	if err != nil {
		// The lines are those of the rendered output, which rarely match the template's.
		v.errorf(file, 0, "template does not render to Kubernetes objects with default parameters (lines of the rendered output): %s", unwrapRenderError(err))
		return
	}
	if len(use.pipeTasks) > 0 {
		for _, t := range use.pipeTasks {
			if err := CheckPipePod(objs, t.Spec.Pipe); err != nil {
				v.errorf(file, 0, "pod template of Pipe task %q: %v", t.Name, err)
			}
		}
		return
	}
	for i, o := range objs {
		if o.GetName() == "" {
			v.errorf(file, 0, "object %d (%s) has no metadata.name", i+1, o.GetKind())
		}
	}
	v.protectedCRDs(key, objs)
}

// crdKind finds `kind: CustomResourceDefinition` at the top level of a template's text.
var crdKind = regexp.MustCompile(`(?m)^kind:[ \t]*["']?CustomResourceDefinition["']?[ \t]*(#.*)?\r?$`)

// protectedCRDs warns about CRDs in a protected group (*.k8s.io, *.kubernetes.io) without the
// annotation api-approved.kubernetes.io: a v1 API server refuses them. A v1beta1 CRD never
// needed it, and clusters since Kubernetes 1.22 serve only v1, so kudod adds "unapproved, ..."
// when it upgrades one; the template should say so itself (kubernetes/enhancements#1111).
func (v *verifier) protectedCRDs(key string, objs []*unstructured.Unstructured) {
	file := v.p.TemplatePath(key)
	lines := kindLines(v.p.Templates[key].Content, crdKind)
	n := 0
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" || o.GroupVersionKind().Group != "apiextensions.k8s.io" {
			continue
		}
		line := 0
		if n < len(lines) {
			line = lines[n]
		}
		n++
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		if _, ok := o.GetAnnotations()[AnnotationAPIApproved]; ok || !IsProtectedGroup(group) {
			continue
		}
		if o.GroupVersionKind().Version == "v1beta1" {
			v.warnf(file, line, "CustomResourceDefinition %s is apiextensions.k8s.io/v1beta1 in the protected group %s and has no annotation %s, which v1 requires (clusters since Kubernetes 1.22 serve only v1): kudod adds %q when it upgrades the CRD; set the annotation in the template", o.GetName(), group, AnnotationAPIApproved, unapprovedValue)
		} else {
			v.warnf(file, line, "CustomResourceDefinition %s is in the protected group %s without the annotation %s: the API server refuses it; set the URL of its API review, or a value beginning with \"unapproved\"", o.GetName(), group, AnnotationAPIApproved)
		}
	}
}

// kindLines returns the lines (from 1) where kind matches in a template's text.
func kindLines(content string, kind *regexp.Regexp) []int {
	var out []int
	for _, loc := range kind.FindAllStringIndex(content, -1) {
		out = append(out, 1+strings.Count(content[:loc[0]], "\n"))
	}
	return out
}

// parameterFile checks a rendered KudoOperator parameterFile is a YAML map (or empty): the
// parameter values of the child instance.
func (v *verifier) parameterFile(file, text string) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		v.errorf(file, 0, "parameterFile does not render to YAML with default parameters (lines of the rendered output): %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	if len(doc.Content) == 0 {
		return
	}
	if fs := checkYAML(file, &doc, true); len(fs) > 0 {
		v.errorf(file, 0, "parameterFile does not render to usable YAML with default parameters (lines of the rendered output): line %d: %s", fs[0].Line, fs[0].Message)
		return
	}
	root := doc.Content[0]
	if root.Kind == yaml.MappingNode || (root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
		return
	}
	what := "a scalar"
	if root.Kind == yaml.SequenceNode {
		what = "a list"
	}
	v.errorf(file, 0, "parameterFile must render to a YAML map of parameter values, renders to %s", what)
}

// usedAsResource reports whether a task renders the template to objects it applies or deletes.
func (v *verifier) usedAsResource(key string) bool {
	for _, t := range v.p.Tasks {
		for _, tt := range t.Templates() {
			if tt.Role == RoleResource && tt.Key == key {
				return true
			}
		}
	}
	return false
}

var pipeFileName = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// CheckPipePod applies KUDO's pipe pod rules (task_pipe.go: validate), which KUDO checked only
// when the plan ran: one Pod with one init container and no containers, one emptyDir volume
// mounted by the init container, every pipe file inside that mount.
func CheckPipePod(objs []*unstructured.Unstructured, pipes []PipeSpec) error {
	if len(objs) != 1 || objs[0].GetKind() != "Pod" {
		return errors.New("must render to exactly one Pod")
	}
	pod := objs[0].Object
	if c, _, _ := unstructured.NestedSlice(pod, "spec", "containers"); len(c) > 0 {
		return errors.New("must not have containers: pipe files are produced by its init container")
	}
	inits, _, _ := unstructured.NestedSlice(pod, "spec", "initContainers")
	if len(inits) != 1 {
		return fmt.Errorf("must have exactly one init container, has %d", len(inits))
	}
	if rp, _, _ := unstructured.NestedString(pod, "spec", "restartPolicy"); rp != "" && rp != "OnFailure" {
		return fmt.Errorf("restartPolicy must be OnFailure or unset, is %q", rp)
	}
	vols, _, _ := unstructured.NestedSlice(pod, "spec", "volumes")
	var shared []string
	for _, vol := range vols {
		if vm, ok := vol.(map[string]any); ok {
			if _, ok := vm["emptyDir"]; ok {
				name, _ := vm["name"].(string)
				shared = append(shared, name)
			}
		}
	}
	if len(shared) != 1 {
		return fmt.Errorf("must have exactly one emptyDir volume for the pipe files, has %d", len(shared))
	}
	init, _ := inits[0].(map[string]any)
	mounts, _, _ := unstructured.NestedSlice(init, "volumeMounts")
	mountPath := ""
	for _, m := range mounts {
		if mm, ok := m.(map[string]any); ok && mm["name"] == shared[0] {
			mountPath, _ = mm["mountPath"].(string)
		}
	}
	if mountPath == "" {
		return fmt.Errorf("the init container must mount the emptyDir volume %q", shared[0])
	}
	for _, pf := range pipes {
		f := pf.File
		if f == "" {
			f = pf.EnvFile
		}
		if !isUnder(mountPath, f) {
			return fmt.Errorf("pipe file %s is not inside %s, where the init container mounts the shared volume", f, mountPath)
		}
		if !pipeFileName.MatchString(path.Base(f)) {
			return fmt.Errorf("pipe file name %s may only contain letters, digits, '.', '_' and '-'", path.Base(f))
		}
	}
	return nil
}

func isUnder(dir, file string) bool {
	dir, file = path.Clean("/"+dir), path.Clean("/"+file)
	return dir == "/" && file != "/" || strings.HasPrefix(file, dir+"/")
}

// namespaceKind finds `kind: Namespace` at the top level of a template's text, as KUDO's
// NamespaceVerifier does, so a Namespace in a branch the defaults do not render is found too.
var namespaceKind = regexp.MustCompile(`(?m)^kind:[ \t]*["']?Namespace["']?[ \t]*(#.*)?\r?$`)

// namespaceInTemplate: only namespaceManifest may hold a Namespace. kudod creates instance
// namespaces itself; a Namespace among a plan's objects would be owned, and pruned, by one
// instance.
func (v *verifier) namespaceInTemplate(key string) {
	if key == v.p.NamespaceManifest {
		return
	}
	content := v.p.Templates[key].Content
	if loc := namespaceKind.FindStringIndex(content); loc != nil {
		line := 1 + strings.Count(content[:loc[0]], "\n")
		v.errorf(v.p.TemplatePath(key), line, "template holds a kind: Namespace: only the namespaceManifest template may")
	}
}

// namespaceManifest: the template it names exists and renders to exactly one Namespace.
func (v *verifier) namespaceManifest(vars map[string]any) {
	key := v.p.NamespaceManifest
	if key == "" {
		return
	}
	if _, ok := v.p.Templates[key]; !ok {
		v.errorf(v.p.OperatorFilePath(), v.opLine("namespaceManifest"), "namespaceManifest %q is not in %s/", key, TemplatesDir)
		return
	}
	text, err := v.p.renderText(v.ctx, key, vars)
	if err != nil {
		return // reported by renderTemplate
	}
	objs, err := ParseObjects(v.p.TemplatePath(key), text)
	if err != nil {
		return // reported by renderTemplate
	}
	if len(objs) != 1 || objs[0].GetKind() != "Namespace" {
		kinds := make([]string, 0, len(objs))
		for _, o := range objs {
			kinds = append(kinds, o.GetKind())
		}
		v.errorf(v.p.TemplatePath(key), 0, "namespaceManifest must render to exactly one Namespace, renders to [%s]", strings.Join(kinds, ", "))
	}
}

// toggleParameters: a Toggle's parameter is defined and, when it has a default, the default is
// a boolean (KUDO failed the plan at run time otherwise).
func (v *verifier) toggleParameters(usedParams map[string]bool) {
	file := v.p.OperatorFilePath()
	for _, t := range v.p.Tasks {
		if t.Kind != TaskToggle || t.Spec.Parameter == "" {
			continue
		}
		usedParams[t.Spec.Parameter] = true
		par := v.p.Parameter(t.Spec.Parameter)
		if par == nil {
			v.errorf(file, t.Line, "task %q (Toggle) names parameter %q, which is not defined in %s%s", t.Name, t.Spec.Parameter, ParamsFileName, v.p.DidYouMean(t.Spec.Parameter))
			continue
		}
		if par.Default != nil {
			if _, err := strconv.ParseBool(strings.TrimSpace(par.Default.Text)); err != nil {
				v.errorf(file, t.Line, "task %q (Toggle) parameter %q has default %q, which is not a boolean", t.Name, par.Name, par.Default.Text)
			}
		}
	}
}

// unusedParameters warns about parameters nothing uses, unless changing them runs a plan.
func (v *verifier) unusedParameters(usedParams map[string]bool) {
	if v.refsIncomplete {
		return // a template that does not parse may use any of them
	}
	for _, par := range v.p.Parameters {
		if par.Name != "" && !usedParams[par.Name] && par.Trigger == "" {
			v.warnf(v.p.ParamsFilePath(), par.Line, "parameter %q defined but not used", par.Name)
		}
	}
}

// unwrapRenderError returns the message of a render error without the template path the
// finding names anyway.
func unwrapRenderError(err error) string {
	var re *RenderError
	if errors.As(err, &re) {
		if re.Document > 0 {
			return fmt.Sprintf("document %d: %v", re.Document, re.Err)
		}
		return re.Err.Error()
	}
	return err.Error()
}

// templateErrorLine takes the line out of a text/template error ("template: key:12:5: msg" or
// "key:12: msg") and returns it with the rest of the message.
func templateErrorLine(key, msg string) (int, string) {
	rest := strings.TrimPrefix(msg, "template: ")
	if !strings.HasPrefix(rest, key+":") {
		return 0, msg
	}
	rest = rest[len(key)+1:]
	line, rest, ok := leadingNumber(rest)
	if !ok {
		return 0, msg
	}
	if strings.HasPrefix(rest, ":") {
		if _, r, ok := leadingNumber(rest[1:]); ok {
			rest = r // the column
		}
	}
	return line, strings.TrimPrefix(rest, ": ")
}

func leadingNumber(s string) (int, string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, s, false
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return 0, s, false
	}
	return n, s[i:], true
}
