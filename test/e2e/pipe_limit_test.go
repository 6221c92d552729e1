package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/test/testenv"
)

// pipeLimit is the most a Pipe task reads of a file (KUDO's limit, 1 MiB).
const pipeLimit = 1 << 20

// TestPipeExecReadsThroughALimit runs cat through pods/exec (kwok runs it on this host) with
// the Pipe tasks' limit: files up to the limit come back whole; a larger file, and a symlink
// to /dev/zero that stats small and never ends, stop at the limit at once, and the cat on the
// other end does not keep running.
func TestPipeExecReadsThroughALimit(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	pod := runPod(t, c, ns, "pipe-reader")
	dir := t.TempDir()
	files := map[string][]byte{
		"small":   []byte("hello\n"),
		"exact":   bytes.Repeat([]byte("x"), pipeLimit),
		"larger":  bytes.Repeat([]byte("x"), pipeLimit+1),
		"missing": nil,
	}
	for name, data := range files {
		if data != nil {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	exec, err := applier.NewPodExecutor(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file  string
		want  []byte
		limit bool
	}{
		{file: "small", want: files["small"]},
		{file: "exact", want: files["exact"]},
		{file: "larger", limit: true},
		{file: "zero", limit: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			out, err := exec.Exec(ctx, ns, pod, "c", []string{"cat", filepath.Join(dir, tt.file)}, pipeLimit)
			took := time.Since(start)
			if tt.limit {
				if !errors.Is(err, applier.ErrOutputLimit) {
					t.Fatalf("want the output limit, got %d bytes and %v", len(out), err)
				}
				if took > 20*time.Second {
					t.Errorf("stopping at the limit took %s", took)
				}
				return
			}
			if err != nil || !bytes.Equal(out, tt.want) {
				t.Fatalf("got %d bytes and %v, want %d bytes", len(out), err, len(tt.want))
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := exec.Exec(ctx, ns, pod, "c", []string{"cat", filepath.Join(dir, "missing")}, pipeLimit); err == nil || errors.Is(err, applier.ErrOutputLimit) || !strings.Contains(err.Error(), "No such file") {
		t.Errorf("a missing file: %v", err)
	}
	// The cat streaming /dev/zero ends with its stream.
	eventually(t, 30*time.Second, "the cat of /dev/zero to end", func() (bool, string) {
		pids := processesWith(zero)
		return len(pids) == 0, fmt.Sprintf("still running: %v", pids)
	})
}

// TestPipeTaskOfAnEndlessFileFails: a Pipe task whose file is a symlink to /dev/zero fails
// its plan, naming the file and the limit, instead of filling kudod's memory.
func TestPipeTaskOfAnEndlessFileFails(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	zero := filepath.Join(t.TempDir(), "endless.html")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	repo := testenv.NewGitRepo(t)
	files := pipePackage(zero)
	files["instances/p.yaml"] = instanceFile(ns, "p", "piper", "", "")
	rev := repo.Commit("endless pipe", files)
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	in := waitPlan(t, c, ns, "p", "deploy", v1alpha1.StatusFatalError, rev, 2*time.Minute)
	msg := in.Status.LastPlan.Message
	if !strings.Contains(msg, zero) || !strings.Contains(msg, "1048576 bytes") {
		t.Fatalf("the failure does not name the file and the limit: %q", msg)
	}
	t.Logf("the plan failed: %s", msg)
	if exists(t, c, &corev1.ConfigMap{}, ns, "p.deploy.main.page.page.page") {
		t.Fatal("a ConfigMap was written from an endless file")
	}
}

// pipePackage is a package "piper" whose deploy pipes file (on this host, where kwok runs
// exec) into a ConfigMap.
func pipePackage(file string) map[string]string {
	return map[string]string{
		"operators/piper/1.0.0/operator.yaml": `apiVersion: kudo.dev/v1beta1
name: piper
operatorVersion: 1.0.0
kubernetesVersion: 1.20.0
tasks:
  - name: page
    kind: Pipe
    spec:
      pod: pod.yaml
      pipe:
        - {file: ` + file + `, kind: ConfigMap, key: page}
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: page
            tasks: [page]
`,
		"operators/piper/1.0.0/params.yaml": "parameters: []\n",
		"operators/piper/1.0.0/templates/pod.yaml": `apiVersion: v1
kind: Pod
spec:
  volumes: [{name: out, emptyDir: {}}]
  initContainers:
    - name: write
      image: busybox
      command: [sh, -c, "true"]
      volumeMounts: [{name: out, mountPath: ` + filepath.Dir(file) + `}]
`,
	}
}

// runPod creates a pod on the simulated node and waits until it runs.
func runPod(t *testing.T, c *testenv.Cluster, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := c.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "pod "+name+" to run", func() (bool, string) {
		got := &corev1.Pod{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, got); err != nil {
			return false, err.Error()
		}
		return got.Status.Phase == corev1.PodRunning, string(got.Status.Phase)
	})
	return name
}

// processesWith lists the PIDs of this host's processes whose command line holds s.
func processesWith(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
