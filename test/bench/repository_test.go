package bench

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmark's operator: four small objects that are healthy as soon as they exist, so the
// figures measure kudod and the API server, not workloads (no kwok needed). The deploy and
// update plans apply the same step; a parameter change runs update (docs/design.md, Plan
// selection).
const (
	operatorName = "bench"

	operatorYAML = `apiVersion: kudo.dev/v1beta1
name: bench
operatorVersion: 1.0.0
kubernetesVersion: 1.20.0
maintainers:
  - name: kudod benchmark
    email: bench@kudod.invalid
tasks:
  - name: app
    kind: Apply
    spec:
      resources: [configmap.yaml, secret.yaml, serviceaccount.yaml, service.yaml]
plans:
  deploy:
    strategy: serial
    phases:
      - name: main
        strategy: serial
        steps:
          - name: app
            tasks: [app]
  update:
    strategy: serial
    phases:
      - name: main
        strategy: serial
        steps:
          - name: app
            tasks: [app]
`
	paramsYAML = `apiVersion: kudo.dev/v1beta1
parameters:
  - name: VALUE
    description: a value the ConfigMap carries; the latency benchmark changes it
    default: "v0"
`
	configMapYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Name }}-config
data:
  value: {{ .Params.VALUE | quote }}
`
	// A throwaway value, not a credential.
	secretYAML = `apiVersion: v1
kind: Secret
metadata:
  name: {{ .Name }}-secret
type: Opaque
stringData:
  owner: {{ .Name }}
`
	serviceAccountYAML = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Name }}
`
	// A ClusterIP Service: testenv's API server has a /16 range, room for every run's Services.
	serviceYAML = `apiVersion: v1
kind: Service
metadata:
  name: {{ .Name }}
spec:
  selector:
    app: {{ .Name }}
  ports:
    - name: http
      port: 80
      targetPort: 8080
`
	// objectsPerInstance is what one deploy plan applies.
	objectsPerInstance = 4
)

// instanceRef names one instance file of the generated repository.
type instanceRef struct {
	Namespace, Name string
}

func (r instanceRef) String() string { return r.Namespace + "/" + r.Name }

func (r instanceRef) file() string {
	return filepath.Join("instances", r.Namespace, r.Name+".yaml")
}

// instanceFile is a kudod.dev/v1alpha1 instance file of the bench operator.
func instanceFile(r instanceRef, value string) string {
	return fmt.Sprintf(`apiVersion: kudod.dev/v1alpha1
kind: Instance
metadata:
  name: %s
  namespace: %s
spec:
  operator:
    name: %s
  parameters:
    VALUE: %q
`, r.Name, r.Namespace, operatorName, value)
}

// layout spreads n instances over namespaces named prefix-NN: about 20 per namespace, at
// least 2 namespaces and at most 50 (Flux's benchmark shape: 1,000 over 50).
func layout(prefix string, n int) []instanceRef {
	namespaces := min(max(n/20, 2), 50)
	refs := make([]instanceRef, n)
	for i := range refs {
		refs[i] = instanceRef{Namespace: fmt.Sprintf("%s-%02d", prefix, i%namespaces), Name: fmt.Sprintf("app-%04d", i)}
	}
	return refs
}

// benchRepo is a git repository in a temporary directory (a work tree to commit in) and a bare
// copy that an HTTP server serves with git http-backend; commits reach the server by push.
type benchRepo struct {
	t    testing.TB
	work string
	bare string
	home string
}

// newBenchRepo commits the bench operator and one instance file per ref, and pushes it.
func newBenchRepo(t testing.TB, refs []instanceRef) (*benchRepo, string) {
	t.Helper()
	tmp := t.TempDir()
	r := &benchRepo{t: t, work: filepath.Join(tmp, "work"), bare: filepath.Join(tmp, "served", "repo.git"), home: filepath.Join(tmp, "home")}
	for _, dir := range []string{r.work, r.home} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("creating %s: %v", dir, err)
		}
	}
	pkg := filepath.Join("operators", operatorName, "1.0.0")
	files := map[string]string{
		filepath.Join(pkg, "operator.yaml"):                    operatorYAML,
		filepath.Join(pkg, "params.yaml"):                      paramsYAML,
		filepath.Join(pkg, "templates", "configmap.yaml"):      configMapYAML,
		filepath.Join(pkg, "templates", "secret.yaml"):         secretYAML,
		filepath.Join(pkg, "templates", "serviceaccount.yaml"): serviceAccountYAML,
		filepath.Join(pkg, "templates", "service.yaml"):        serviceYAML,
	}
	for _, ref := range refs {
		files[ref.file()] = instanceFile(ref, "v0")
	}
	r.write(files)
	r.git("init", "-q", "-b", "main")
	r.git("add", "-A")
	r.git("commit", "-q", "-m", fmt.Sprintf("%d instances of %s", len(refs), operatorName))
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", r.bare).CombinedOutput(); err != nil {
		t.Fatalf("git init --bare: %v: %s", err, out)
	}
	r.git("remote", "add", "served", r.bare)
	r.push()
	return r, r.git("rev-parse", "HEAD")
}

func (r *benchRepo) write(files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatalf("creating the directory of %s: %v", name, err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatalf("writing %s: %v", name, err)
		}
	}
}

// git runs git in the work tree, isolated from the user's and the system's configuration.
func (r *benchRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.work
	cmd.Env = append(os.Environ(),
		"HOME="+r.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=kudod bench", "GIT_AUTHOR_EMAIL=bench@kudod.invalid",
		"GIT_COMMITTER_NAME=kudod bench", "GIT_COMMITTER_EMAIL=bench@kudod.invalid",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// setValue commits a new VALUE for one instance (not pushed) and returns the commit.
func (r *benchRepo) setValue(ref instanceRef, value string) string {
	r.t.Helper()
	r.write(map[string]string{ref.file(): instanceFile(ref, value)})
	r.git("add", "-A")
	r.git("commit", "-q", "-m", fmt.Sprintf("%s: VALUE=%s", ref, value))
	return r.git("rev-parse", "HEAD")
}

// push makes the work tree's main what the server serves.
func (r *benchRepo) push() {
	r.t.Helper()
	r.git("push", "-q", "-f", "served", "main")
}

// gitServer serves the bare repository over smart HTTP and counts what clients ask for.
type gitServer struct {
	URL string
	// refs counts ref advertisements (GET info/refs): every poll makes one, a fetch too.
	refs atomic.Int64
	// fetches counts pack negotiations (POST git-upload-pack): only a fetch makes them.
	fetches atomic.Int64
	// firstRefs is when the first ref advertisement was asked for: a daemon's first poll.
	firstRefs atomic.Pointer[time.Time]
}

// forgetPolls makes the next ref advertisement the first again: another daemon follows.
func (s *gitServer) forgetPolls() { s.firstRefs.Store(nil) }

// firstPoll returns when a client first asked for the refs, and whether one has.
func (s *gitServer) firstPoll() (time.Time, bool) {
	if at := s.firstRefs.Load(); at != nil {
		return *at, true
	}
	return time.Time{}, false
}

// serve starts an HTTP server for the repository until the test ends.
func (r *benchRepo) serve(t testing.TB) *gitServer {
	t.Helper()
	backend, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	h := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(backend)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(r.bare), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + r.home},
	}
	s := &gitServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/info/refs"):
			now := time.Now()
			s.firstRefs.CompareAndSwap(nil, &now)
			s.refs.Add(1)
		case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/git-upload-pack"):
			s.fetches.Add(1)
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/" + filepath.Base(r.bare)
	return s
}
