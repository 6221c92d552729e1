package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/internal/lanes"
)

func TestParseLane(t *testing.T) {
	got, err := parse(t, `
repositories:
  - name: team-a
    url: https://git.example.com/team-a/apps.git
    namespaces: [team-a, "team-a-*"]
    serviceAccountName: deployer
    previews: {refs: ["refs/pull/*/head"], authors: [alice, "bot-*"], forks: false}
  - name: platform
    url: https://git.example.com/ops/platform.git
    allowClusterScoped: true
    serviceAccountName: platform-admin
`)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	want := []Repository{
		repo("team-a", "https://git.example.com/team-a/apps.git", func(r *Repository) {
			r.Namespaces = []string{"team-a", "team-a-*"}
			r.ServiceAccountName = "deployer"
			r.Previews = Previews{Refs: []string{"refs/pull/*/head"}, Authors: []string{"alice", "bot-*"}}
		}),
		repo("platform", "https://git.example.com/ops/platform.git", func(r *Repository) {
			r.AllowClusterScoped = &yes
			r.ServiceAccountName = "platform-admin"
		}),
	}
	if !reflect.DeepEqual(got.Repositories, want) {
		t.Errorf("got  %+v\nwant %+v", got.Repositories, want)
	}
}

func TestParseLaneBad(t *testing.T) {
	const head = "repositories:\n  - name: app\n    url: https://git.example.com/o/app.git\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"empty lane", head + "    namespaces: []\n", `kudod.yaml:4: repositories[0].namespaces: must list at least one namespace`},
		{"lane not a list", head + "    namespaces: team-a\n", `kudod.yaml:4: repositories[0].namespaces: must be a list, not "team-a"`},
		{"upper case", head + "    namespaces: [Team-A]\n", `kudod.yaml:4: repositories[0].namespaces[0]: "Team-A" is not a namespace or a pattern of one`},
		{"character class", head + "    namespaces: [\"team-[ab]\"]\n", `repositories[0].namespaces[0]: "team-[ab]" is not a namespace`},
		{"too long", head + "    namespaces: [" + strings.Repeat("a", 64) + "]\n", `is longer than 63 characters`},
		{"allowClusterScoped not a boolean", head + "    allowClusterScoped: yes please\n", `kudod.yaml:4: repositories[0].allowClusterScoped: must be true or false`},
		{"bad service account", head + "    serviceAccountName: Deployer_1\n", `kudod.yaml:4: repositories[0].serviceAccountName: "Deployer_1" is not a service account name`},
		{"empty service account", head + "    serviceAccountName: \"\"\n", `repositories[0].serviceAccountName: must name a service account`},
		{"author with a slash", head + "    previews: {authors: [\"org/alice\"]}\n", `kudod.yaml:4: repositories[0].previews.authors[0]: "org/alice" is not a user name`},
		{"bad author pattern", head + "    previews: {authors: [\"[a\"]}\n", `repositories[0].previews.authors[0]: invalid pattern "[a"`},
		{"forks not a boolean", head + "    previews: {forks: maybe}\n", `repositories[0].previews.forks: must be true or false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestClusterScopedAllowed(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name      string
		repo      Repository
		cluster   bool
		defaultSA string
		want      bool
	}{
		{"the cluster's default", Repository{}, true, "", true},
		{"the cluster's default, off", Repository{}, false, "", false},
		{"a repository service account turns it off", Repository{ServiceAccountName: "deployer"}, true, "", false},
		{"the daemon's default service account turns it off", Repository{}, true, "default", false},
		{"explicitly on with a service account", Repository{ServiceAccountName: "deployer", AllowClusterScoped: &yes}, false, "", true},
		{"explicitly off", Repository{AllowClusterScoped: &no}, true, "", false},
	} {
		if got := tc.repo.ClusterScopedAllowed(Cluster{AllowClusterScoped: tc.cluster}, tc.defaultSA); got != tc.want {
			t.Errorf("%s: ClusterScopedAllowed = %v, want %v", tc.name, got, tc.want)
		}
	}
	r := Repository{Name: "team-a", Namespaces: []string{"team-*"}, ServiceAccountName: "deployer"}
	want := lanes.Policy{Repository: "team-a", Namespaces: []string{"team-*"}, ServiceAccountName: "deployer", DefaultServiceAccount: "default", DaemonNamespace: "kudod-system"}
	if got := r.Policy(Cluster{AllowClusterScoped: true}, "default", "kudod-system"); !reflect.DeepEqual(got, want) {
		t.Errorf("Policy = %+v\nwant %+v", got, want)
	}
}
