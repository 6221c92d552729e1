package preview

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/planner"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func update(ns, name string, reasons ...string) planner.Decision {
	return planner.Decision{Namespace: ns, Instance: name, Action: planner.ActionUpdate, Plan: "deploy", Reasons: reasons}
}

// longDiff is a configured object's diff of n changed lines.
func longDiff(n int) string {
	var b strings.Builder
	b.WriteString("--- live\n+++ after the plan\n")
	for i := range n {
		fmt.Fprintf(&b, "-  line%d: old\n+  line%d: new\n", i, i)
	}
	return b.String()
}

func TestMarkdown(t *testing.T) {
	tests := []struct {
		name string
		rep  Report
		// sensitive are values of sensitive parameters.
		sensitive []string
		limit     int
		// want appear in this order; absent must not appear.
		want   []string
		absent []string
	}{
		{
			name: "an update with its objects",
			rep: Report{
				Decisions: []planner.Decision{update("kafka", "brokers", "parameter BROKERS: 3 → 5"), {Namespace: "kafka", Instance: "zk", Action: planner.ActionNone}},
				Changes: map[string][]applier.ObjectChange{"kafka/brokers": {
					{Object: "ConfigMap/kafka/brokers-config", Action: applier.ChangeCreated},
					{Object: "StatefulSet/kafka/brokers", Action: applier.ChangeConfigured, Diff: "-  replicas: 3\n+  replicas: 5\n"},
					{Object: "Service/kafka/brokers", Action: applier.ChangeUnchanged},
					{Object: "Job/kafka/migrate", Action: applier.ChangeCreated, Note: "its namespace does not exist yet"},
				}},
			},
			limit: 65536,
			want: []string{
				"<!-- kudod-preview:platform -->", "## kudod plan preview",
				"✅ **1 instance: 1 update** for `refs/pull/7/head` at `0123456`",
				"### `kafka/brokers`: update → plan `deploy`", "- parameter BROKERS: 3 → 5",
				"Objects: 2 created, 1 configured, 1 unchanged",
				// Configured objects come first, with their diff in a fenced block.
				"- `StatefulSet/kafka/brokers` configured", "  ```diff\n  -  replicas: 3\n  +  replicas: 5\n  ```",
				"- `ConfigMap/kafka/brokers-config` created",
				"- `Job/kafka/migrate` created (its namespace does not exist yet)",
				"nothing was changed",
			},
			absent: []string{"Service/kafka/brokers", "kafka/zk", "❌", "left out"},
		},
		{
			name: "a rejected change, a plan that cannot run and a removed instance",
			rep: Report{
				Decisions: []planner.Decision{
					{Namespace: "db", Instance: "mysql", Action: planner.ActionRejected, Error: "parameter DISK is immutable\nit was 10Gi"},
					update("db", "redis", "templates changed"),
					{Namespace: "db", Instance: "old", Action: planner.ActionCleanup, Reasons: []string{"instance removed"}},
				},
				Failures: map[string]string{"db/redis": "render deployment.yaml: no value for REPLICAS"},
				Changes:  map[string][]applier.ObjectChange{"db/old": {{Object: "Deployment/db/old", Action: applier.ChangeDeleted}}},
			},
			limit: 65536,
			want: []string{
				"❌ **3 instances: 1 cannot run, 1 rejected, 1 update, 1 cleanup**",
				"### ❌ `db/mysql`: rejected\n\n> parameter DISK is immutable\n> it was 10Gi\n",
				"### `db/redis`: update → plan `deploy`", "❌ The plan cannot run:\n> render deployment.yaml: no value for REPLICAS",
				"### `db/old`: cleanup → plan none (its objects are deleted)",
				"Objects: 1 deleted", "- `Deployment/db/old` deleted",
			},
		},
		{
			name: "a commit that removes everything is held",
			rep:  Report{Held: errors.New("the commit removes every instance; set allowEmpty to allow it")},
			want: []string{"❌ **the commit removes every instance; set allowEmpty to allow it**"}, limit: 65536,
			absent: []string{"No plan runs", "###"},
		},
		{
			name:  "nothing changes",
			rep:   Report{Decisions: []planner.Decision{{Namespace: "a", Instance: "b", Action: planner.ActionNone}}},
			limit: 65536,
			want:  []string{"✅ **no instance changes**", "No plan runs: the change touches no instance."},
		},
		{
			name: "sensitive values are masked everywhere",
			rep: Report{
				Decisions: []planner.Decision{
					update("apps", "api", "parameter DB_PASSWORD: hunter2 → s3cr3t-value", "parameter MODE: ab → cd"),
					{Namespace: "apps", Instance: "web", Action: planner.ActionRejected, Error: "TOKEN s3cr3t-value is not base64"},
				},
				Changes: map[string][]applier.ObjectChange{"apps/api": {
					{Object: "Secret/apps/api", Action: applier.ChangeConfigured, Diff: "-  password: hunter2\n+  password: s3cr3t-value\n"},
				}},
			},
			sensitive: []string{"hunter2", "s3cr3t-value", "ab"},
			limit:     65536,
			want:      []string{"parameter DB_PASSWORD: <sensitive> → <sensitive>", "parameter MODE: ab → cd", "-  password: <sensitive>", "> TOKEN <sensitive> is not base64"},
			absent:    []string{"hunter2", "s3cr3t-value"},
		},
		{
			name: "a long diff is cut at a line, and the code block closed",
			rep: Report{
				Decisions: []planner.Decision{update("big", "one")},
				Changes:   map[string][]applier.ObjectChange{"big/one": {{Object: "ConfigMap/big/one", Action: applier.ChangeConfigured, Diff: longDiff(400)}}},
			},
			limit: 4000,
			want:  []string{"### `big/one`: update → plan `deploy`", "```diff", "more lines left out.", "nothing was changed"},
		},
		{
			name: "instances that do not fit are counted",
			rep: func() Report {
				r := Report{Changes: map[string][]applier.ObjectChange{}}
				for i := range 40 {
					d := update("many", fmt.Sprintf("i%02d", i), "parameter X: 1 → 2")
					r.Decisions = append(r.Decisions, d)
					r.Changes[d.Key()] = []applier.ObjectChange{{Object: "ConfigMap/many/" + d.Instance, Action: applier.ChangeConfigured, Diff: longDiff(3)}}
				}
				return r
			}(),
			limit:  3000,
			want:   []string{"**40 instances: 40 update**", "### `many/i00`", "more instances left out", "Run `kudod preview` to see everything.", "nothing was changed"},
			absent: []string{"### `many/i39`"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := tt.rep
			rep.Repository, rep.Ref, rep.SHA, rep.masker = "platform", "refs/pull/7/head", sha, maskerOf(tt.sensitive...)
			md := rep.Markdown(tt.limit)
			if n := utf8.RuneCountInString(md); n > tt.limit {
				t.Errorf("%d characters, over the limit of %d", n, tt.limit)
			}
			if n := strings.Count(md, "```"); n%2 != 0 {
				t.Errorf("%d code fences: one is left open\n%s", n, md)
			}
			rest := md
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("missing, or out of order: %q\n--- markdown:\n%s", w, md)
				}
				rest = rest[i+len(w):]
			}
			for _, a := range tt.absent {
				if strings.Contains(md, a) {
					t.Errorf("unexpected %q\n--- markdown:\n%s", a, md)
				}
			}
		})
	}
}

// maskerOf is a Masker that knows values.
func maskerOf(values ...string) *mask.Masker {
	m := mask.New()
	m.Add(values...)
	return m
}

func TestSummaryValidAndFirstProblem(t *testing.T) {
	tests := []struct {
		name      string
		rep       Report
		sensitive []string
		valid     bool
		summary   string
		problem   string
	}{
		{name: "empty", rep: Report{}, valid: true, summary: "no instance changes"},
		{name: "one deploy", rep: Report{Decisions: []planner.Decision{{Namespace: "a", Instance: "x", Action: planner.ActionDeploy, Plan: "deploy"}}}, valid: true, summary: "1 instance: 1 deploy"},
		{
			name: "a failure comes before a later rejection",
			rep: Report{
				Decisions: []planner.Decision{update("a", "x"), {Namespace: "a", Instance: "y", Action: planner.ActionRejected, Error: "KEY abcdef is immutable"}},
				Failures:  map[string]string{"a/x": "dry-run: admission webhook denied the request"},
			},
			sensitive: []string{"abcdef"},
			summary:   "2 instances: 1 cannot run, 1 rejected, 1 update",
			problem:   "a/x: dry-run: admission webhook denied the request",
		},
		{
			name: "a rejection is masked",
			rep: Report{
				Decisions: []planner.Decision{{Namespace: "a", Instance: "y", Action: planner.ActionRejected, Error: "KEY abcdef is immutable"}},
			},
			sensitive: []string{"abcdef"},
			summary:   "1 instance: 1 rejected",
			problem:   "a/y: KEY <sensitive> is immutable",
		},
		{name: "held", rep: Report{Held: errors.New("removes every instance")}, summary: "removes every instance", problem: "removes every instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rep.masker = maskerOf(tt.sensitive...)
			if got := tt.rep.Valid(); got != tt.valid {
				t.Errorf("Valid() = %v", got)
			}
			if got := tt.rep.Summary(); got != tt.summary {
				t.Errorf("Summary() = %q, want %q", got, tt.summary)
			}
			if got := tt.rep.FirstProblem(); got != tt.problem {
				t.Errorf("FirstProblem() = %q, want %q", got, tt.problem)
			}
		})
	}
}

func TestPullRequestNumber(t *testing.T) {
	for ref, want := range map[string]int{
		"refs/pull/7/head":            7,
		"refs/merge-requests/42/head": 42,
		"refs/pull/7/merge":           0,
		"refs/heads/feature":          0,
		"refs/pull/x/head":            0,
	} {
		if got := pullRequestNumber(ref); got != want {
			t.Errorf("pullRequestNumber(%q) = %d, want %d", ref, got, want)
		}
	}
}
