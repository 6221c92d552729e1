package applier_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/daemon"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/test/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// env is what an applier test works with: a real API server, an engine and an Instance in a
// namespace of the test's own.
type env struct {
	cluster   *testenv.Cluster
	engine    *applier.Engine
	namespace string
}

func newEnv(t *testing.T, opts applier.Options) *env {
	t.Helper()
	c := testenv.APIServer(t)
	ctx := context.Background()
	if err := daemon.InstallCRD(ctx, c.Client); err != nil {
		t.Fatal(err)
	}
	// A client with a fresh REST mapper: the engine must discover kinds installed after it started.
	cl, err := client.New(c.Config, client.Options{Scheme: c.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	rm := ssa.NewResourceManager(cl, polling.NewStatusPoller(cl, cl.RESTMapper(), polling.Options{}), ssa.Owner{Field: v1alpha1.FieldManager, Group: "kudod.dev"})
	if opts.HealthPollMax == 0 {
		opts.HealthPollMax = 200 * time.Millisecond
	}
	opts.AllowClusterScoped = true
	return &env{cluster: c, engine: applier.NewEngine(cl, rm, nil, opts), namespace: c.Namespace(t)}
}

// instance creates an Instance object (objects get it as owner) and returns it.
func (e *env) instance(t *testing.T, name string, pkg *manifests.Package) *v1alpha1.Instance {
	t.Helper()
	inst := &v1alpha1.Instance{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.namespace},
		Spec:       v1alpha1.InstanceSpec{Operator: v1alpha1.OperatorRef{Name: pkg.Name, Version: pkg.OperatorVersion}},
	}
	if err := e.cluster.Client.Create(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	return inst
}

func load(t *testing.T, dir string) *manifests.Package {
	t.Helper()
	p, err := manifests.Load(os.DirFS(dir), ".")
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	return p
}

// run prepares a Run of plan for inst with a fresh status tree.
func run(inst *v1alpha1.Instance, pkg *manifests.Package, plan string, params map[string]string) *applier.Run {
	st := applier.NewPlanStatus(pkg.Plans[plan], "uid-1", v1alpha1.TriggerGit, "", nil, time.Now())
	return &applier.Run{Instance: inst, Package: pkg, Plan: plan, Params: params, Status: &st, Inventory: applier.Inventory{}}
}
