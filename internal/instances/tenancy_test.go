package instances

import (
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/lanes"
)

// TestEngineFor: an instance's plans run as the service account it, its repository or the daemon
// names, in its own namespace; an instance outside its repository's lane, in the daemon's
// namespace, or of a repository the daemon does not follow gets a fatal refusal.
func TestEngineFor(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	rm := ssa.NewResourceManager(c, polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{}), ssa.Owner{Field: v1alpha1.FieldManager})
	engine := applier.NewEngine(c, rm, nil, applier.Options{Impersonation: applier.NewImpersonation(&rest.Config{Host: "https://127.0.0.1:1"}, c.Scheme(), c.RESTMapper())})
	r := &Controller{engine: engine, lanes: map[string]lanes.Policy{
		"team":     {Repository: "team", Namespaces: []string{"team-*"}, ServiceAccountName: "deployer", DaemonNamespace: "kudod-system"},
		"platform": {Repository: "platform", DefaultServiceAccount: "kudod-deployer", DaemonNamespace: "kudod-system"},
		"open":     {Repository: "open", DaemonNamespace: "kudod-system"},
	}}
	inst := func(repo, ns, sa string) *v1alpha1.Instance {
		return &v1alpha1.Instance{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x", Labels: map[string]string{v1alpha1.LabelRepository: repo}},
			Spec:       v1alpha1.InstanceSpec{ServiceAccountName: sa},
		}
	}
	for _, tc := range []struct {
		name string
		inst *v1alpha1.Instance
		user string
		err  string
	}{
		{"the repository's account", inst("team", "team-a", ""), "system:serviceaccount:team-a:deployer", ""},
		{"the instance's own account", inst("team", "team-a", "own"), "system:serviceaccount:team-a:own", ""},
		{"the daemon's default", inst("platform", "apps", ""), "system:serviceaccount:apps:kudod-deployer", ""},
		{"no account: kudod itself", inst("open", "apps", ""), "", ""},
		{"outside the lane", inst("team", "kube-system", ""), "", "refused: namespace kube-system is outside repository team's lane"},
		{"the daemon's namespace", inst("open", "kudod-system", ""), "", "kudod's own namespace"},
		{"a repository not followed", inst("other", "apps", ""), "", `does not follow repository "other"`},
	} {
		eng, err := r.engineFor(tc.inst)
		switch {
		case tc.err != "":
			if !applier.IsFatal(err) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want a fatal error saying %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case eng.User() != tc.user:
			t.Errorf("%s: runs as %q, want %q", tc.name, eng.User(), tc.user)
		}
	}
}
