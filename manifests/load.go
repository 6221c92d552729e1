package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the package in directory dir of fsys ("." for the root): operator.yaml,
// params.yaml and every templates/**.yaml, with KUDO's defaults applied (apiVersion
// kudo.dev/v1beta1, parameters required unless they say otherwise). Files other than these
// are ignored, as KUDO ignores them. Problems that stop the package from being read are
// returned as Findings naming the file and line; Verify finds the rest.
func Load(fsys fs.FS, dir string) (*Package, error) {
	dir = path.Clean(dir)
	p := &Package{Dir: dir, Templates: map[string]*Template{}, Plans: map[string]*Plan{}}
	h := sha256.New()
	var findings Findings

	opPath := p.OperatorFilePath()
	opData, err := readFileBounded(fsys, opPath, MaxPackageFileSize)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, Findings{errorf(opPath, 0, "cannot read: %v", unwrapPathError(err))}
		}
		return nil, Findings{errorf(opPath, 0, "operator package is missing %s: %v", OperatorFileName, unwrapPathError(err))}
	}
	hashFile(h, OperatorFileName, opData)
	findings = append(findings, p.parseOperator(opPath, opData)...)

	parPath := p.ParamsFilePath()
	parData, err := readFileBounded(fsys, parPath, MaxPackageFileSize)
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		findings = append(findings, errorf(parPath, 0, "cannot read: %v", unwrapPathError(err)))
	case err != nil:
		findings = append(findings, errorf(parPath, 0, "operator package is missing %s: %v", ParamsFileName, unwrapPathError(err)))
	default:
		hashFile(h, ParamsFileName, parData)
		findings = append(findings, p.parseParams(parPath, parData)...)
	}

	tdir := joinPath(dir, TemplatesDir)
	var keys []string
	total := int64(len(opData) + len(parData))
	err = fs.WalkDir(fsys, tdir, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && fp == tdir {
				return fs.SkipDir // a package without templates/ is read; Verify judges it
			}
			findings = append(findings, errorf(fp, 0, "cannot read: %v", unwrapPathError(err)))
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".yaml") {
			return nil
		}
		data, err := readFileBounded(fsys, fp, MaxPackageFileSize)
		if err != nil {
			findings = append(findings, errorf(fp, 0, "cannot read: %v", unwrapPathError(err)))
			return nil
		}
		if total += int64(len(data)); total > MaxPackageSize {
			findings = append(findings, errorf(tdir, 0, "the package's files are larger than %s", byteSize(MaxPackageSize)))
			return fs.SkipAll
		}
		key := strings.TrimPrefix(fp, tdir+"/")
		p.Templates[key] = &Template{Key: key, Path: fp, Content: string(data)}
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		findings = append(findings, errorf(tdir, 0, "cannot read templates: %v", err))
	}
	sort.Strings(keys)
	for _, k := range keys {
		hashFile(h, TemplatesDir+"/"+k, []byte(p.Templates[k].Content))
	}
	p.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))

	if findings.HasErrors() {
		findings.Sort()
		return nil, findings.Errors()
	}
	return p, nil
}

func hashFile(h interface{ Write([]byte) (int, error) }, name string, data []byte) {
	fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
	_, _ = h.Write(data)
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// yamlError turns a yaml.v3 error into findings with line numbers.
func yamlError(file string, err error) Findings {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var out Findings
		for _, e := range te.Errors {
			out = append(out, errorf(file, lineOf(e), "%s", stripLine(e)))
		}
		return out
	}
	return Findings{errorf(file, lineOf(err.Error()), "invalid YAML: %s", stripLine(err.Error()))}
}

// lineOf reads the line out of yaml.v3's "yaml: line N: ..." / "line N: ..." messages.
func lineOf(msg string) int {
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range msg[i+5:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func stripLine(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		if i := strings.Index(msg, ": "); i >= 0 {
			return msg[i+2:]
		}
	}
	return msg
}

// documentRoot parses a single-document YAML file into its root mapping node (nil if empty).
func documentRoot(file string, data []byte) (*yaml.Node, Findings) {
	if f := checkText(file, data); f != nil {
		return nil, Findings{*f}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(file, err)
	}
	if fs := checkYAML(file, &doc, false); fs.HasErrors() {
		return nil, fs
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, Findings{errorf(file, root.Line, "expected a YAML mapping at the top level")}
	}
	return root, nil
}

// mappingLines returns the line of every key of a mapping node.
func mappingLines(m *yaml.Node) map[string]int {
	out := map[string]int{}
	if m == nil || m.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		out[m.Content[i].Value] = m.Content[i].Line
	}
	return out
}

// mappingValue returns the value node of key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

type rawOperator struct {
	APIVersion        string       `yaml:"apiVersion"`
	Name              string       `yaml:"name"`
	Description       string       `yaml:"description"`
	OperatorVersion   string       `yaml:"operatorVersion"`
	AppVersion        string       `yaml:"appVersion"`
	KudoVersion       string       `yaml:"kudoVersion"`
	KubernetesVersion string       `yaml:"kubernetesVersion"`
	Maintainers       []Maintainer `yaml:"maintainers"`
	URL               string       `yaml:"url"`
	Tasks             []yaml.Node  `yaml:"tasks"`
	Plans             yaml.Node    `yaml:"plans"`
	NamespaceManifest string       `yaml:"namespaceManifest"`
}

type rawTask struct {
	Name string   `yaml:"name"`
	Kind string   `yaml:"kind"`
	Spec TaskSpec `yaml:"spec"`
}

type rawPlan struct {
	Strategy string      `yaml:"strategy"`
	Phases   []yaml.Node `yaml:"phases"`
}

type rawPhase struct {
	Name     string      `yaml:"name"`
	Strategy string      `yaml:"strategy"`
	Steps    []yaml.Node `yaml:"steps"`
}

type rawStep struct {
	Name  string   `yaml:"name"`
	Tasks []string `yaml:"tasks"`
}

func (p *Package) parseOperator(file string, data []byte) Findings {
	root, fs := documentRoot(file, data)
	if fs != nil {
		return fs
	}
	p.lines.operator = mappingLines(root)
	var raw rawOperator
	if root != nil {
		if err := root.Decode(&raw); err != nil {
			return yamlError(file, err)
		}
	}
	var out Findings
	p.APIVersion = raw.APIVersion
	if p.APIVersion == "" {
		p.APIVersion = DefaultAPIVersion
	} else if p.APIVersion != DefaultAPIVersion {
		out = append(out, errorf(file, p.lines.operator["apiVersion"], "expecting supported API version %s but got %q", DefaultAPIVersion, p.APIVersion))
	}
	p.Name = raw.Name
	p.Description = raw.Description
	p.OperatorVersion = raw.OperatorVersion
	p.AppVersion = raw.AppVersion
	p.KudoVersion = raw.KudoVersion
	p.KubernetesVersion = raw.KubernetesVersion
	p.Maintainers = raw.Maintainers
	p.URL = raw.URL
	p.NamespaceManifest = raw.NamespaceManifest

	for i := range raw.Tasks {
		n := &raw.Tasks[i]
		var t rawTask
		if err := n.Decode(&t); err != nil {
			out = append(out, yamlError(file, err)...)
			continue
		}
		p.Tasks = append(p.Tasks, Task{Name: t.Name, Kind: t.Kind, Spec: t.Spec, Line: n.Line})
	}

	if raw.Plans.Kind != 0 && !(raw.Plans.Kind == yaml.ScalarNode && raw.Plans.ShortTag() == "!!null") {
		if raw.Plans.Kind != yaml.MappingNode {
			out = append(out, errorf(file, raw.Plans.Line, "plans must be a mapping of plan names to plans"))
		} else {
			for i := 0; i+1 < len(raw.Plans.Content); i += 2 {
				k, v := raw.Plans.Content[i], raw.Plans.Content[i+1]
				plan, fs := parsePlan(file, k.Value, k.Line, v)
				out = append(out, fs...)
				if plan != nil {
					p.Plans[plan.Name] = plan
				}
			}
		}
	}
	return out
}

func parsePlan(file, name string, line int, v *yaml.Node) (*Plan, Findings) {
	plan := &Plan{Name: name, Line: line}
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
		return plan, nil
	}
	var raw rawPlan
	if err := v.Decode(&raw); err != nil {
		return nil, yamlError(file, err)
	}
	plan.Strategy = raw.Strategy
	var out Findings
	for i := range raw.Phases {
		pn := &raw.Phases[i]
		var rp rawPhase
		if err := pn.Decode(&rp); err != nil {
			out = append(out, yamlError(file, err)...)
			continue
		}
		phase := Phase{Name: rp.Name, Strategy: rp.Strategy, Line: pn.Line}
		for j := range rp.Steps {
			sn := &rp.Steps[j]
			var rs rawStep
			if err := sn.Decode(&rs); err != nil {
				out = append(out, yamlError(file, err)...)
				continue
			}
			phase.Steps = append(phase.Steps, Step{Name: rs.Name, Tasks: rs.Tasks, Line: sn.Line})
		}
		plan.Phases = append(plan.Phases, phase)
	}
	return plan, out
}

type rawParams struct {
	APIVersion string           `yaml:"apiVersion"`
	Groups     []ParameterGroup `yaml:"groups"`
	Parameters []yaml.Node      `yaml:"parameters"`
}

type rawParameter struct {
	Name        string      `yaml:"name"`
	DisplayName string      `yaml:"displayName"`
	Description string      `yaml:"description"`
	Default     yaml.Node   `yaml:"default"`
	Required    *bool       `yaml:"required"`
	Trigger     string      `yaml:"trigger"`
	Type        string      `yaml:"type"`
	Immutable   *bool       `yaml:"immutable"`
	Enum        []yaml.Node `yaml:"enum"`
	Group       string      `yaml:"group"`
	Advanced    bool        `yaml:"advanced"`
	Hint        string      `yaml:"hint"`
	Scope       string      `yaml:"scope"`
	Sensitive   bool        `yaml:"sensitive"`
}

func (p *Package) parseParams(file string, data []byte) Findings {
	root, fs := documentRoot(file, data)
	if fs != nil {
		return fs
	}
	p.lines.params = mappingLines(root)
	var raw rawParams
	if root != nil {
		if err := root.Decode(&raw); err != nil {
			return yamlError(file, err)
		}
	}
	var out Findings
	p.ParamsAPIVersion = raw.APIVersion
	if p.ParamsAPIVersion == "" {
		p.ParamsAPIVersion = DefaultAPIVersion
	} else if p.ParamsAPIVersion != DefaultAPIVersion {
		out = append(out, errorf(file, p.lines.params["apiVersion"], "expecting supported API version %s but got %q", DefaultAPIVersion, p.ParamsAPIVersion))
	}
	p.Groups = raw.Groups
	for i := range raw.Parameters {
		n := &raw.Parameters[i]
		var rp rawParameter
		if err := n.Decode(&rp); err != nil {
			out = append(out, yamlError(file, err)...)
			continue
		}
		par := &Parameter{
			Name: rp.Name, DisplayName: rp.DisplayName, Description: rp.Description,
			Required: true, Trigger: rp.Trigger, Type: ParamType(rp.Type),
			Group: rp.Group, Advanced: rp.Advanced, Hint: rp.Hint, Sensitive: rp.Sensitive, Line: n.Line, Scope: rp.Scope,
		}
		if rp.Required != nil {
			par.Required = *rp.Required
		}
		if rp.Immutable != nil {
			par.Immutable = *rp.Immutable
		}
		if rp.Default.Kind != 0 {
			v, ok, err := ValueFromNode(&rp.Default)
			if err != nil {
				out = append(out, errorf(file, rp.Default.Line, "parameter %q: invalid default: %v", rp.Name, err))
			} else if ok {
				par.Default = &v
			}
		}
		if rp.Enum != nil {
			// Non-nil even when empty, so Verify can tell `enum: []` from no enum.
			par.Enum = []Value{}
		}
		for j := range rp.Enum {
			v, ok, err := ValueFromNode(&rp.Enum[j])
			if err != nil || !ok {
				out = append(out, errorf(file, rp.Enum[j].Line, "parameter %q: invalid enum value", rp.Name))
				continue
			}
			par.Enum = append(par.Enum, v)
		}
		p.Parameters = append(p.Parameters, par)
	}
	return out
}
