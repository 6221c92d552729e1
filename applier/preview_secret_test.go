package applier_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestPreviewShowsSecretsByKeyAndHash: a preview diffs a Secret by key name and a hash of
// each value. Neither the values, their base64, nor kubectl's last-applied annotation (which
// holds a whole copy of the Secret) reach the diff — the preview finding.
func TestPreviewShowsSecretsByKeyAndHash(t *testing.T) {
	e := newEnv(t, applier.Options{})
	ctx := context.Background()
	pkg := load(t, testenv.FixtureOperator(t, "vault-db", "1.0.0"))
	inst := e.instance(t, "v", pkg)

	lastApplied := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"v-db"},"stringData":{"password":"live-s3cr3t-password"}}`
	live := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "v-db", Namespace: e.namespace, Annotations: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": lastApplied, "team/owner": "live-s3cr3t-password",
		}},
		Data: map[string][]byte{"password": []byte("live-s3cr3t-password"), "user": []byte("vault"), "url": []byte("postgres://vault:live-s3cr3t-password@db:5432/vault")},
	}
	if err := e.cluster.Client.Create(ctx, live); err != nil {
		t.Fatal(err)
	}

	cl, err := client.New(e.cluster.Config, client.Options{Scheme: e.cluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	dry := client.NewDryRunClient(cl)
	rm := ssa.NewResourceManager(dry, polling.NewStatusPoller(dry, dry.RESTMapper(), polling.Options{}), ssa.Owner{Field: v1alpha1.FieldManager, Group: "kudod.dev"})
	engine := applier.NewEngine(dry, rm, nil, applier.Options{AllowClusterScoped: true})
	changes, err := engine.Preview(ctx, run(inst, pkg, "deploy", map[string]string{"ROOT_CODE": "new-s3cr3t-password"}))
	if err != nil {
		t.Fatal(err)
	}
	var diff string
	for _, c := range changes {
		if c.Object == "Secret/"+e.namespace+"/v-db" {
			if c.Action != applier.ChangeConfigured {
				t.Fatalf("the Secret is %s", c.Action)
			}
			diff = c.Diff
		}
	}
	for _, want := range []string{"-  password: <sensitive hash:", "+  password: <sensitive hash:", "  user: <sensitive hash:", "team/owner: <sensitive hash:"} {
		if !strings.Contains(diff, want) {
			t.Errorf("the diff lacks %q:\n%s", want, diff)
		}
	}
	for _, secret := range []string{"s3cr3t", base64.StdEncoding.EncodeToString([]byte("live-s3cr3t-password")), base64.StdEncoding.EncodeToString([]byte("new-s3cr3t-password")), "last-applied", "stringData"} {
		if strings.Contains(diff, secret) {
			t.Errorf("the diff shows %q:\n%s", secret, diff)
		}
	}
	t.Logf("the diff:\n%s", diff)
	// The user key did not change: its hash is the same on both sides.
	var userLines []string
	for _, l := range strings.Split(diff, "\n") {
		if strings.Contains(l, "user: ") {
			userLines = append(userLines, l)
		}
	}
	if len(userLines) != 1 {
		t.Errorf("an unchanged key shows as changed: %q", userLines)
	}
}
