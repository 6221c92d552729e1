package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// Values that must never reach the browser.
const (
	secretPassword = "hunter2-super-secret"
	secretToken    = "tok-9f8e7d6c5b"
	urlToken       = "s3cr3t-clone-token"
)

var secrets = []string{secretPassword, secretToken, urlToken}

const revision = "0123456789abcdef0123456789abcdef01234567"

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func mt(d time.Duration) *metav1.Time { t := metav1.NewTime(t0.Add(d)); return &t }

// runningInstance is an instance in the middle of an update plan: the config step is done,
// the app step runs, and messages quote its sensitive values (they must be cut out).
func runningInstance() *v1alpha1.Instance {
	return &v1alpha1.Instance{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "demo", CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour)),
			Labels: map[string]string{v1alpha1.LabelRepository: "platform", v1alpha1.LabelParent: "demo.site"},
		},
		Spec: v1alpha1.InstanceSpec{
			Operator:   v1alpha1.OperatorRef{Name: "webapp", Version: "1.0.0", AppVersion: "1.27.0"},
			Parameters: map[string]string{"GREETING": "hello", "DB_PASSWORD": secretPassword, "API_TOKEN": secretToken},
			Source:     v1alpha1.SourceRef{Repository: "platform", Path: "instances/demo/web.yaml", Revision: revision},
			Schedules:  []v1alpha1.Schedule{{Name: "nightly", Plan: "backup", Cron: "0 2 * * *", TimeZone: "Europe/Berlin"}},
		},
		Status: v1alpha1.InstanceStatus{
			ActivePlan: &v1alpha1.ActivePlan{Name: "update", UID: "u2", Trigger: v1alpha1.TriggerGit, Revision: revision, StartTime: *mt(0)},
			LastPlan:   &v1alpha1.PlanSummary{Name: "update", UID: "u2", Status: v1alpha1.StatusInProgress, Trigger: v1alpha1.TriggerGit, Revision: revision, StartTime: mt(0)},
			Plans: []v1alpha1.PlanStatus{
				{Name: "deploy", Strategy: "serial", Status: v1alpha1.StatusComplete, UID: "d1", Trigger: v1alpha1.TriggerGit, Revision: "fedcba9876543210fedcba9876543210fedcba98", LastUpdated: mt(-30 * time.Minute),
					Phases: []v1alpha1.PhaseStatus{{Name: "main", Strategy: "serial", Status: v1alpha1.StatusComplete, Steps: []v1alpha1.StepStatus{{Name: "app", Status: v1alpha1.StatusComplete, LastUpdated: mt(-30 * time.Minute)}}}}},
				{Name: "update", Strategy: "serial", Status: v1alpha1.StatusInProgress, UID: "u2", Trigger: v1alpha1.TriggerGit, Revision: revision, LastUpdated: mt(5 * time.Second),
					Reasons: []string{"parameter DB_PASSWORD changed (value masked)", "parameter X: " + secretPassword}, // the daemon masks the first, the UI the rest
					Phases: []v1alpha1.PhaseStatus{
						{Name: "config", Strategy: "serial", Status: v1alpha1.StatusComplete, Steps: []v1alpha1.StepStatus{{Name: "config", Status: v1alpha1.StatusComplete, LastUpdated: mt(3 * time.Second)}}},
						{Name: "rollout", Strategy: "parallel", Status: v1alpha1.StatusInProgress, Steps: []v1alpha1.StepStatus{
							{Name: "app", Status: v1alpha1.StatusInProgress, LastUpdated: mt(3 * time.Second), Message: "waiting for the password " + secretPassword},
							{Name: "worker", Status: v1alpha1.StatusComplete, LastUpdated: mt(5 * time.Second)},
						}},
						{Name: "verify", Strategy: "serial", Status: v1alpha1.StatusPending, Steps: []v1alpha1.StepStatus{{Name: "check", Status: v1alpha1.StatusPending}}},
					}},
				{Name: "backup", Strategy: "serial", Status: v1alpha1.StatusNeverRun,
					Phases: []v1alpha1.PhaseStatus{{Name: "backup", Status: v1alpha1.StatusNeverRun, Steps: []v1alpha1.StepStatus{{Name: "run", Status: v1alpha1.StatusNeverRun}}}}},
			},
			Applied: &v1alpha1.AppliedState{Revision: revision, ShortRevision: revision[:7], Parameters: map[string]string{"DB_PASSWORD": "sha256:abc", "GREETING": "hello"}},
			Inventory: []v1alpha1.InventoryEntry{
				{ID: "demo_web-config__ConfigMap", Version: "v1"},
				{ID: "demo_web_apps_Deployment", Version: "v1"},
				{ID: "demo_web_Service", Version: "v1"}, // unreadable: one underscore too few
				{ID: "demo_web-gone__Service", Version: "v1"},
			},
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "Progressing", Message: "update runs with " + secretToken, LastTransitionTime: *mt(0)}},
			Schedules:  []v1alpha1.ScheduleStatus{{Name: "nightly", NextScheduleTime: mt(16 * time.Hour), LastScheduleTime: mt(-8 * time.Hour), LastResult: "COMPLETE"}},
		},
	}
}

func fixtures() []client.Object {
	one := int32(1)
	return []client.Object{
		runningInstance(),
		&v1alpha1.Instance{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "data", CreationTimestamp: metav1.NewTime(t0)},
			Spec:       v1alpha1.InstanceSpec{Operator: v1alpha1.OperatorRef{Name: "mysql", Version: "0.3.0"}, Source: v1alpha1.SourceRef{Repository: "local"}},
			Status: v1alpha1.InstanceStatus{LastPlan: &v1alpha1.PlanSummary{Name: "deploy", UID: "x", Status: v1alpha1.StatusFatalError, Message: "step main/app failed", StartTime: mt(0), FinishTime: mt(time.Minute)},
				Plans: []v1alpha1.PlanStatus{{Name: "deploy", UID: "x", Status: v1alpha1.StatusFatalError, LastUpdated: mt(time.Minute)}}},
		},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-config", Namespace: "demo"}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo", Generation: 1},
			Spec:       appsv1.DeploymentSpec{Replicas: &one},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}, {Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}},
		},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "kudod-source-platform", Namespace: "kudod-system", Labels: map[string]string{labelSourceStatus: "true"}},
			Data: map[string]string{"repository": "platform", "url": "https://kudod:" + urlToken + "@git.example.com/ops/platform.git", "ref": "refs/heads/main",
				"revision": revision, "lastPoll": "2026-11-25T10:00:00Z", "nextPoll": "2026-11-25T10:01:00Z", "interval": "1m",
				"lastError": "fetch https://kudod:" + urlToken + "@git.example.com/ops/platform.git: timeout"},
		},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "kudod-source-local", Namespace: "kudod-system", Labels: map[string]string{labelSourceStatus: "true"}},
			Data:       map[string]string{"repository": "local", "url": "file:///srv/git/local", "revision": revision},
		},
	}
}

type testServer struct {
	*httptest.Server
	client client.WithWatch
}

func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(fixtures()...).WithStatusSubresource(&v1alpha1.Instance{}).Build()
	opts.Client = c
	opts.Log = logr.Discard()
	if opts.HealthInterval == 0 {
		opts.HealthInterval = 50 * time.Millisecond
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &testServer{Server: ts, client: c}
}

func (ts *testServer) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func (ts *testServer) getJSON(t *testing.T, path string, v any) string {
	t.Helper()
	code, body := ts.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return body
}

func TestInstancesJSON(t *testing.T) {
	ts := newTestServer(t, Options{})
	var list InstanceList
	ts.getJSON(t, "/api/instances", &list)
	if len(list.Instances) != 2 {
		t.Fatalf("%d instances, want 2: %+v", len(list.Instances), list.Instances)
	}
	var web, db InstanceRow
	for _, r := range list.Instances {
		switch r.Name {
		case "web":
			web = r
		case "db":
			db = r
		}
	}
	want := InstanceRow{Namespace: "demo", Name: "web", Repository: "platform", Operator: "webapp", Version: "1.0.0", Plan: "update", Status: "IN_PROGRESS", Running: true,
		Revision: revision, ShortRevision: "0123456", RevisionURL: "https://git.example.com/ops/platform/commit/" + revision}
	web.Created = nil
	if web != want {
		t.Errorf("web row:\n got %+v\nwant %+v", web, want)
	}
	if db.Status != "FATAL_ERROR" || db.Running || db.RevisionURL != "" || db.Message != "step main/app failed" {
		t.Errorf("db row: %+v", db)
	}
}

func TestInstancesJSONOfOneNamespace(t *testing.T) {
	ts := newTestServer(t, Options{Namespace: "data"})
	var list InstanceList
	ts.getJSON(t, "/api/instances", &list)
	if len(list.Instances) != 1 || list.Instances[0].Name != "db" {
		t.Fatalf("with Namespace data: %+v", list.Instances)
	}
}

func find[T any](items []T, match func(T) bool) *T {
	for i := range items {
		if match(items[i]) {
			return &items[i]
		}
	}
	return nil
}

func TestInstanceJSON(t *testing.T) {
	ts := newTestServer(t, Options{CommandFlags: []string{"--context", "prod"}, HasCommand: func(n string) bool { return n != "retry" }})
	var d InstanceDetail
	ts.getJSON(t, "/api/instances/demo/web", &d)

	if d.CurrentPlan != "update" || d.AppVersion != "1.27.0" || d.Path != "instances/demo/web.yaml" || d.Parent == nil || *d.Parent != (InstanceKey{Namespace: "demo", Name: "site"}) {
		t.Errorf("header: current %q app %q path %q parent %v", d.CurrentPlan, d.AppVersion, d.Path, d.Parent)
	}
	if got := len(d.Plans); got != 3 || d.Plans[0].Name != "backup" || d.Plans[2].Name != "update" {
		t.Fatalf("plans: %+v", d.Plans)
	}
	up := d.Plans[2]
	if !up.Active || up.Start == nil || !up.Start.Equal(t0) || up.End != nil {
		t.Errorf("update plan: active %v start %v end %v", up.Active, up.Start, up.End)
	}
	if up.Command != "kudod trigger web update -n demo --context prod" {
		t.Errorf("update's command: %q", up.Command)
	}
	at := func(p *time.Time) time.Duration {
		if p == nil {
			return -1
		}
		return p.Sub(t0)
	}
	// Serial phase config: its step starts with the plan and ends at its timestamp.
	cfg := up.Phases[0].Steps[0]
	if at(cfg.Start) != 0 || cfg.StartEstimated || at(cfg.End) != 3*time.Second || at(up.Phases[0].End) != 3*time.Second {
		t.Errorf("config step: start %v (estimated %v) end %v", at(cfg.Start), cfg.StartEstimated, at(cfg.End))
	}
	// Parallel phase rollout starts when config ended (estimated); the running step at its
	// timestamp, the finished one at the phase start.
	ro := up.Phases[1]
	app, worker := ro.Steps[0], ro.Steps[1]
	if at(ro.Start) != 3*time.Second || !ro.StartEstimated || ro.End != nil {
		t.Errorf("rollout phase: start %v estimated %v end %v", at(ro.Start), ro.StartEstimated, at(ro.End))
	}
	if at(app.Start) != 3*time.Second || app.StartEstimated || app.End != nil {
		t.Errorf("running step: start %v estimated %v end %v", at(app.Start), app.StartEstimated, at(app.End))
	}
	if at(worker.Start) != 3*time.Second || !worker.StartEstimated || at(worker.End) != 5*time.Second {
		t.Errorf("parallel finished step: start %v estimated %v end %v", at(worker.Start), worker.StartEstimated, at(worker.End))
	}
	if check := up.Phases[2].Steps[0]; check.Start != nil || check.End != nil {
		t.Errorf("pending step has timing: %+v", check.Timing)
	}
	if app.Message != "waiting for the password <sensitive>" {
		t.Errorf("step message %q: the password is not masked", app.Message)
	}
	if d.Plans[0].Start != nil || d.Plans[0].Command != "kudod trigger web backup -n demo --context prod" {
		t.Errorf("never-run plan: %+v", d.Plans[0])
	}

	// History: the running update first, then deploy.
	if len(d.History) != 2 || d.History[0].Plan != "update" || d.History[1].Plan != "deploy" || d.History[1].End == nil || d.History[0].Start == nil {
		t.Errorf("history: %+v", d.History)
	}
	if d.History[1].RevisionURL != "https://git.example.com/ops/platform/commit/fedcba9876543210fedcba9876543210fedcba98" {
		t.Errorf("history link: %q", d.History[1].RevisionURL)
	}

	wantParams := []Parameter{{Name: "API_TOKEN", Value: "<sensitive>", Sensitive: true}, {Name: "DB_PASSWORD", Value: "<sensitive>", Sensitive: true}, {Name: "GREETING", Value: "hello"}}
	if len(d.Parameters) != 3 || d.Parameters[0] != wantParams[0] || d.Parameters[1] != wantParams[1] || d.Parameters[2] != wantParams[2] {
		t.Errorf("parameters: %+v", d.Parameters)
	}

	if len(d.Schedules) != 1 || d.Schedules[0].Next == nil || at(d.Schedules[0].Next) != 16*time.Hour || d.Schedules[0].ConcurrencyPolicy != "Forbid" || d.Schedules[0].LastResult != "COMPLETE" {
		t.Errorf("schedules: %+v", d.Schedules)
	}

	health := map[string]string{}
	for _, o := range d.Objects {
		health[o.Kind+"/"+o.Name] = o.Health
	}
	for obj, want := range map[string]string{"ConfigMap/web-config": "Current", "Deployment/web": "Current", "Service/web-gone": "NotFound"} {
		if health[obj] != want {
			t.Errorf("health of %s: %q, want %q (all: %v)", obj, health[obj], want, health)
		}
	}
	if o := find(d.Objects, func(o Object) bool { return o.Name == "demo_web_Service" }); o == nil || o.Health != "Unknown" {
		t.Errorf("an unreadable inventory entry: %+v", o)
	}

	var cmds []string
	for _, c := range d.Commands {
		cmds = append(cmds, c.Text)
	}
	joined := strings.Join(cmds, "\n")
	for _, want := range []string{"kudod status web -n demo --context prod", "kudod abort web -n demo --context prod", "kudod reconcile platform --context prod"} {
		if !strings.Contains(joined, want) {
			t.Errorf("commands lack %q:\n%s", want, joined)
		}
	}
}

func TestCommandsOfAFailedPlan(t *testing.T) {
	in := fixtures()[1].(*v1alpha1.Instance)
	with := commander{}.forInstance(in)
	without := commander{has: func(n string) bool { return n != "retry" }}.forInstance(in)
	has := func(cmds []Command, text string) bool {
		return find(cmds, func(c Command) bool { return c.Text == text }) != nil
	}
	if !has(with, "kudod retry db -n data") || has(without, "kudod retry db -n data") {
		t.Errorf("retry is offered only when the binary has it:\nwith %+v\nwithout %+v", with, without)
	}
	if !has(with, "kudod trigger db deploy -n data") || has(with, "kudod abort db -n data") {
		t.Errorf("a failed, finished plan: %+v", with)
	}
	if got := (commander{flags: []string{"--kubeconfig", "/tmp/my config"}}).command("status", "x"); got != "kudod status x --kubeconfig '/tmp/my config'" {
		t.Errorf("quoting: %s", got)
	}
}

func TestSourcesJSON(t *testing.T) {
	ts := newTestServer(t, Options{})
	var list SourceList
	ts.getJSON(t, "/api/sources", &list)
	if len(list.Sources) != 2 || list.Sources[0].Repository != "local" || list.Sources[1].Repository != "platform" {
		t.Fatalf("sources: %+v", list.Sources)
	}
	p := list.Sources[1]
	if p.URL != "https://kudod@git.example.com/ops/platform.git" && p.URL != "https://git.example.com/ops/platform.git" {
		t.Errorf("url %q", p.URL)
	}
	if p.RevisionURL != "https://git.example.com/ops/platform/commit/"+revision || p.LastPoll == nil || p.NextPoll == nil || p.Interval != "1m" || !strings.Contains(p.LastError, "timeout") {
		t.Errorf("platform: %+v", p)
	}
	if l := list.Sources[0]; l.RevisionURL != "" {
		t.Errorf("a file:// repository has no commit page: %+v", l)
	}
}

// No sensitive value, in whatever field the status carries it, reaches any response.
func TestNoSensitiveValueInAnyResponse(t *testing.T) {
	ts := newTestServer(t, Options{})
	var bodies []string
	for _, path := range []string{"/", "/instances/demo/web", "/sources", "/static/app.js", "/api/info", "/api/instances", "/api/instances/demo/web", "/api/instances/data/db", "/api/sources"} {
		code, body := ts.get(t, path)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", path, code)
		}
		bodies = append(bodies, path+": "+body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, path := range []string{"/api/events/instances", "/api/events/instances/demo/web", "/api/events/sources"} {
		ev := openStream(ctx, t, ts.URL+path)
		bodies = append(bodies, path+": "+ev.next(t).data)
		if path == "/api/events/instances/demo/web" {
			bodies = append(bodies, path+": "+ev.next(t).data) // with health
		}
	}
	for _, b := range bodies {
		for _, s := range secrets {
			if strings.Contains(b, s) {
				t.Errorf("%q is in the response of %s", s, b[:strings.Index(b, ":")])
			}
		}
	}
	if !strings.Contains(strings.Join(bodies, "\n"), `"DB_PASSWORD","value":"\u003csensitive\u003e"`) {
		t.Error("the masked parameter is not in the instance's JSON")
	}
}

type sseEvent struct{ name, data string }

type sseReader struct {
	events chan sseEvent
}

func openStream(ctx context.Context, t *testing.T, url string) *sseReader {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, ct)
	}
	r := &sseReader{events: make(chan sseEvent, 100)}
	go func() {
		defer resp.Body.Close()
		defer close(r.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.name != "":
				r.events <- ev
				ev = sseEvent{}
			}
		}
	}()
	return r
}

func (r *sseReader) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-r.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return sseEvent{}
}

// The instance stream sends the instance, then each change as the watch reports it.
func TestInstanceStreamFollowsTheWatch(t *testing.T) {
	ts := newTestServer(t, Options{HealthInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := openStream(ctx, t, ts.URL+"/api/events/instances/demo/web")
	var st InstanceState
	for _, want := range []string{"IN_PROGRESS", "IN_PROGRESS"} { // without, then with health
		e := ev.next(t)
		if err := json.Unmarshal([]byte(e.data), &st); err != nil || e.name != "instance" || st.Instance == nil || st.Instance.Status != want {
			t.Fatalf("event %s %.200s: %v", e.name, e.data, err)
		}
	}
	if h := st.Instance.Objects[0].Health; h == "" {
		t.Errorf("the second event has no health: %+v", st.Instance.Objects)
	}

	// The plan completes.
	in := &v1alpha1.Instance{}
	if err := ts.client.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "web"}, in); err != nil {
		t.Fatal(err)
	}
	in.Status.ActivePlan = nil
	in.Status.LastPlan.Status, in.Status.LastPlan.FinishTime = v1alpha1.StatusComplete, mt(9*time.Second)
	up := &in.Status.Plans[1]
	up.Status = v1alpha1.StatusComplete
	for i := range up.Phases {
		up.Phases[i].Status = v1alpha1.StatusComplete
		for j := range up.Phases[i].Steps {
			up.Phases[i].Steps[j].Status, up.Phases[i].Steps[j].LastUpdated, up.Phases[i].Steps[j].Message = v1alpha1.StatusComplete, mt(8*time.Second), ""
		}
	}
	start := time.Now()
	if err := ts.client.Status().Update(ctx, in); err != nil {
		t.Fatal(err)
	}
	e := ev.next(t)
	st = InstanceState{}
	if err := json.Unmarshal([]byte(e.data), &st); err != nil || st.Instance == nil {
		t.Fatalf("%v: %s", err, e.data)
	}
	if st.Instance.Status != "COMPLETE" || st.Instance.Running || time.Since(start) > time.Second {
		t.Errorf("after the plan completed (%s): %+v", time.Since(start), st.Instance.InstanceRow)
	}
	if p := st.Instance.Plans[2]; p.End == nil || p.End.Sub(t0) != 9*time.Second {
		t.Errorf("completed plan's end: %v", p.End)
	}

	// Deleted: the page says so.
	if err := ts.client.Delete(ctx, in); err != nil {
		t.Fatal(err)
	}
	e = ev.next(t)
	st = InstanceState{}
	if err := json.Unmarshal([]byte(e.data), &st); err != nil || !st.Missing || st.Instance != nil {
		t.Errorf("after the delete: %s", e.data)
	}
}

func TestInstancesStreamSendsChanges(t *testing.T) {
	ts := newTestServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := openStream(ctx, t, ts.URL+"/api/events/instances")
	var snap InstanceList
	if e := ev.next(t); e.name != "snapshot" || json.Unmarshal([]byte(e.data), &snap) != nil || len(snap.Instances) != 2 {
		t.Fatalf("first event %s: %s", e.name, e.data)
	}
	time.Sleep(200 * time.Millisecond) // the fake client's watch starts when it is called, not at the list's resourceVersion
	in := &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Name: "new", Namespace: "demo"}, Spec: v1alpha1.InstanceSpec{Operator: v1alpha1.OperatorRef{Name: "webapp"}}}
	if err := ts.client.Create(ctx, in); err != nil {
		t.Fatal(err)
	}
	var r InstanceRow
	if e := ev.next(t); e.name != "upsert" || json.Unmarshal([]byte(e.data), &r) != nil || r.Name != "new" {
		t.Fatalf("after a create: %s %s", e.name, e.data)
	}
	if err := ts.client.Delete(ctx, in); err != nil {
		t.Fatal(err)
	}
	var k InstanceKey
	if e := ev.next(t); e.name != "delete" || json.Unmarshal([]byte(e.data), &k) != nil || k != (InstanceKey{Namespace: "demo", Name: "new"}) {
		t.Fatalf("after a delete: %s %s", e.name, e.data)
	}
}

func TestSourcesStream(t *testing.T) {
	ts := newTestServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := openStream(ctx, t, ts.URL+"/api/events/sources")
	var list SourceList
	if e := ev.next(t); e.name != "sources" || json.Unmarshal([]byte(e.data), &list) != nil || len(list.Sources) != 2 {
		t.Fatalf("first event %s: %s", e.name, e.data)
	}
	time.Sleep(200 * time.Millisecond) // as above
	cm := &corev1.ConfigMap{}
	if err := ts.client.Get(ctx, client.ObjectKey{Namespace: "kudod-system", Name: "kudod-source-local"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["lastError"] = "fetch failed"
	if err := ts.client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if e := ev.next(t); json.Unmarshal([]byte(e.data), &list) != nil || list.Sources[0].LastError != "fetch failed" {
		t.Fatalf("after an update: %s", e.data)
	}
}

func TestMissingInstance(t *testing.T) {
	ts := newTestServer(t, Options{})
	if code, body := ts.get(t, "/api/instances/demo/nope"); code != http.StatusNotFound || !strings.Contains(body, "not found") {
		t.Errorf("GET a missing instance: %d %s", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := openStream(ctx, t, ts.URL+"/api/events/instances/demo/nope")
	if e := ev.next(t); e.data != `{"missing":true}` {
		t.Errorf("stream of a missing instance: %s", e.data)
	}
}

// Only requests for the loopback interface are answered, and only reads.
func TestServesOnlyLoopbackReads(t *testing.T) {
	ts := newTestServer(t, Options{})
	for host, want := range map[string]int{"evil.example:8090": http.StatusMisdirectedRequest, "localhost:8090": http.StatusOK, "127.0.0.1:8090": http.StatusOK, "[::1]:8090": http.StatusOK, "10.1.2.3": http.StatusMisdirectedRequest} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/info", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	resp, err := http.Post(ts.URL+"/api/instances", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	code, body := ts.get(t, "/instances/demo/web")
	if code != http.StatusOK || !strings.Contains(body, "/static/app.js") {
		t.Errorf("the instance page: %d %.100s", code, body)
	}
}

// A step that records its start and objects (as the engine does) is drawn from them: no
// estimated start, and its objects with the health read for the instance's objects.
func TestStepsWithRecordedStartAndObjects(t *testing.T) {
	ts := newTestServer(t, Options{})
	in := &v1alpha1.Instance{}
	if err := ts.client.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "web"}, in); err != nil {
		t.Fatal(err)
	}
	up := in.Status.Plan("update")
	app := &up.Phases[1].Steps[0]
	app.StartTime = mt(2 * time.Second)
	app.Objects = []v1alpha1.ObjectRef{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "demo", Name: "web"}}
	up.Phases[1].Steps[1].StartTime = mt(4 * time.Second)
	if err := ts.client.Status().Update(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var d InstanceDetail
	ts.getJSON(t, "/api/instances/demo/web", &d)
	rollout := d.Plans[2].Phases[1]
	st := rollout.Steps[0]
	if st.Start == nil || st.Start.Sub(t0) != 2*time.Second || st.StartEstimated {
		t.Errorf("running step: start %v estimated %v", st.Start, st.StartEstimated)
	}
	if w := rollout.Steps[1]; w.Start == nil || w.Start.Sub(t0) != 4*time.Second || w.StartEstimated || w.End == nil || w.End.Sub(t0) != 5*time.Second {
		t.Errorf("complete step: start %v estimated %v end %v", w.Start, w.StartEstimated, w.End)
	}
	if len(st.Objects) != 1 || st.Objects[0].Name != "web" || st.Objects[0].Health != "Current" {
		t.Errorf("step objects: %+v", st.Objects)
	}
}

// The history lists what status.history keeps, newest first, then runs it does not hold
// (the one running now), once each.
func TestHistoryFromStatusHistory(t *testing.T) {
	ts := newTestServer(t, Options{})
	in := &v1alpha1.Instance{}
	if err := ts.client.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "web"}, in); err != nil {
		t.Fatal(err)
	}
	in.Status.History = []v1alpha1.HistoryEntry{
		{Plan: "deploy", UID: "d1", Trigger: v1alpha1.TriggerGit, Revision: revision, StartTime: *mt(-31 * time.Minute), FinishTime: *mt(-30 * time.Minute), Status: v1alpha1.StatusComplete, Outcome: v1alpha1.OutcomeCompleted},
		{Plan: "backup", UID: "b1", Trigger: v1alpha1.TriggerSchedule, Schedule: "nightly", StartTime: *mt(-9 * time.Minute), FinishTime: *mt(-8 * time.Minute), Status: v1alpha1.StatusFatalError, Outcome: v1alpha1.OutcomeFailed, Message: "dump failed: " + secretPassword},
	}
	if err := ts.client.Status().Update(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var d InstanceDetail
	body := ts.getJSON(t, "/api/instances/demo/web", &d)
	var got []string
	for _, e := range d.History {
		got = append(got, e.Plan+"/"+e.UID+"/"+e.Outcome)
	}
	if fmt.Sprint(got) != "[update/u2/ backup/b1/failed deploy/d1/completed]" {
		t.Errorf("history: %v", got)
	}
	if strings.Contains(body, secretPassword) {
		t.Error("a sensitive value reached the history")
	}
}
