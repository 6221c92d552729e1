// Package ui is `kudod ui`: a local, read-only web UI of kudod's plans. It reads the cluster
// with the user's own kubeconfig, so it shows exactly what the user may see and exposes
// nothing the daemon does not already publish; it never writes (ReadOnlyConfig refuses every
// request but GET). The pages are plain HTML, CSS and JavaScript embedded in the binary; live
// updates are server-sent events driven by watches (docs/ui.md).
package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

//go:embed static
var staticFiles embed.FS

// Reader is what the UI needs of a cluster client: reads and watches, nothing that writes.
// controller-runtime's client.WithWatch satisfies it.
type Reader interface {
	client.Reader
	Watch(ctx context.Context, list client.ObjectList, opts ...client.ListOption) (watch.Interface, error)
}

// Options configure a Server.
type Options struct {
	// Client reads the cluster (built from ReadOnlyConfig).
	Client Reader
	// Namespace limits the UI to one namespace; empty shows every namespace the user may list.
	Namespace string
	// DaemonNamespace is where the daemon records each repository's status (its
	// --leader-election-namespace).
	DaemonNamespace string
	// Cluster names the cluster in the page header (the kubeconfig context, or the server).
	Cluster string
	// Version is kudod's version, shown in the footer.
	Version string
	// CommandFlags are added to the kudod commands the page offers (--kubeconfig, --context).
	CommandFlags []string
	// HasCommand reports whether this binary has a subcommand; nil: all of them.
	HasCommand func(name string) bool
	// HealthInterval is how often an open instance page re-reads its objects' health
	// (default 2s).
	HealthInterval time.Duration
	Log            logr.Logger
}

// Server serves the UI.
type Server struct {
	opts Options
	cmds commander
	mux  *http.ServeMux

	mu        sync.Mutex
	links     commitLinker
	linksRead time.Time
}

// sourcesTTL is how long the repositories' URLs (for commit links) are reused.
const sourcesTTL = 10 * time.Second

// New returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Client == nil {
		return nil, errors.New("ui: no cluster client")
	}
	if opts.DaemonNamespace == "" {
		opts.DaemonNamespace = "kudod-system"
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = 2 * time.Second
	}
	s := &Server{opts: opts, cmds: commander{flags: opts.CommandFlags, has: opts.HasCommand}, mux: http.NewServeMux()}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("ui: embedded assets: %w", err)
	}
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	}
	s.mux.HandleFunc("GET /{$}", page)
	s.mux.HandleFunc("GET /instances/{namespace}/{name}", page)
	s.mux.HandleFunc("GET /sources", page)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "favicon.svg")
	})
	s.mux.HandleFunc("GET /api/info", s.info)
	s.mux.HandleFunc("GET /api/instances", s.getInstances)
	s.mux.HandleFunc("GET /api/instances/{namespace}/{name}", s.getInstance)
	s.mux.HandleFunc("GET /api/sources", s.getSources)
	s.mux.HandleFunc("GET /api/events/instances", s.streamInstances)
	s.mux.HandleFunc("GET /api/events/instances/{namespace}/{name}", s.streamInstance)
	s.mux.HandleFunc("GET /api/events/sources", s.streamSources)
	return s, nil
}

// ServeHTTP answers only requests addressed to the loopback interface by name or address, so
// a web page elsewhere cannot reach the UI through a DNS name it rebinds to 127.0.0.1.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackHost(r.Host) {
		http.Error(w, "kudod ui answers only on 127.0.0.1 and localhost", http.StatusMisdirectedRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "kudod ui is read-only", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	s.mux.ServeHTTP(w, r)
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Info is what the page header shows about the connection.
type Info struct {
	Cluster         string `json:"cluster,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	DaemonNamespace string `json:"daemonNamespace"`
	Version         string `json:"version,omitempty"`
	ReadOnly        bool   `json:"readOnly"`
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Info{Cluster: s.opts.Cluster, Namespace: s.opts.Namespace, DaemonNamespace: s.opts.DaemonNamespace, Version: s.opts.Version, ReadOnly: true})
}

// InstanceList is the JSON of /api/instances and of the instances stream's snapshots.
type InstanceList struct {
	Instances []InstanceRow `json:"instances"`
}

// SourceList is the JSON of /api/sources and of the sources stream.
type SourceList struct {
	Sources []Source `json:"sources"`
	// Error says why the repositories' status cannot be read, if it cannot.
	Error string `json:"error,omitempty"`
}

// apiError is the JSON of a failed request and of a stream's error event.
type apiError struct {
	Error string `json:"error"`
}

func (s *Server) scope() []client.ListOption {
	if s.opts.Namespace != "" {
		return []client.ListOption{client.InNamespace(s.opts.Namespace)}
	}
	return nil
}

func (s *Server) listInstances(ctx context.Context) (*v1alpha1.InstanceList, InstanceList, error) {
	var list v1alpha1.InstanceList
	if err := s.opts.Client.List(ctx, &list, s.scope()...); err != nil {
		return nil, InstanceList{}, s.explain(err, "list Instances")
	}
	links := s.commitLinks(ctx)
	out := InstanceList{Instances: make([]InstanceRow, 0, len(list.Items))}
	for i := range list.Items {
		out.Instances = append(out.Instances, row(&list.Items[i], links))
	}
	return &list, out, nil
}

func (s *Server) getInstances(w http.ResponseWriter, r *http.Request) {
	_, out, err := s.listInstances(r.Context())
	if err != nil {
		writeJSON(w, statusOf(err), apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	in := &v1alpha1.Instance{}
	if err := s.opts.Client.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, in); err != nil {
		err = s.explain(err, fmt.Sprintf("read Instance %s/%s", ns, name))
		writeJSON(w, statusOf(err), apiError{Error: err.Error()})
		return
	}
	d := s.detail(r.Context(), in, nil)
	d.ObjectsNote = readHealth(r.Context(), s.opts.Client, d.Objects)
	stepHealth(&d)
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) getSources(w http.ResponseWriter, r *http.Request) {
	out, err := s.listSources(r.Context())
	if err != nil {
		writeJSON(w, statusOf(err), apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// detail is the instance page's data; health fills in the objects' last known health.
func (s *Server) detail(ctx context.Context, in *v1alpha1.Instance, health map[string]Object) InstanceDetail {
	d := detail(in, s.commitLinks(ctx), s.cmds)
	d.Objects = inventoryObjects(in.Status.Inventory)
	for i := range d.Objects {
		if h, ok := health[objectKey(d.Objects[i])]; ok {
			d.Objects[i].Health, d.Objects[i].Message = h.Health, h.Message
		}
	}
	stepHealth(&d)
	return d
}

// stepHealth gives each step's objects the health read for the instance's objects.
func stepHealth(d *InstanceDetail) {
	health := make(map[string]Object, len(d.Objects))
	for _, o := range d.Objects {
		health[objectKey(o)] = o
	}
	for i := range d.Plans {
		for j := range d.Plans[i].Phases {
			for k := range d.Plans[i].Phases[j].Steps {
				objs := d.Plans[i].Phases[j].Steps[k].Objects
				for n := range objs {
					if h, ok := health[objectKey(objs[n])]; ok {
						objs[n].Health, objs[n].Message = h.Health, h.Message
					}
				}
			}
		}
	}
}

func objectKey(o Object) string {
	return o.APIVersion + "/" + o.Kind + "/" + o.Namespace + "/" + o.Name
}

func (s *Server) listSources(ctx context.Context) (SourceList, error) {
	var list corev1.ConfigMapList
	err := s.opts.Client.List(ctx, &list, client.InNamespace(s.opts.DaemonNamespace), client.MatchingLabels{labelSourceStatus: "true"})
	if err != nil {
		return SourceList{}, s.explain(err, "list the repositories' status ConfigMaps in namespace "+s.opts.DaemonNamespace)
	}
	return sourceList(list.Items), nil
}

func sourceList(items []corev1.ConfigMap) SourceList {
	out := SourceList{Sources: make([]Source, 0, len(items))}
	for i := range items {
		out.Sources = append(out.Sources, parseSource(&items[i]))
	}
	sortSources(out.Sources)
	return out
}

// commitLinks returns each repository's clone URL, read at most every sourcesTTL. Without
// permission to read them, revisions simply have no links.
func (s *Server) commitLinks(ctx context.Context) commitLinker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links != nil && time.Since(s.linksRead) < sourcesTTL {
		return s.links
	}
	links := commitLinker{}
	var list corev1.ConfigMapList
	if err := s.opts.Client.List(ctx, &list, client.InNamespace(s.opts.DaemonNamespace), client.MatchingLabels{labelSourceStatus: "true"}); err == nil {
		for i := range list.Items {
			d := list.Items[i].Data
			if d["repository"] != "" && d["url"] != "" {
				links[d["repository"]] = d["url"]
			}
		}
	}
	s.links, s.linksRead = links, time.Now()
	return links
}

// explain words an API error for the page.
func (s *Server) explain(err error, what string) error {
	switch {
	case apierrors.IsForbidden(err):
		hint := ""
		if s.opts.Namespace == "" && strings.Contains(what, "Instances") {
			hint = " (start kudod ui with -n NAMESPACE to see one namespace)"
		}
		return &httpError{code: http.StatusForbidden, err: fmt.Errorf("your kubeconfig may not %s%s: %w", what, hint, err)}
	case apierrors.IsNotFound(err):
		return &httpError{code: http.StatusNotFound, err: fmt.Errorf("%s: %w", what, err)}
	}
	return &httpError{code: http.StatusBadGateway, err: fmt.Errorf("%s: %w", what, err)}
}

type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.code
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
