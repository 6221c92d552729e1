package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// Live pages follow server-sent events. Each stream lists (or gets) what its page shows,
// sends it, then watches from that resourceVersion and sends every change as it arrives, so
// the page is as current as the API server's watch; when a watch ends (the API server closes
// watches after a few minutes, or the resourceVersion expired) the stream lists again and
// sends a fresh snapshot.

const (
	// retryPause is how long a stream waits after a failed list before trying again.
	retryPause = 2 * time.Second
	// keepAlive is how often an idle stream sends a comment, so a closed tab is noticed.
	keepAlive = 15 * time.Second
)

// eventStream writes server-sent events.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newEventStream(w http.ResponseWriter) (*eventStream, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	es := &eventStream{w: w, rc: http.NewResponseController(w)}
	// The browser reconnects two seconds after a dropped stream.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return nil, err
	}
	return es, es.rc.Flush()
}

// send writes one event whose data is the JSON of v.
func (es *eventStream) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return es.sendRaw(event, data)
}

func (es *eventStream) sendRaw(event string, data []byte) error {
	if _, err := fmt.Fprintf(es.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	return es.rc.Flush()
}

func (es *eventStream) ping() error {
	if _, err := fmt.Fprint(es.w, ": ping\n\n"); err != nil {
		return err
	}
	return es.rc.Flush()
}

// pause waits d or until ctx ends; it reports whether the stream should go on.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watchOptions watches from a resourceVersion with bookmarks, so a quiet watch stays cheap.
func watchOptions(rv string, opts ...client.ListOption) []client.ListOption {
	return append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
}

// InstanceKey names an Instance in the instances stream's delete events.
type InstanceKey struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// streamInstances is the Instances page's stream: a "snapshot" (InstanceList), then an
// "upsert" (InstanceRow) or "delete" (InstanceKey) per change, "error" when the list fails.
func (s *Server) streamInstances(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	es, err := newEventStream(w)
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		list, snapshot, err := s.listInstances(ctx)
		if err != nil {
			if es.send("error", apiError{Error: err.Error()}) != nil || !pause(ctx, retryPause) {
				return
			}
			continue
		}
		if es.send("snapshot", snapshot) != nil {
			return
		}
		wi, err := s.opts.Client.Watch(ctx, &v1alpha1.InstanceList{}, watchOptions(list.ResourceVersion, s.scope()...)...)
		if err != nil {
			s.opts.Log.V(1).Info("watch Instances", "error", err.Error())
			if !pause(ctx, retryPause) {
				return
			}
			continue
		}
		if !s.followInstances(ctx, es, wi) {
			return
		}
	}
}

// followInstances sends the watch's changes; false when the page went away.
func (s *Server) followInstances(ctx context.Context, es *eventStream, wi watch.Interface) bool {
	defer wi.Stop()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			if es.ping() != nil {
				return false
			}
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return true
			}
			in, isInstance := ev.Object.(*v1alpha1.Instance)
			var err error
			switch {
			case ev.Type == watch.Error:
				return true // relist
			case !isInstance:
				continue
			case ev.Type == watch.Deleted:
				err = es.send("delete", InstanceKey{Namespace: in.Namespace, Name: in.Name})
			case ev.Type == watch.Added || ev.Type == watch.Modified:
				err = es.send("upsert", row(in, s.commitLinks(ctx)))
			}
			if err != nil {
				return false
			}
		}
	}
}

// InstanceState is the instance page's stream event: the instance, or why there is none.
type InstanceState struct {
	Instance *InstanceDetail `json:"instance,omitempty"`
	// Missing says the Instance does not exist (yet, or any more).
	Missing bool   `json:"missing,omitempty"`
	Error   string `json:"error,omitempty"`
}

// streamInstance is the instance page's stream: an "instance" event (InstanceState) whenever
// what the page shows changes, from a watch on that one Instance and from its objects' health,
// re-read every HealthInterval.
func (s *Server) streamInstance(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	es, err := newEventStream(w)
	if err != nil {
		return
	}
	f := &instanceFollower{s: s, es: es, health: map[string]Object{}}
	for ctx.Err() == nil {
		in := &v1alpha1.Instance{}
		rv := ""
		err := s.opts.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, in)
		switch {
		case err == nil:
			rv = in.ResourceVersion
		case apierrors.IsNotFound(err):
			in = nil
		default:
			err = s.explain(err, fmt.Sprintf("read Instance %s/%s", ns, name))
			if f.publish(InstanceState{Error: err.Error()}) != nil || !pause(ctx, retryPause) {
				return
			}
			continue
		}
		if f.show(ctx, in) != nil {
			return
		}
		opts := watchOptions(rv, client.InNamespace(ns), client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)})
		wi, err := s.opts.Client.Watch(ctx, &v1alpha1.InstanceList{}, opts...)
		if err != nil {
			s.opts.Log.V(1).Info("watch Instance", "namespace", ns, "name", name, "error", err.Error())
			if !pause(ctx, retryPause) {
				return
			}
			continue
		}
		if !f.follow(ctx, wi, name, in) {
			return
		}
	}
}

// instanceFollower sends an instance page's state when it changed.
type instanceFollower struct {
	s      *Server
	es     *eventStream
	last   []byte
	health map[string]Object // the objects' last read health, by objectKey
	note   string            // what readHealth said with it
}

// publish sends a state unless it is what the page already has.
func (f *instanceFollower) publish(st InstanceState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if bytes.Equal(data, f.last) {
		return nil
	}
	f.last = data
	return f.es.sendRaw("instance", data)
}

func (f *instanceFollower) show(ctx context.Context, in *v1alpha1.Instance) error {
	if in == nil {
		return f.publish(InstanceState{Missing: true})
	}
	d := f.s.detail(ctx, in, f.health)
	d.ObjectsNote = f.note
	return f.publish(InstanceState{Instance: &d})
}

// refreshHealth re-reads the health of the instance's objects and sends what changed.
func (f *instanceFollower) refreshHealth(ctx context.Context, in *v1alpha1.Instance) error {
	if in == nil {
		return nil
	}
	objs := inventoryObjects(in.Status.Inventory)
	note := readHealth(ctx, f.s.opts.Client, objs)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	health := make(map[string]Object, len(objs))
	for _, o := range objs {
		if o.Health != "" {
			health[objectKey(o)] = o
		}
	}
	f.health, f.note = health, note
	return f.show(ctx, in)
}

// follow sends the watched Instance's changes and its objects' health; false when the page
// went away.
func (f *instanceFollower) follow(ctx context.Context, wi watch.Interface, name string, in *v1alpha1.Instance) bool {
	defer wi.Stop()
	if f.refreshHealth(ctx, in) != nil {
		return false
	}
	health := time.NewTicker(f.s.opts.HealthInterval)
	defer health.Stop()
	idle := time.NewTicker(keepAlive)
	defer idle.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return false
		case <-idle.C:
			err = f.es.ping()
		case <-health.C:
			err = f.refreshHealth(ctx, in)
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return true
			}
			got, isInstance := ev.Object.(*v1alpha1.Instance)
			switch {
			case ev.Type == watch.Error:
				return true
			case !isInstance || got.Name != name:
				continue
			case ev.Type == watch.Deleted:
				in = nil
			case ev.Type == watch.Added || ev.Type == watch.Modified:
				in = got
			default:
				continue
			}
			err = f.show(ctx, in)
		}
		if err != nil {
			return false
		}
	}
}

// streamSources is the Sources page's stream: a "sources" event (SourceList) on every change
// of the repositories' status.
func (s *Server) streamSources(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	es, err := newEventStream(w)
	if err != nil {
		return
	}
	opts := []client.ListOption{client.InNamespace(s.opts.DaemonNamespace), client.MatchingLabels{labelSourceStatus: "true"}}
	for ctx.Err() == nil {
		var list corev1.ConfigMapList
		if err := s.opts.Client.List(ctx, &list, opts...); err != nil {
			err = s.explain(err, "list the repositories' status ConfigMaps in namespace "+s.opts.DaemonNamespace)
			if es.send("sources", SourceList{Sources: []Source{}, Error: err.Error()}) != nil || !pause(ctx, retryPause) {
				return
			}
			continue
		}
		if es.send("sources", sourceList(list.Items)) != nil {
			return
		}
		wi, err := s.opts.Client.Watch(ctx, &corev1.ConfigMapList{}, watchOptions(list.ResourceVersion, opts...)...)
		if err != nil {
			if !pause(ctx, retryPause) {
				return
			}
			continue
		}
		if !s.followSources(ctx, es, wi, list.Items) {
			return
		}
	}
}

func (s *Server) followSources(ctx context.Context, es *eventStream, wi watch.Interface, items []corev1.ConfigMap) bool {
	defer wi.Stop()
	byName := map[string]corev1.ConfigMap{}
	for _, cm := range items {
		byName[cm.Name] = cm
	}
	idle := time.NewTicker(keepAlive)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-idle.C:
			if es.ping() != nil {
				return false
			}
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return true
			}
			cm, isCM := ev.Object.(*corev1.ConfigMap)
			switch {
			case ev.Type == watch.Error:
				return true
			case !isCM || cm.Labels[labelSourceStatus] != "true":
				continue
			case ev.Type == watch.Deleted:
				delete(byName, cm.Name)
			case ev.Type == watch.Added || ev.Type == watch.Modified:
				byName[cm.Name] = *cm
			default:
				continue
			}
			all := make([]corev1.ConfigMap, 0, len(byName))
			for _, c := range byName {
				all = append(all, c)
			}
			if es.send("sources", sourceList(all)) != nil {
				return false
			}
		}
	}
}
