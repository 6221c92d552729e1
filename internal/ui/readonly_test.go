package ui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The client the UI builds cannot write: every request but GET and HEAD fails before it leaves
// the process, and reads carry the UI's user agent.
func TestReadOnlyConfigRefusesWrites(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.UserAgent())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"ns"}}`))
	}))
	defer api.Close()
	cfg := ReadOnlyConfig(&rest.Config{Host: api.URL}, "v9")
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	// A client with every verb, to show the transport is what refuses.
	c, err := client.New(cfg, client.Options{Scheme: scheme, Mapper: staticMapper(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "x"}, &corev1.ConfigMap{}); err != nil {
		t.Fatalf("a read failed: %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x"}}
	for verb, write := range map[string]func() error{
		"create": func() error { return c.Create(ctx, cm.DeepCopy()) },
		"update": func() error { return c.Update(ctx, cm.DeepCopy()) },
		"patch": func() error {
			return c.Patch(ctx, cm.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{}`)))
		},
		"delete": func() error { return c.Delete(ctx, cm.DeepCopy()) },
	} {
		if err := write(); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s: %v, want a read-only refusal", verb, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "GET /api/v1/namespaces/ns/configmaps/x kudod-ui/v9") {
		t.Errorf("requests that reached the API server: %q", seen)
	}
}

func staticMapper(t *testing.T) meta.RESTMapper {
	t.Helper()
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	return m
}
