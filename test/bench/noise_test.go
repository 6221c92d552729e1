package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// noise is what a cluster holds that kudod does not own (issue 18): ConfigMaps and Secrets
// of 1 KiB spread over namespaces, and the events of pods.
type noise struct {
	// objects is how many ConfigMaps and Secrets (half each).
	objects int
	// namespaces they spread over.
	namespaces int
	// pods is how many pods' worth of events: eventsPerPod each, as a scheduled and started
	// pod leaves (Scheduled, Pulling, Pulled, Created, Started).
	pods int
}

const (
	eventsPerPod = 5
	// noiseWorkers is how many creates are in flight: enough to keep kube-apiserver and etcd
	// busy on every core, few enough not to queue in its max-requests-inflight (200 writes).
	noiseWorkers = 64
	noiseBlob    = 1024
)

// noiseStats is how creating the noise went.
type noiseStats struct {
	objects, events int
	seconds         float64
}

// createNoise creates the noise as fast as the API server takes it: protobuf, no client-side
// rate limit, noiseWorkers creates at once. Namespaces are created first, untimed.
func createNoise(ctx context.Context, cfg *rest.Config, n noise) (noiseStats, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limiter
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return noiseStats{}, err
	}
	namespace := func(i int) string { return fmt.Sprintf("noise-%03d", i%n.namespaces) }
	for i := range n.namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace(i)}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return noiseStats{}, fmt.Errorf("create namespace %s: %w", ns.Name, err)
		}
	}
	// Every object's content differs, as real data does.
	blob := func() string {
		b := make([]byte, noiseBlob/2)
		_, _ = rand.Read(b) // crypto/rand.Read never fails
		return hex.EncodeToString(b)
	}
	events := n.pods * eventsPerPod
	work := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	g.Go(func() error {
		defer close(work)
		for i := range n.objects + events {
			select {
			case work <- i:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	reasons := [eventsPerPod]string{"Scheduled", "Pulling", "Pulled", "Created", "Started"}
	for range noiseWorkers {
		g.Go(func() error {
			for i := range work {
				var err error
				switch {
				case i < n.objects && i%2 == 0:
					cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("noise-%06d", i), Labels: map[string]string{"app": fmt.Sprintf("noise-%d", i%1000)}}, Data: map[string]string{"blob": blob()}}
					_, err = cs.CoreV1().ConfigMaps(namespace(i)).Create(gctx, cm, metav1.CreateOptions{})
				case i < n.objects:
					s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("noise-%06d", i), Labels: map[string]string{"app": fmt.Sprintf("noise-%d", i%1000)}}, Data: map[string][]byte{"blob": []byte(blob())}}
					_, err = cs.CoreV1().Secrets(namespace(i)).Create(gctx, s, metav1.CreateOptions{})
				default:
					e := i - n.objects
					pod, reason := fmt.Sprintf("noise-pod-%06d", e/eventsPerPod), reasons[e%eventsPerPod]
					now := metav1.Now()
					ev := &corev1.Event{
						ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%s.%d", pod, e%eventsPerPod)},
						InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: namespace(e / eventsPerPod), Name: pod},
						Reason:         reason, Message: fmt.Sprintf("%s: container app of pod %s, image registry.example.com/noise/app:1.0", reason, pod),
						Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: now, LastTimestamp: now, Count: 1, Type: corev1.EventTypeNormal,
					}
					_, err = cs.CoreV1().Events(namespace(e/eventsPerPod)).Create(gctx, ev, metav1.CreateOptions{})
				}
				if err != nil {
					return fmt.Errorf("noise object %d: %w", i, err)
				}
			}
			return nil
		})
	}
	err = g.Wait()
	return noiseStats{objects: n.objects, events: events, seconds: time.Since(start).Seconds()}, err
}
