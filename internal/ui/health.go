package ui

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

const (
	// maxHealthReads bounds the objects whose health one refresh reads: beyond it the page
	// lists the objects without health rather than send hundreds of GETs a second.
	maxHealthReads = 200
	// healthConcurrency is how many of those reads run at once.
	healthConcurrency = 4
)

// inventoryObjects lists the objects of an inventory ("<namespace>_<name>_<group>_<kind>" and
// version, as Flux records them), sorted by kind, namespace and name.
func inventoryObjects(entries []v1alpha1.InventoryEntry) []Object {
	out := make([]Object, 0, len(entries))
	for _, e := range entries {
		m, err := object.ParseObjMetadata(e.ID)
		if err != nil {
			out = append(out, Object{Name: e.ID, Health: "Unknown", Message: "unreadable inventory entry"})
			continue
		}
		gv := schema.GroupVersion{Group: m.GroupKind.Group, Version: e.Version}
		out = append(out, Object{APIVersion: gv.String(), Kind: m.GroupKind.Kind, Namespace: m.Namespace, Name: m.Name})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

// readHealth fills in each object's health with kstatus, as the engine judges it when it
// waits (applier: Current is healthy). It returns a note when it skipped some.
func readHealth(ctx context.Context, c client.Reader, objs []Object) string {
	n := min(len(objs), maxHealthReads)
	sem := make(chan struct{}, healthConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	forbidden := 0
	for i := 0; i < n; i++ {
		o := &objs[i]
		if o.Kind == "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			health, msg, denied := objectHealth(ctx, c, o)
			o.Health, o.Message = health, msg
			if denied {
				mu.Lock()
				forbidden++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var notes []string
	if len(objs) > n {
		notes = append(notes, fmt.Sprintf("health read for the first %d of %d objects", n, len(objs)))
	}
	if forbidden > 0 {
		notes = append(notes, fmt.Sprintf("%d objects cannot be read with your kubeconfig", forbidden))
	}
	return strings.Join(notes, "; ")
}

func objectHealth(ctx context.Context, c client.Reader, o *Object) (health, msg string, denied bool) {
	live := &unstructured.Unstructured{}
	live.SetAPIVersion(o.APIVersion)
	live.SetKind(o.Kind)
	err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Name}, live)
	switch {
	case apierrors.IsNotFound(err):
		return "NotFound", "", false
	case apierrors.IsForbidden(err):
		return "Unknown", "not allowed to read it", true
	case err != nil:
		return "Unknown", shortError(err), false
	}
	res, err := status.Compute(live)
	if err != nil {
		return "Unknown", shortError(err), false
	}
	return res.Status.String(), res.Message, false
}

func shortError(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
