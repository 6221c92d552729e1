package manifests

import (
	"strings"
	"testing"
	"testing/fstest"
)

// demoPackage writes a small package "demo" at operatorVersion v into fsys.
func demoPackage(fsys fstest.MapFS, dir, version, appVersion string) {
	app := ""
	if appVersion != "" {
		app = "appVersion: " + appVersion + "\n"
	}
	fsys[dir+"/operator.yaml"] = &fstest.MapFile{Data: []byte(`apiVersion: kudo.dev/v1beta1
name: demo
operatorVersion: ` + version + "\n" + app + `kubernetesVersion: 1.20.0
tasks:
  - name: app
    kind: Apply
    spec:
      resources: [config.yaml]
  - name: noop
    kind: Dummy
    spec: {done: true}
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: app
            tasks: [app]
  backup:
    phases:
      - name: main
        steps:
          - name: backup
            tasks: [noop]
  cleanup:
    phases:
      - name: main
        steps:
          - name: cleanup
            tasks: [noop]
`)}
	fsys[dir+"/params.yaml"] = &fstest.MapFile{Data: []byte(`parameters:
  - name: REPLICAS
    type: integer
    default: 1
  - name: SIZE
    type: string
    enum: [small, large]
    default: small
  - name: LABELS
    type: map
    default: {}
  - name: TOKEN
    description: required, no default
  - name: NOTE
    required: false
`)}
	fsys[dir+"/templates/config.yaml"] = &fstest.MapFile{Data: []byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Name }}
data:
  replicas: "{{ .Params.REPLICAS }}"
  size: {{ .Params.SIZE }}
  token: {{ .Params.TOKEN | quote }}
  note: {{ .Params.NOTE | quote }}
  labels: {{ .Params.LABELS | toJson | quote }}
`)}
}

func demoRepo(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	demoPackage(fsys, "operators/demo/1.0.0", "1.0.0", "")
	demoPackage(fsys, "operators/demo/1.1.0", "1.1.0", "")
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return fsys
}

// inst returns an instance document with extra spec lines (indented by two spaces).
func inst(ns, name, spec string) string {
	return "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\nspec:\n  operator:\n    name: demo\n" + spec
}

const token = "  parameters:\n    TOKEN: t\n"

func TestIndexBadInstanceFiles(t *testing.T) {
	cases := []struct {
		name, content string
		file          string // expected file in the finding (default instances/bad.yaml)
		line          int    // expected line, 0: any
		msg           string
	}{
		{name: "malformed YAML", content: "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: [x\n", line: 0, msg: "invalid YAML"},
		{name: "unknown operator", content: strings.Replace(inst("data", "bad", token), "name: demo", "name: nosuch", 1), line: 7, msg: `unknown operator "nosuch"`},
		{name: "unknown version", content: strings.Replace(inst("data", "bad", token), "name: demo", "name: demo\n    version: 9.9.9", 1), line: 7, msg: "demo has no version 9.9.9 (the repository has 1.0.0, 1.1.0)"},
		{name: "unknown parameter", content: inst("data", "bad", token+"    REPLICA: 3\n"), line: 11, msg: "spec.parameters.REPLICA: unknown parameter for demo 1.1.0"},
		{name: "unknown parameter in another case", content: inst("data", "bad", token+"    replicas: 3\n"), line: 11, msg: "did you mean REPLICAS?"},
		{name: "wrong type", content: inst("data", "bad", token+"    REPLICAS: three\n"), line: 11, msg: `spec.parameters.REPLICAS: "three" is not an integer`},
		{name: "float for integer", content: inst("data", "bad", token+"    REPLICAS: 1.5\n"), line: 11, msg: "is not an integer"},
		{name: "array for a map", content: inst("data", "bad", token+"    LABELS: [a]\n"), line: 11, msg: "a array is not a map"},
		{name: "value outside the enum", content: inst("data", "bad", token+"    SIZE: medium\n"), line: 11, msg: `"medium" is not one of the allowed values`},
		{name: "missing required parameter", content: inst("data", "bad", ""), line: 7, msg: "parameter TOKEN of demo 1.1.0 is required and has no default"},
		{name: "null parameter", content: inst("data", "bad", token+"    NOTE: null\n"), line: 11, msg: "null is not a value"},
		{name: "bad DNS name", content: inst("data", "Bad_Name", token), line: 4, msg: `metadata.name "Bad_Name" is not a valid name`},
		{name: "bad namespace", content: inst("Data!", "bad", token), line: 5, msg: `metadata.namespace "Data!" is not a valid namespace name`},
		{name: "missing namespace", content: strings.Replace(inst("data", "bad", token), "  namespace: data\n", "", 1), msg: "metadata.namespace is required"},
		{name: "unknown field", content: inst("data", "bad", token+"  paramters: {}\n"), line: 11, msg: `spec: unknown field "paramters"`},
		{name: "unsupported apiVersion", content: strings.Replace(inst("data", "bad", token), "kudod.dev/v1alpha1", "kudod.dev/v2", 1), line: 1, msg: `unsupported apiVersion "kudod.dev/v2"`},
		{name: "bad cron", content: inst("data", "bad", token+"  schedules:\n    - name: nightly\n      plan: backup\n      cron: \"61 2 * * *\"\n"), line: 14, msg: "spec.schedules[0].cron"},
		{name: "schedule of an unknown plan", content: inst("data", "bad", token+"  schedules:\n    - name: nightly\n      plan: backupp\n      cron: \"@daily\"\n"), line: 13, msg: `has no plan "backupp"`},
		{name: "scheduled cleanup", content: inst("data", "bad", token+"  schedules:\n    - name: nightly\n      plan: cleanup\n      cron: \"@daily\"\n"), line: 13, msg: "the cleanup plan cannot be scheduled"},
		{name: "unknown time zone", content: inst("data", "bad", token+"  schedules:\n    - name: nightly\n      plan: backup\n      cron: \"@daily\"\n      timeZone: Mars/Olympus\n"), line: 15, msg: `unknown time zone "Mars/Olympus"`},
		{name: "duplicate schedule name", content: inst("data", "bad", token+"  schedules:\n    - name: n\n      plan: backup\n      cron: \"@daily\"\n    - name: n\n      plan: backup\n      cron: \"@hourly\"\n"), line: 15, msg: `duplicate schedule name "n"`},
		{name: "bad concurrency policy", content: inst("data", "bad", token+"  schedules:\n    - name: n\n      plan: backup\n      cron: \"@daily\"\n      concurrencyPolicy: Allow\n"), line: 15, msg: `"Allow" is not Forbid or Replace`},
		{name: "time zone in the cron expression", content: inst("data", "bad", token+"  schedules:\n    - name: n\n      plan: backup\n      cron: \"CRON_TZ=UTC 0 2 * * *\"\n"), line: 14, msg: "set the time zone in timeZone"},
		{name: "bad step timeout", content: inst("data", "bad", token+"  stepTimeout: soon\n"), line: 11, msg: "spec.stepTimeout"},
		{name: "KUDO instance of an unknown package", content: "apiVersion: kudo.dev/v1beta1\nkind: Instance\nmetadata:\n  name: bad\n  namespace: data\nspec:\n  operatorVersion:\n    name: demo-9.9.9\n  parameters:\n    TOKEN: t\n", line: 7, msg: `no package "demo-9.9.9"`},
		{name: "suspend not a boolean", content: inst("data", "bad", token+"  suspend: maybe\n"), line: 11, msg: "spec.suspend"},
	}
	good := inst("data", "good", token)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idx, err := IndexRepository(demoRepo(map[string]string{"instances/bad.yaml": c.content, "instances/good.yaml": good}), IndexOptions{})
			if err != nil {
				t.Fatal(err)
			}
			errs := idx.Findings.Errors()
			if len(errs) == 0 {
				t.Fatalf("no error")
			}
			found := false
			for _, f := range errs {
				if strings.Contains(f.Message, c.msg) && f.File == "instances/bad.yaml" && (c.line == 0 || f.Line == c.line) {
					found = true
				}
			}
			if !found {
				t.Errorf("want an error in instances/bad.yaml:%d containing %q, got %v", c.line, c.msg, errs)
			}
			if idx.Instance("data/good") == nil {
				t.Errorf("the valid instance of the same commit was not indexed")
			}
			if idx.Instance("data/bad") != nil {
				t.Errorf("the bad instance was indexed as valid")
			}
		})
	}
}

func TestIndexDuplicateInstance(t *testing.T) {
	idx, err := IndexRepository(demoRepo(map[string]string{
		"instances/a.yaml": inst("data", "zk", token),
		"instances/b.yaml": inst("data", "zk", token),
	}), IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Neither declaration is taken, and the finding names both files and holds the commit.
	if idx.Instance("data/zk") != nil {
		t.Fatalf("the first declaration should not be taken")
	}
	errs := idx.Findings.Errors()
	if len(errs) != 1 || errs[0].File != "instances/b.yaml" || !strings.Contains(errs[0].Message, "declared twice: in instances/a.yaml:4 and here") {
		t.Fatalf("got %v", errs)
	}
	if len(idx.Held) != 1 || idx.Held[0] != errs[0] || idx.InvalidFindings["data/zk"] == nil {
		t.Fatalf("held %v, invalid %v", idx.Held, idx.InvalidFindings)
	}
}

func TestIndexResolvesAndIgnores(t *testing.T) {
	fsys := demoRepo(map[string]string{
		"instances/latest.yaml": inst("data", "latest", token),
		"instances/pinned.yaml": strings.Replace(inst("data", "pinned", token), "name: demo", "name: demo\n    version: 1.0.0", 1),
		"instances/kudo.yaml":   "apiVersion: kudo.dev/v1beta1\nkind: Instance\nmetadata:\n  name: kudo\n  namespace: data\nspec:\n  operatorVersion:\n    name: demo-1.0.0\n  parameters:\n    TOKEN: t\n    REPLICAS: \"2\"\n",
		"instances/multi.yaml":  inst("web", "one", token) + "\n---\n# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + inst("web", "two", token),
		"ignored/bad.yaml":      "kind: Instance\napiVersion: kudod.dev/v1alpha1\nmetadata: [",
		".kudodignore":          "# not scanned\nignored/\n",
		".github/workflow.yaml": "kind: Instance\napiVersion: kudod.dev/v1alpha1\nbroken: [",
		"README.md":             "kind: Instance",
	})
	idx, err := IndexRepository(fsys, IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if errs := idx.Findings.Errors(); len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	want := map[string]string{"data/latest": "1.1.0", "data/pinned": "1.0.0", "data/kudo": "1.0.0", "web/one": "1.1.0", "web/two": "1.1.0"}
	if len(idx.Instances) != len(want) {
		t.Fatalf("got %d instances, want %d", len(idx.Instances), len(want))
	}
	for key, v := range want {
		in := idx.Instance(key)
		if in == nil || in.Package.OperatorVersion != v {
			t.Errorf("%s: got %+v, want version %s", key, in, v)
		}
	}
	if got := idx.Instance("data/kudo").ParameterStrings()["REPLICAS"]; got != "2" {
		t.Errorf("KUDO string parameter = %q", got)
	}
	if len(idx.Packages) != 2 {
		t.Errorf("got %d packages", len(idx.Packages))
	}
}

func TestIndexPathLimitsInstancesNotPackages(t *testing.T) {
	fsys := demoRepo(map[string]string{
		"clusters/prod/a.yaml": inst("data", "a", token),
		"clusters/dev/b.yaml":  inst("data", "b", token),
	})
	idx, err := IndexRepository(fsys, IndexOptions{Path: "."})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Instances) != 2 {
		t.Fatalf("whole tree: got %d instances", len(idx.Instances))
	}
	// Only instances under the path count; packages are found anywhere.
	idx, err = IndexRepository(fsys, IndexOptions{Path: "clusters/prod"})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Instances) != 1 || idx.Instance("data/a") == nil || len(idx.Invalid) != 0 {
		t.Fatalf("path clusters/prod: got %d valid, %d invalid", len(idx.Instances), len(idx.Invalid))
	}
	if _, err := IndexRepository(fsys, IndexOptions{Path: "clusters/nope"}); err == nil {
		t.Fatal("a path that does not exist must be an error")
	}
}
