package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

func planRepo(t *testing.T) (*testenv.GitRepo, string, string, string) {
	t.Helper()
	r := testenv.NewGitRepo(t)
	// app: a ConfigMap from VALUE and the immutable SIZE.
	r.AddOperator("app", "1.0.0")
	inst := func(params string) string {
		return "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: a\n  namespace: ns\nspec:\n  operator:\n    name: app\n  parameters:\n" + params
	}
	first := r.Commit("first", map[string]string{"instances/a.yaml": inst("    VALUE: one\n")})
	second := r.Commit("change", map[string]string{"instances/a.yaml": inst("    VALUE: two\n")})
	third := r.Commit("immutable", map[string]string{"instances/a.yaml": inst("    VALUE: two\n    SIZE: large\n")})
	return r, first, second, third
}

func TestPlanCommand(t *testing.T) {
	r, first, second, third := planRepo(t)
	// An instance file kudod cannot read, next to a change of a: neither is applied.
	held := r.Commit("unreadable", map[string]string{
		"instances/a.yaml": "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: a\n  namespace: ns\nspec:\n  operator:\n    name: app\n  parameters:\n    VALUE: three\n",
		"instances/b.yaml": "apiVersion: kudod.dev/v2\nkind: Instance\nmetadata:\n  name: b\n  namespace: ns\nspec:\n  operator:\n    name: app\n",
	})
	cases := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"nothing to do", []string{"--from", second, "--to", second}, 0, []string{"1 instances: 1 none"}},
		{"everything new", []string{"--to", first}, 1, []string{"ns/a: deploy, plan deploy"}},
		{"a parameter change", []string{"--from", first, "--to", second}, 1, []string{"ns/a: update, plan deploy", "parameter VALUE: one → two"}},
		{"git revisions", []string{"--from", "HEAD~3", "--to", "HEAD~2"}, 1, []string{"parameter VALUE: one → two"}},
		{"a rejected change exits 2", []string{"--from", second, "--to", third}, 2, []string{"rejected", "SIZE is immutable"}},
		{"a file URL and branch names", []string{"--repo", "file://" + r.Dir, "--from", first, "--to", "main"}, 2, []string{"rejected"}},
		{"an unknown revision", []string{"--from", first, "--to", "no-such-branch"}, 2, nil},
		{"a new unreadable file holds the commit", []string{"--from", second, "--to", held}, 2, []string{"held: the commit is held: instances/b.yaml:1: Instance with unsupported apiVersion \"kudod.dev/v2\"", "ns/a: rejected"}},
		{"a large instance file holds the commit", []string{"--from", second, "--to", held, "--max-instance-file-size", "100"}, 2, []string{"held: the commit is held: instances/a.yaml: the file is 145 bytes, more than the 100 bytes limit"}},
		{"a bad size", []string{"--to", held, "--max-instance-file-size", "lots"}, 2, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"plan", "--repo", r.Dir}, c.args...)
			var out, errb bytes.Buffer
			code := Execute(context.Background(), args, &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out.String(), errb.String())
			}
			for _, want := range c.contains {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s\nstderr: %s", want, out.String(), errb.String())
				}
			}
		})
	}
	// With -o json stdout is the JSON of docs/cli.md whatever the exit code, errors included.
	for _, to := range []string{second, third, "no-such-branch"} {
		var out, errb bytes.Buffer
		code := Execute(context.Background(), []string{"plan", "--repo", r.Dir, "--from", first, "--to", to, "-o", "json"}, &out, &errb)
		var doc struct {
			Decisions []map[string]any `json:"decisions"`
		}
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Decisions == nil {
			t.Errorf("to %.7s (exit %d): stdout is not the JSON: %v: %q", to, code, err, out.String())
		}
		for _, d := range doc.Decisions {
			for _, k := range []string{"namespace", "instance", "action", "plan", "reasons"} {
				if _, ok := d[k]; !ok {
					t.Errorf("decision lacks %q: %v", k, d)
				}
			}
		}
	}
}

// TestPlanWithConfig: --config applies a repository's settings; an instance outside its
// namespaces is rejected (exit 2) with the reason, in text and JSON.
func TestPlanWithConfig(t *testing.T) {
	r := testenv.NewGitRepo(t)
	r.AddOperator("app", "1.0.0")
	inst := func(ns string) string {
		return "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: a\n  namespace: " + ns + "\nspec:\n  operator:\n    name: app\n"
	}
	inLane := r.Commit("team-a", map[string]string{"deploy/a.yaml": inst("team-a")})
	outside := r.Commit("kube-system", map[string]string{"deploy/b.yaml": inst("kube-system")})
	dir := t.TempDir()
	cfg := dir + "/kudod.yaml"
	writeConfig := func(content string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("repositories:\n  - name: team-a\n    url: " + r.Dir + "\n    path: deploy\n    namespaces: [\"team-*\"]\n")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Execute(context.Background(), append([]string{"plan", "--config", cfg}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errb := run("--to", inLane); code != 1 || !strings.Contains(out, "team-a/a: deploy") {
		t.Errorf("in the lane: exit %d\n%s%s", code, out, errb)
	}
	code, out, errb := run("--from", inLane, "--to", outside)
	if code != 2 || !strings.Contains(out, "kube-system/a: rejected") || !strings.Contains(out, "namespace kube-system is outside repository team-a's lane (namespaces: team-*)") {
		t.Errorf("outside the lane: exit %d\n%s%s", code, out, errb)
	}
	code, out, _ = run("--from", inLane, "--to", outside, "-o", "json")
	var doc struct {
		Decisions []struct{ Namespace, Action, Error string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 2 {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	for _, d := range doc.Decisions {
		if d.Namespace == "kube-system" && (d.Action != "rejected" || !strings.Contains(d.Error, "outside")) {
			t.Errorf("decision %+v", d)
		}
	}
	// The daemon's own namespace needs listing by name.
	r.Commit("kudod-system", map[string]string{"deploy/b.yaml": inst("kudod-system")})
	writeConfig("repositories:\n  - name: team-a\n    url: " + r.Dir + "\n    path: deploy\n")
	if code, out, _ := run("--from", inLane, "--to", "HEAD"); code != 2 || !strings.Contains(out, "kudod's own namespace") {
		t.Errorf("the daemon's namespace: exit %d\n%s", code, out)
	}
	// Several repositories need --repository.
	writeConfig("repositories:\n  - {name: one, url: " + r.Dir + "}\n  - {name: two, url: " + r.Dir + "}\n")
	if code, _, errb := run("--to", inLane); code != 2 || !strings.Contains(errb, "name one with --repository (one, two)") {
		t.Errorf("two repositories: exit %d: %s", code, errb)
	}
	if code, out, errb := run("--repository", "two", "--to", inLane); code != 1 || !strings.Contains(out, "no instances") && !strings.Contains(out, "deploy") {
		t.Errorf("--repository two: exit %d\n%s%s", code, out, errb)
	}
}
