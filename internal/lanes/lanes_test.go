package lanes

import (
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/planner"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		policy    Policy
		namespace string
		// want is a part of the refusal; empty: allowed.
		want string
	}{
		{name: "open lane", policy: Policy{}, namespace: "anything"},
		{name: "open lane, the daemon's namespace", policy: Policy{Repository: "r", DaemonNamespace: "kudod-system"}, namespace: "kudod-system", want: "kudod's own namespace"},
		{name: "pattern", policy: Policy{Namespaces: []string{"team-*"}}, namespace: "team-a"},
		{name: "pattern needs the prefix", policy: Policy{Repository: "r", Namespaces: []string{"team-*"}}, namespace: "kube-system", want: "namespace kube-system is outside repository r's lane (namespaces: team-*)"},
		{name: "pattern matches the whole name", policy: Policy{Namespaces: []string{"team-*"}}, namespace: "xteam-a", want: "outside"},
		{name: "question mark", policy: Policy{Namespaces: []string{"team-?"}}, namespace: "team-ab", want: "outside"},
		{name: "one of several", policy: Policy{Namespaces: []string{"apps", "team-*"}}, namespace: "apps"},
		{name: "exact name only", policy: Policy{Namespaces: []string{"apps"}}, namespace: "apps2", want: "outside"},
		{name: "a pattern does not open the daemon's namespace", policy: Policy{Namespaces: []string{"kudod-*"}, DaemonNamespace: "kudod-system"}, namespace: "kudod-system", want: "list it by name"},
		{name: "the daemon's namespace listed by name", policy: Policy{Namespaces: []string{"kudod-system"}, DaemonNamespace: "kudod-system"}, namespace: "kudod-system"},
		{name: "star does not open the daemon's namespace", policy: Policy{Namespaces: []string{"*"}, DaemonNamespace: "kudod-system"}, namespace: "kudod-system", want: "own namespace"},
		{name: "star", policy: Policy{Namespaces: []string{"*"}, DaemonNamespace: "kudod-system"}, namespace: "kube-system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.namespace)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check(%q) = %v, want allowed", tt.namespace, err)
			case tt.want != "" && err == nil:
				t.Errorf("Check(%q) allowed, want refused with %q", tt.namespace, tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("Check(%q) = %v, want it to say %q", tt.namespace, err, tt.want)
			}
		})
	}
}

func TestServiceAccount(t *testing.T) {
	withSA := func(sa string) *v1alpha1.Instance {
		in := &v1alpha1.Instance{}
		in.Spec.ServiceAccountName = sa
		return in
	}
	tests := []struct {
		name   string
		policy Policy
		inst   *v1alpha1.Instance
		want   string
	}{
		{"none", Policy{}, withSA(""), ""},
		{"the instance's", Policy{ServiceAccountName: "repo", DefaultServiceAccount: "daemon"}, withSA("own"), "own"},
		{"the repository's", Policy{ServiceAccountName: "repo", DefaultServiceAccount: "daemon"}, withSA(""), "repo"},
		{"the daemon's", Policy{DefaultServiceAccount: "daemon"}, withSA(""), "daemon"},
	}
	for _, tt := range tests {
		if got := tt.policy.ServiceAccount(tt.inst); got != tt.want {
			t.Errorf("%s: ServiceAccount = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := Username("team-a", "deployer"); got != "system:serviceaccount:team-a:deployer" {
		t.Errorf("Username = %q", got)
	}
}

func TestValidPattern(t *testing.T) {
	for _, ok := range []string{"team-a", "team-*", "*", "t?am", "a"} {
		if err := ValidPattern(ok); err != nil {
			t.Errorf("ValidPattern(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Team", "team_a", "team/a", "[abc]", strings.Repeat("a", 64), "a b"} {
		if err := ValidPattern(bad); err == nil {
			t.Errorf("ValidPattern(%q) accepted", bad)
		}
	}
}

func TestRefuse(t *testing.T) {
	res := planner.Result{Decisions: []planner.Decision{
		{Namespace: "team-a", Instance: "ok", Action: planner.ActionDeploy, Plan: "deploy", Reasons: []string{"new instance"}},
		{Namespace: "kube-system", Instance: "bad", Action: planner.ActionDeploy, Plan: "deploy", Reasons: []string{"new instance"}},
		{Namespace: "legacy", Instance: "old", Action: planner.ActionCleanup},
	}}
	Policy{Repository: "r", Namespaces: []string{"team-*"}}.Refuse(&res)
	if d := res.Decisions[0]; d.Action != planner.ActionDeploy || d.Error != "" {
		t.Errorf("the instance in its lane: %+v", d)
	}
	for _, d := range res.Decisions[1:] {
		if d.Action != planner.ActionRejected || d.Plan != "" || !strings.Contains(d.Error, "namespace "+d.Namespace+" is outside repository r's lane") {
			t.Errorf("the instance outside its lane: %+v", d)
		}
	}
	if !res.HasRejections() || !res.HasChanges() {
		t.Errorf("rejections %v, changes %v", res.HasRejections(), res.HasChanges())
	}
}
