package manifests

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// planScopedRepo is demoRepo whose packages have a plan-scoped BACKUP_NAME, a required
// plan-scoped TARGET without default, an immutable DATA_DIR and a sensitive DB_PASSWORD.
func planScopedRepo(files map[string]string) fstest.MapFS {
	fsys := demoRepo(files)
	for _, dir := range []string{"operators/demo/1.0.0", "operators/demo/1.1.0"} {
		f := fsys[dir+"/params.yaml"]
		f.Data = append(f.Data, []byte(`  - name: BACKUP_NAME
    default: manual
    scope: plan
  - name: TARGET
    scope: plan
  - name: DATA_DIR
    default: /data
    immutable: true
  - name: DB_PASSWORD
    type: integer
    default: 1
`)...)
	}
	return fsys
}

func TestValidatePlanParameters(t *testing.T) {
	idx, err := IndexRepository(planScopedRepo(nil), IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := idx.Package("demo", "1.1.0", "")
	tests := []struct {
		name   string
		values map[string]string
		want   []string // substrings of the error; none: valid
		absent string   // must not be in the error
	}{
		{name: "plan-scoped and instance parameters", values: map[string]string{"BACKUP_NAME": "b1", "REPLICAS": "3", "TARGET": "x"}},
		{name: "none", values: nil},
		{name: "unknown", values: map[string]string{"BACKUP_NAM": "b1"}, want: []string{"parameter BACKUP_NAM: unknown parameter for demo 1.1.0"}},
		{name: "another case", values: map[string]string{"backup_name": "b1"}, want: []string{`did you mean "BACKUP_NAME"?`}},
		{name: "wrong type", values: map[string]string{"REPLICAS": "three"}, want: []string{`parameter REPLICAS: "three" is not an integer`}},
		{name: "outside the enum", values: map[string]string{"SIZE": "medium"}, want: []string{"not one of the allowed values"}},
		{name: "immutable", values: map[string]string{"DATA_DIR": "/x"}, want: []string{"DATA_DIR is immutable"}},
		{name: "sensitive value kept out", values: map[string]string{"DB_PASSWORD": "hunter2"}, want: []string{"DB_PASSWORD", "<sensitive>"}, absent: "hunter2"},
		{name: "too large", values: map[string]string{"NOTE": strings.Repeat("x", MaxPlanParameterSize+1)}, want: []string{"more than the 16384 a run"}},
		{name: "every error at once", values: map[string]string{"X": "1", "REPLICAS": "many"}, want: []string{"parameter X", "parameter REPLICAS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.ValidatePlanParameters(tt.values)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.absent != "" && strings.Contains(err.Error(), tt.absent) {
				t.Errorf("error %q shows %q", err, tt.absent)
			}
		})
	}
	many := map[string]string{}
	for i := 0; i <= MaxPlanParameters; i++ {
		many[strings.Repeat("P", i+1)] = "1"
	}
	if err := p.ValidatePlanParameters(many); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("65 parameters: %v", err)
	}
}

func TestRenderScheduleValue(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database")
	}
	at := time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC)
	in := ScheduleValueInput{ScheduledTime: at, Name: "db", Namespace: "data"}
	tests := []struct {
		text string
		in   ScheduleValueInput
		want string
		err  string
	}{
		{text: "plain", in: in, want: "plain"},
		{text: `nightly-{{ .ScheduledTime | date "0102-1504" }}`, in: in, want: "nightly-0102-0304"},
		{text: `{{ .ScheduledTime | date "2006-01-02T15:04" }}`, in: ScheduleValueInput{ScheduledTime: at.In(berlin)}, want: "2024-01-02T04:04"},
		{text: `{{ .Namespace }}-{{ .Name }}-{{ .ScheduledTime.Unix }}`, in: in, want: "data-db-1704164640"},
		{text: `{{ .Params.X }}`, in: in, err: "Params"},
		{text: `{{ env "HOME" }}`, in: in, err: `function "env" is not allowed`},
		{text: `{{ .ScheduledTime | date "0102" `, in: in, err: "unclosed action"},
		{text: `{{ repeat 20000 "x" }}`, in: in, err: "exceeds 16 KiB (output limit)"},
	}
	for _, tt := range tests {
		got, err := RenderScheduleValue(tt.text, tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want %q", tt.text, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%s: %q, %v; want %q", tt.text, got, err, tt.want)
		}
	}
}

// Plan-scoped parameters are refused in instance files and exempt from the required check;
// a schedule's parameters are checked for known names, valid literal values and templates
// that parse.
func TestIndexPlanScopedParameters(t *testing.T) {
	sched := func(params string) string {
		return token + "  schedules:\n    - name: nightly\n      plan: backup\n      cron: \"@daily\"\n      parameters:\n" + params
	}
	cases := []struct {
		name, spec string
		msg        string // "": valid
	}{
		{name: "none given", spec: token},
		{name: "a schedule's template", spec: sched("        BACKUP_NAME: 'nightly-{{ .ScheduledTime | date \"0102\" }}'\n        REPLICAS: \"2\"\n")},
		{name: "set in the instance", spec: token + "    BACKUP_NAME: b1\n", msg: "spec.parameters.BACKUP_NAME: the parameter is plan-scoped"},
		{name: "unknown in a schedule", spec: sched("        BACKUP_NAM: b1\n"), msg: "spec.schedules[0].parameters: parameter BACKUP_NAM: unknown parameter"},
		{name: "unknown template in a schedule", spec: sched("        BACKUP_NAM: '{{ .Name }}'\n"), msg: "parameter BACKUP_NAM: unknown parameter"},
		{name: "bad literal in a schedule", spec: sched("        REPLICAS: many\n"), msg: `parameter REPLICAS: "many" is not an integer`},
		{name: "broken template in a schedule", spec: sched("        BACKUP_NAME: '{{ .Name '\n"), msg: "spec.schedules[0].parameters.BACKUP_NAME"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idx, err := IndexRepository(planScopedRepo(map[string]string{"instances/a.yaml": inst("data", "a", c.spec)}), IndexOptions{})
			if err != nil {
				t.Fatal(err)
			}
			errs := idx.Findings.Errors()
			if c.msg == "" {
				if len(errs) > 0 || idx.Instance("data/a") == nil {
					t.Fatalf("not valid: %v", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs.Error(), c.msg) {
				t.Fatalf("want an error containing %q, got %v", c.msg, errs)
			}
		})
	}
}

func TestVerifyParameterScope(t *testing.T) {
	tests := []struct {
		param string
		sev   Severity
		msg   string
	}{
		{"  - name: B\n    scope: plan\n", "", ""},
		{"  - name: B\n    scope: run\n", SeverityError, `parameter "B" has unknown scope "run"`},
		{"  - name: B\n    scope: plan\n    immutable: true\n    default: x\n", SeverityError, "plan-scoped and immutable"},
		{"  - name: B\n    scope: plan\n    trigger: deploy\n", SeverityWarning, "its trigger \"deploy\" never fires"},
	}
	for _, tt := range tests {
		fsys := fstest.MapFS{
			"p/operator.yaml":     {Data: []byte("apiVersion: kudo.dev/v1beta1\nname: p\noperatorVersion: 1.0.0\nkubernetesVersion: 1.20.0\ntasks:\n  - name: app\n    kind: Apply\n    spec:\n      resources: [cm.yaml]\nplans:\n  deploy:\n    strategy: serial\n    phases:\n      - name: main\n        strategy: serial\n        steps:\n          - name: app\n            tasks: [app]\n")},
			"p/params.yaml":       {Data: []byte("apiVersion: kudo.dev/v1beta1\nparameters:\n" + tt.param)},
			"p/templates/cm.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  b: {{ .Params.B | quote }}\n")},
		}
		var found bool
		for _, f := range loadAndVerify(t, fsys, "p") {
			if tt.msg == "" {
				t.Errorf("%q: unexpected %v", tt.param, f)
			} else if f.Severity == tt.sev && strings.Contains(f.Message, tt.msg) {
				found = true
			}
		}
		if tt.msg != "" && !found {
			t.Errorf("%q: no %s %q", tt.param, tt.sev, tt.msg)
		}
	}
}

// A schedule parameter's value comes from git: it renders within a small budget, so a value
// built to exhaust the daemon's memory or time is refused at once.
func TestRenderScheduleValueIsBounded(t *testing.T) {
	for _, text := range []string{`{{ randAlphaNum 1000000000 }}`, `{{ range $i := until 100000 }}{{ end }}`, `{{ seq 1 50000000 }}`} {
		start := time.Now()
		if _, err := RenderScheduleValue(text, ScheduleValueInput{ScheduledTime: time.Now()}); err == nil {
			t.Errorf("%s rendered", text)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %s", text, d)
		}
	}
}
