package applier

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/manifests"
)

// pipeTask is a Pipe task (KUDO's task_pipe.go): a pod whose init container writes files, which
// kudod copies into Secrets or ConfigMaps that later templates refer to as .Pipes.<key>. It
// writes on its own, after the step's batch; its artifacts go into the inventory.
type pipeTask struct {
	def *manifests.Task
	// pod is the pod template's one Pod, prepared with the plan's objects.
	pod       *objectSet
	artifacts []pipeArtifact
}

type pipeArtifact struct {
	manifests.PipeSpec
	// name of the Secret or ConfigMap.
	name string
}

func renderPipe(ctx context.Context, r *planRender, in manifests.RenderInput, t *manifests.Task) (task, error) {
	file := r.pkg.TemplatePath(t.Spec.Pod)
	objs, err := r.pkg.RenderContext(ctx, t.Spec.Pod, in)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 || objs[0].GetKind() != "Pod" {
		return nil, fmt.Errorf("%s: a Pipe task's pod template must hold exactly one Pod", file)
	}
	pod := objs[0]
	pod.SetName(manifests.PipePodName(in.Name, manifests.PipeRef{Plan: in.PlanName, Phase: in.PhaseName, Step: in.StepName, Task: t.Name}))
	if err := manifests.CheckPipePod(objs, t.Spec.Pipe); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	p := &pipeTask{def: t, pod: r.add(file, objs, true)}
	for _, spec := range t.Spec.Pipe {
		p.artifacts = append(p.artifacts, pipeArtifact{PipeSpec: spec, name: in.Pipes[spec.Key]})
	}
	return p, nil
}

func (p *pipeTask) batch() (apply, remove []*unstructured.Unstructured) { return nil, nil }

func (p *pipeTask) write(ctx, writeCtx context.Context, x *stepExecution) ([]*unstructured.Unstructured, error) {
	return x.engine.runPipe(ctx, writeCtx, x.run, p)
}

// wait has nothing left to wait for: write waited for the pod and copied the files.
func (p *pipeTask) wait(context.Context, *stepExecution) error { return nil }

func (p *pipeTask) inventory(namespace string) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(p.artifacts))
	for _, a := range p.artifacts {
		o := &unstructured.Unstructured{}
		o.SetAPIVersion("v1")
		o.SetKind(a.Kind)
		o.SetNamespace(namespace)
		o.SetName(a.name)
		out = append(out, o)
	}
	return out
}

// preview lists the artifacts: their content comes from a pod that only runs with the plan.
func (p *pipeTask) preview(pv *planPreview) {
	for _, a := range p.artifacts {
		pv.add(ObjectChange{Object: a.Kind + "/" + pv.namespace + "/" + a.name, Action: ChangeCreated, Note: "written by a Pipe task from a file its pod makes"})
	}
}

// output is empty: the pod is run and deleted, never one of the instance's objects.
func (p *pipeTask) output() (string, []*objectSet) { return "", nil }

// PodExecutor runs a command in a container of a pod and returns what it wrote to stdout.
// Stdout is read through a limit of limit bytes: past it the command's stream is stopped and
// the error wraps ErrOutputLimit.
type PodExecutor interface {
	Exec(ctx context.Context, namespace, pod, container string, command []string, limit int) ([]byte, error)
}

// maxPipeFileSize is KUDO's limit on a piped file (1 MiB).
const maxPipeFileSize = 1 << 20

// pipeWaiterContainer keeps a pipe pod running once its init container wrote the files.
const pipeWaiterContainer = "waiter"

// pipeMount returns where the init container mounts the volume.
func pipeMount(pod *unstructured.Unstructured, volume string) string {
	ics, _, _ := unstructured.NestedSlice(pod.Object, "spec", "initContainers")
	if len(ics) != 1 {
		return ""
	}
	ic, _ := ics[0].(map[string]any)
	mounts, _, _ := unstructured.NestedSlice(ic, "volumeMounts")
	for _, m := range mounts {
		mm, _ := m.(map[string]any)
		if mm["name"] == volume {
			s, _ := mm["mountPath"].(string)
			return s
		}
	}
	return ""
}

// runPipe runs a Pipe task as KUDO does: start the pod with a waiter container beside the
// init container's volume, wait until it is ready, copy each file out through pods/exec into
// a Secret or ConfigMap named for the pipe, and delete the pod. It returns the artifacts.
func (e *Engine) runPipe(ctx, writeCtx context.Context, run *Run, p *pipeTask) ([]*unstructured.Unstructured, error) {
	if e.exec == nil {
		return nil, fatal(fmt.Errorf("task %s: Pipe tasks need pods/exec, which this daemon was not given", p.def.Name))
	}
	pod := p.pod.objects[0].DeepCopy()
	vols, _, _ := unstructured.NestedSlice(pod.Object, "spec", "volumes")
	var volume string
	for _, v := range vols {
		if vm, _ := v.(map[string]any); vm != nil {
			if _, ok := vm["emptyDir"]; ok {
				volume = fmt.Sprint(vm["name"])
			}
		}
	}
	mount := pipeMount(pod, volume)
	waiter := map[string]any{
		"name":         pipeWaiterContainer,
		"image":        "busybox",
		"command":      []any{"/bin/sh", "-c", "sleep infinity"},
		"volumeMounts": []any{map[string]any{"name": volume, "mountPath": mount}},
	}
	_ = unstructured.SetNestedSlice(pod.Object, []any{waiter}, "spec", "containers")

	// A pod left by an interrupted attempt may differ (pods are immutable): start afresh.
	if err := e.delete(writeCtx, []*unstructured.Unstructured{pod}); err != nil {
		return nil, err
	}
	if err := e.waitDeleted(ctx, []*unstructured.Unstructured{pod}); err != nil {
		return nil, err
	}
	if err := e.apply(writeCtx, []*unstructured.Unstructured{pod}, nil); err != nil {
		return nil, err
	}
	if err := e.waitPodReady(ctx, pod); err != nil {
		return nil, err
	}
	var artifacts []*unstructured.Unstructured
	for _, a := range p.artifacts {
		obj, err := e.copyPipe(ctx, pod, a)
		if err != nil {
			return nil, err
		}
		if _, err := prepare(obj, "pipe "+a.Key, run.Instance, run.Package, newScope(e.mapper, nil), prepareOptions{allowClusterScoped: true}, false); err != nil {
			return nil, fatal(err)
		}
		artifacts = append(artifacts, obj)
	}
	if err := e.apply(writeCtx, artifacts, run.inventory()); err != nil {
		return nil, err
	}
	if err := e.delete(writeCtx, []*unstructured.Unstructured{pod}); err != nil {
		return nil, err
	}
	return artifacts, nil
}

func (e *Engine) waitPodReady(ctx context.Context, pod *unstructured.Unstructured) error {
	return e.poll(ctx, func(ctx context.Context) (bool, string, error) {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(pod.GroupVersionKind())
		if err := e.client.Get(ctx, client.ObjectKeyFromObject(pod), live); err != nil {
			if apierrors.IsNotFound(err) {
				return false, objectRef(pod) + " to start", nil
			}
			return false, "", classify(err)
		}
		if phase, _, _ := unstructured.NestedString(live.Object, "status", "phase"); phase == "Failed" {
			return false, "", fatal(fmt.Errorf("pipe pod %s failed", objectRef(pod)))
		}
		res, err := status.Compute(live)
		if err != nil {
			return false, "", err
		}
		return res.Status == status.CurrentStatus, objectRef(pod) + " to be ready: " + res.Message, nil
	})
}

// copyPipe reads one piped file out of the pod into a Secret or ConfigMap.
func (e *Engine) copyPipe(ctx context.Context, pod *unstructured.Unstructured, a pipeArtifact) (*unstructured.Unstructured, error) {
	file := a.File
	if file == "" {
		file = a.EnvFile
	}
	// The file is read through the limit, never sized first: a size from stat says nothing of
	// what cat then streams (a symlink to /dev/zero stats small and never ends).
	data, err := e.exec.Exec(ctx, pod.GetNamespace(), pod.GetName(), pipeWaiterContainer, []string{"cat", file}, maxPipeFileSize)
	if errors.Is(err, ErrOutputLimit) {
		return nil, fatal(fmt.Errorf("pipe %s: %s in %s is larger than %d bytes (1 MiB), the most a pipe carries; reading stopped there", a.Key, file, objectRef(pod), maxPipeFileSize))
	}
	if err != nil {
		return nil, fmt.Errorf("pipe %s: read %s in %s: %w", a.Key, file, objectRef(pod), err)
	}
	values := map[string][]byte{}
	if a.File != "" {
		values[path.Base(a.File)] = data
	} else {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fatal(fmt.Errorf("pipe %s: %s: line %q is not KEY=VALUE", a.Key, file, line))
			}
			values[k] = []byte(v)
		}
	}
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("v1")
	obj.SetKind(a.Kind)
	obj.SetName(a.name)
	obj.SetNamespace(pod.GetNamespace())
	field := "data"
	if a.Kind == "ConfigMap" && a.File != "" {
		field = "binaryData" // KUDO keeps piped files byte for byte
	}
	enc := map[string]any{}
	for k, v := range values {
		if a.Kind == "ConfigMap" && field == "data" {
			enc[k] = string(v)
		} else {
			enc[k] = encodeBase64(v)
		}
	}
	obj.Object[field] = enc
	obj.SetCreationTimestamp(metav1.Time{})
	return obj, nil
}
