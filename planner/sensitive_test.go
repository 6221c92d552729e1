package planner

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// sensitiveNames are the names whose values the name-only test used to print, and a parameter
// only params.yaml's `sensitive: true` marks.
var sensitiveNames = []string{"DB_PASS", "ADMIN_PWD", "PASSPHRASE", "SMTP_AUTH", "TLS_PRIVATE_PEM", "ROOT_CODE"}

func sensitivePackage(immutable bool) *manifests.Package {
	p := &manifests.Package{Name: "vault", OperatorVersion: "1.0.0", Digest: "d1", Plans: map[string]*manifests.Plan{
		"deploy": {Name: "deploy"}, "update": {Name: "update"}, "rotate": {Name: "rotate"},
	}}
	for _, n := range sensitiveNames {
		def := manifests.StringValue("default-" + strings.ToLower(n) + "-value")
		p.Parameters = append(p.Parameters, &manifests.Parameter{Name: n, Sensitive: n == "ROOT_CODE", Immutable: immutable, Trigger: "rotate", Default: &def})
	}
	return p
}

func state(p *manifests.Package, params map[string]string, sources ...v1alpha1.ParameterSource) *State {
	return &State{Namespace: "ns", Name: "v", Package: p, Parameters: params, ParametersFrom: sources}
}

// TestSensitiveValuesNeverShow: for each sensitive name, every decision about a change of its
// value — changed, set, unset, immutable — says so without either value, in its reasons, its
// error and its JSON (`kudod plan -o json`).
func TestSensitiveValuesNeverShow(t *testing.T) {
	for _, n := range sensitiveNames {
		t.Run(n, func(t *testing.T) {
			p, frozen := sensitivePackage(false), sensitivePackage(true)
			old, nw := "old-"+n+"-s3cr3t", "new-"+n+"-s3cr3t"
			digest := func(v string) string { return manifests.SensitiveDigest("ns", "v", n, v) }
			cases := []struct {
				name     string
				old, new *State
				want     string
			}{
				{"changed", state(p, map[string]string{n: old}), state(p, map[string]string{n: nw}), "parameter " + n + ": (sensitive value changed)"},
				{"changed, as digests", state(p, map[string]string{n: digest(old)}), state(p, map[string]string{n: digest(nw)}), "(sensitive value changed)"},
				{"set", state(p, nil), state(p, map[string]string{n: nw}), "parameter " + n + " set: <sensitive>"},
				{"unset", state(p, map[string]string{n: old}), state(p, nil), "parameter " + n + " unset: the default applies"},
				{"immutable", state(frozen, map[string]string{n: old}), state(frozen, map[string]string{n: nw}), "parameter " + n + " is immutable but was changed (sensitive value changed)"},
			}
			for _, tc := range cases {
				d := Decide(tc.old, tc.new)
				out, err := json.Marshal(d)
				if err != nil {
					t.Fatal(err)
				}
				text := string(out) + strings.Join(d.Reasons, " ") + d.Error
				if strings.Contains(text, "s3cr3t") || strings.Contains(text, "-value") {
					t.Errorf("%s: a value shows: %s", tc.name, text)
				}
				if !strings.Contains(text, tc.want) {
					t.Errorf("%s: %s lacks %q", tc.name, text, tc.want)
				}
			}
			// A value held as its digest on one side and as itself on the other is the same.
			if d := Decide(state(p, map[string]string{n: digest(old)}), state(p, map[string]string{n: old})); d.Action != ActionNone {
				t.Errorf("digest against its value: %s %v", d.Action, d.Reasons)
			}
		})
	}
}

func TestParametersFromChangesInGit(t *testing.T) {
	p := sensitivePackage(false)
	ref := v1alpha1.ParameterSource{Kind: "Secret", Name: "db-creds", Key: "password", Parameter: "ROOT_CODE"}
	whole := v1alpha1.ParameterSource{Kind: "Secret", Name: "all"}
	d := Decide(state(p, nil), state(p, nil, ref))
	if d.Action != ActionUpdate || d.Plan != "rotate" || !strings.Contains(strings.Join(d.Reasons, ";"), "parametersFrom: Secret db-creds (key password as ROOT_CODE) added") {
		t.Errorf("a reference added: %s %s %v", d.Action, d.Plan, d.Reasons)
	}
	d = Decide(state(p, nil, whole), state(p, nil))
	if d.Action != ActionUpdate || d.Plan != "update" || !strings.Contains(strings.Join(d.Reasons, ";"), "parametersFrom: Secret all removed") {
		t.Errorf("a whole object removed: %s %s %v", d.Action, d.Plan, d.Reasons)
	}
	if d := Decide(state(p, nil, ref), state(p, nil, ref)); d.Action != ActionNone {
		t.Errorf("nothing changed: %s %v", d.Action, d.Reasons)
	}
	if d := Decide(state(sensitivePackage(true), nil), state(sensitivePackage(true), nil, ref)); d.Action != ActionRejected || !strings.Contains(d.Error, "ROOT_CODE is immutable") {
		t.Errorf("an immutable parameter: %s %q", d.Action, d.Error)
	}
}

func TestDecideSources(t *testing.T) {
	p := sensitivePackage(false)
	reasons := []string{"Secret db-creds changed"}
	d := DecideSources("ns", "v", p, []string{"ROOT_CODE"}, reasons, false, false)
	if d.Action != ActionUpdate || d.Plan != "rotate" || strings.Join(d.Reasons, ";") != "Secret db-creds changed" {
		t.Errorf("trigger: %+v", d)
	}
	p.Parameter("DB_PASS").Trigger = ""
	if d := DecideSources("ns", "v", p, []string{"DB_PASS"}, reasons, false, false); d.Plan != "update" {
		t.Errorf("no trigger: %+v", d)
	}
	p.Parameter("ADMIN_PWD").Trigger = "deploy"
	if d := DecideSources("ns", "v", p, []string{"ROOT_CODE", "ADMIN_PWD"}, reasons, false, false); d.Action != ActionRejected || !strings.Contains(d.Error, "several plans") {
		t.Errorf("two triggers: %+v", d)
	}
	if d := DecideSources("ns", "v", sensitivePackage(true), []string{"ROOT_CODE"}, reasons, false, false); d.Action != ActionRejected || d.Error != "parameter ROOT_CODE is immutable but its value changed (sensitive value changed)" {
		t.Errorf("immutable: %+v", d)
	}
	if d := DecideSources("ns", "v", p, []string{"ROOT_CODE"}, reasons, true, true); d.Action != ActionDeploy || d.Plan != "deploy" || !strings.Contains(strings.Join(d.Reasons, ";"), "suspended") {
		t.Errorf("never completed, suspended: %+v", d)
	}
}
