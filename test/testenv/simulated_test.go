package testenv_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/test/testenv"
)

// await polls cond every 100ms until it holds, failing the test with the last reason after timeout.
func await(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	var reason string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, why, err := cond(ctx)
		reason = why
		return ok, err
	})
	if err != nil {
		t.Fatalf("%s: %v (last seen: %s)", what, err, reason)
	}
}

func labels(app string) map[string]string { return map[string]string{"app": app} }

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels(app)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "registry.invalid/" + app + ":1"}}},
	}
}

func TestSimulatedClusterRunsADeployment(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	ctx := context.Background()

	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels("web")},
			Template: podTemplate("web"),
		},
	}
	if err := c.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	await(t, time.Minute, "Deployment web available", func(ctx context.Context) (bool, string, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return false, "", err
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue && d.Status.AvailableReplicas == 3 {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%d available replicas", d.Status.AvailableReplicas), nil
	})
}

func TestSimulatedClusterBindsVolumesOfAStatefulSet(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	ctx := context.Background()

	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](2),
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: labels("db")},
			Template:    podTemplate("db"),
			// No storageClassName: the cluster's default StorageClass must provide the volumes.
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
	sts.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	if err := c.Client.Create(ctx, sts); err != nil {
		t.Fatal(err)
	}
	await(t, time.Minute, "StatefulSet db ready", func(ctx context.Context) (bool, string, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(sts), sts); err != nil {
			return false, "", err
		}
		return sts.Status.ReadyReplicas == 2, fmt.Sprintf("%d ready replicas", sts.Status.ReadyReplicas), nil
	})
	for _, name := range []string{"data-db-0", "data-db-1"} {
		var pvc corev1.PersistentVolumeClaim
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &pvc); err != nil {
			t.Fatal(err)
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			t.Errorf("PersistentVolumeClaim %s is %s, want Bound", name, pvc.Status.Phase)
		}
	}
}

func TestSimulatedClusterCompletesAJob(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	ctx := context.Background()

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: ns},
		Spec: batchv1.JobSpec{
			Completions: ptr.To[int32](3),
			Template:    podTemplate("migrate"),
		},
	}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	if err := c.Client.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	await(t, time.Minute, "Job migrate complete", func(ctx context.Context) (bool, string, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return false, "", err
		}
		for _, cond := range job.Status.Conditions {
			if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
				return job.Status.Succeeded == 3, "", nil
			}
		}
		return false, fmt.Sprintf("%d pods succeeded", job.Status.Succeeded), nil
	})
}

// Exec into a simulated pod runs the command on this host: that is how tests drive kudod's
// real exec-and-copy path (Pipe tasks) without a kubelet.
func TestSimulatedClusterExecRunsOnTheHost(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	ctx := context.Background()

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shell", Namespace: ns},
		Spec:       podTemplate("shell").Spec,
	}
	if err := c.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	await(t, time.Minute, "pod shell running", func(ctx context.Context) (bool, string, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return false, "", err
		}
		return pod.Status.Phase == corev1.PodRunning, string(pod.Status.Phase), nil
	})

	b := make([]byte, 16)
	_, _ = rand.Read(b)
	content := hex.EncodeToString(b)
	file := filepath.Join(t.TempDir(), "pipe-output")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := c.Kubectl(ctx, "exec", "-n", ns, "shell", "--", "cat", file)
	if err != nil {
		t.Fatal(err)
	}
	if out != content {
		t.Errorf("exec cat %s printed %q, want the host file's %q", file, out, content)
	}
}

// The audit log records every write, dry runs recognisably: a test can prove that a code path
// (pull-request previews) never writes for real.
func TestSimulatedClusterAuditsDryRuns(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	ctx := context.Background()

	dry := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry", Namespace: ns}}
	if err := c.Client.Create(ctx, dry, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	real := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "real", Namespace: ns}}
	if err := c.Client.Create(ctx, real); err != nil {
		t.Fatal(err)
	}

	dryRun := map[string]bool{}
	await(t, 30*time.Second, "both creates in the audit log", func(context.Context) (bool, string, error) {
		for _, e := range c.AuditEvents(t) {
			if e.Verb == "create" && e.ObjectRef != nil && e.ObjectRef.Namespace == ns &&
				e.ObjectRef.Resource == "configmaps" && (e.ObjectRef.Name == dry.Name || e.ObjectRef.Name == real.Name) {
				dryRun[e.ObjectRef.Name] = e.DryRun()
				if e.User.Username != "kudod-admin" {
					t.Errorf("create of %s audited as user %q, want kudod-admin", e.ObjectRef.Name, e.User.Username)
				}
			}
		}
		return len(dryRun) == 2, "", nil
	})
	if !dryRun["dry"] || dryRun["real"] {
		t.Errorf("audited dry runs %v, want dry: true, real: false", dryRun)
	}
}

func TestNewSimulatedClusterIsBare(t *testing.T) {
	c := testenv.NewSimulatedCluster(t)
	if shared := testenv.SimulatedCluster(t); shared.Config.Host == c.Config.Host {
		t.Fatalf("NewSimulatedCluster returned the shared cluster at %s", c.Config.Host)
	}
	var nodes corev1.NodeList
	if err := c.Client.List(context.Background(), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 1 || len(nodes.Items[0].Spec.Taints) != 0 {
		t.Errorf("nodes %v, want one fake node without taints", nodes.Items)
	}
}
