package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/test/testenv"
)

// scenario sizes one benchmark run.
type scenario struct {
	// instances is N: the repository holds N instances of the 4-object operator.
	instances int
	// interval is the repository's poll interval in kudod.yaml.
	interval time.Duration
	// latencySamples is how many pushes P2 measures per path (poll, webhook).
	latencySamples int
	// idle is P3's window without commits.
	idle time.Duration
	// drift is the repository's driftInterval (0: kudod's default).
	drift time.Duration
	// planRuns is how many times P4 runs `kudod plan`.
	planRuns int
	// coldStartTimeout bounds P1.
	coldStartTimeout time.Duration
}

// fullScenario is issue 8's: 1,000 instances (4,000 objects), a 5 s interval, medians of 10
// and 5, a minute idle.
func fullScenario() scenario {
	return scenario{instances: 1000, interval: 5 * time.Second, latencySamples: 10, idle: time.Minute, planRuns: 5, coldStartTimeout: 5 * time.Minute}
}

// smokeScenario is the same run, small enough for `make test`.
func smokeScenario() scenario {
	return scenario{instances: 10, interval: time.Second, latencySamples: 3, idle: 3 * time.Second, planRuns: 3, coldStartTimeout: 2 * time.Minute}
}

// bench is one run of a scenario against the package's envtest API server.
type bench struct {
	t       testing.TB
	sc      scenario
	cluster *testenv.Cluster
	client  client.WithWatch
	// prefix makes the run's namespaces and repository name its own: runs share the API server.
	prefix     string
	refs       []instanceRef
	repo       *benchRepo
	first      string // the commit P1 deploys
	server     *gitServer
	setup      *daemonSetup
	plans      *planTracker
	res        *Results
	lastCommit string
	// lastValue is the VALUE last pushed for the instance P2 changes.
	lastValue string
	// startSeconds is P1's start → the daemon's first poll (its first ref advertisement):
	// the process, its caches' sync, the CRD; not a figure of issue 8's contract.
	startSeconds float64
}

// newBench prepares a run on the package's shared API server.
func newBench(t testing.TB, sc scenario) *bench {
	t.Helper()
	return newBenchOn(t, sc, testenv.APIServer(t))
}

// newBenchOn prepares a run on the given API server.
func newBenchOn(t testing.TB, sc scenario, cluster *testenv.Cluster) *bench {
	t.Helper()
	c, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: cluster.Scheme})
	if err != nil {
		t.Fatalf("client for %s: %v", cluster.Config.Host, err)
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix) // crypto/rand.Read never fails
	b := &bench{t: t, sc: sc, cluster: cluster, client: c, prefix: "b" + hex.EncodeToString(suffix), res: &Results{}}
	machine, err := thisMachine()
	if err != nil {
		t.Fatalf("machine: %v", err)
	}
	b.res.Machine = machine
	b.res.Instances, b.res.Objects = sc.instances, sc.instances*objectsPerInstance
	b.res.P2PollIntervalSeconds = sc.interval.Seconds()
	b.refs = layout(b.prefix, sc.instances)
	b.repo, b.first = newBenchRepo(t, b.refs)
	b.lastCommit, b.lastValue = b.first, "v0"
	b.server = b.repo.serve(t)
	repository := "bench-" + b.prefix
	b.setup = newSetup(t, []repositoryConfig{{repository, b.server.URL}}, cluster.Kubeconfig, sc.interval, sc.drift)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b.plans = trackPlans(ctx, c, repository)
	return b
}

// daemonContext is a context that ends when the daemon exits on its own or after timeout.
func daemonContext(d daemon, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeoutCause(d.exited(), timeout, fmt.Errorf("no result after %s", timeout))
	return ctx, cancel
}

// coldStart is P1: the daemon starts with nothing of the repository deployed; it returns the
// daemon once every instance's deploy plan is COMPLETE.
func (b *bench) coldStart(start func() daemon) daemon {
	t := b.t
	t.Helper()
	before, err := scrapeAPIServer(context.Background(), b.cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	meter, err := startMachineMeter()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	d := start()
	ctx, cancel := daemonContext(d, b.sc.coldStartTimeout)
	defer cancel()
	n := len(b.refs)
	created, err := b.plans.await(ctx, func(p trackedPlans) bool { return p.len() == n }, describePlans)
	if err != nil {
		t.Fatalf("P1: waiting for %d Instances to exist: %v\nkudod log:\n%s", n, err, d.logTail())
	}
	b.res.P1InstancesCreatedSeconds = created.Sub(began).Seconds()
	var half, p99 time.Time
	done, err := b.plans.await(ctx, func(p trackedPlans) bool {
		c := p.completed("deploy")
		if half.IsZero() && 2*c >= n {
			half = time.Now()
		}
		if p99.IsZero() && 100*c >= 99*n {
			p99 = time.Now()
		}
		return c == n
	}, describePlans)
	if err != nil {
		t.Fatalf("P1: waiting for %d deploy plans to be COMPLETE: %v\nkudod log:\n%s", n, err, d.logTail())
	}
	b.res.P1Seconds = done.Sub(began).Seconds()
	b.res.P1HalfCompleteSeconds, b.res.P1P99CompleteSeconds = half.Sub(began).Seconds(), p99.Sub(began).Seconds()
	if first, ok := b.server.firstPoll(); ok {
		b.startSeconds = first.Sub(began).Seconds()
	}
	if b.res.P1MachineBusy, err = meter.busy(); err != nil {
		t.Fatal(err)
	}
	b.res.P1ObjectsPerSecond = float64(b.res.Objects) / b.res.P1Seconds
	after, err := scrapeAPIServer(context.Background(), b.cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	b.res.P1APIWrites = after.writes.since(before.writes).ints()
	b.res.P1APIServerCPUSeconds = after.cpu - before.cpu
	if err := b.checkDeployed(b.refs[0], "v0"); err != nil {
		t.Fatalf("P1: %v", err)
	}
	return d
}

// checkDeployed checks that an instance's four objects exist, its ConfigMap with value.
func (b *bench) checkDeployed(ref instanceRef, value string) error {
	ctx := context.Background()
	cm := &corev1.ConfigMap{}
	if err := b.cluster.Client.Get(ctx, objectKey(ref, "-config"), cm); err != nil {
		return fmt.Errorf("the ConfigMap of %s: %w", ref, err)
	}
	if got := cm.Data["value"]; got != value {
		return fmt.Errorf("the ConfigMap of %s holds %q, want %q", ref, got, value)
	}
	others := map[client.Object]types.NamespacedName{
		&corev1.Secret{}:         objectKey(ref, "-secret"),
		&corev1.ServiceAccount{}: objectKey(ref, ""),
		&corev1.Service{}:        objectKey(ref, ""),
	}
	for obj, key := range others {
		if err := b.cluster.Client.Get(ctx, key, obj); err != nil {
			return fmt.Errorf("%T %s of %s: %w", obj, key, ref, err)
		}
	}
	return nil
}

// ceiling measures a bare client applying the same objects in fresh namespaces; it runs
// before the daemon starts.
func (b *bench) ceiling() {
	b.t.Helper()
	b.ceilingOn(b.cluster)
}

// ceilingOn measures the ceiling on cluster: b's own API server (ceiling), or one of the
// ceiling's own, so that kudod's run does not start on an API server already holding the
// ceiling's objects (the scale series: at 10,000 instances that is 40,000 objects and 10,000
// Service IPs more).
func (b *bench) ceilingOn(cluster *testenv.Cluster) {
	t := b.t
	t.Helper()
	ctx := context.Background()
	fresh := "c" + strings.TrimPrefix(b.prefix, "b")
	objs, err := renderDeploys(ctx, cluster.Client, b.repo.work, func(ns string) string { return fresh + strings.TrimPrefix(ns, b.prefix) })
	if err != nil {
		t.Fatalf("ceiling: %v", err)
	}
	if len(objs) != b.res.Objects {
		t.Fatalf("ceiling: rendered %d objects, want %d", len(objs), b.res.Objects)
	}
	before, err := scrapeAPIServer(ctx, cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	meter, err := startMachineMeter()
	if err != nil {
		t.Fatal(err)
	}
	took, err := applyCeiling(ctx, cluster.Config, cluster.Scheme, objs)
	if err != nil {
		t.Fatalf("ceiling: %v", err)
	}
	if b.res.P1CeilingMachineBusy, err = meter.busy(); err != nil {
		t.Fatal(err)
	}
	after, err := scrapeAPIServer(ctx, cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	b.res.P1CeilingAPIWrites = after.writes.since(before.writes).ints()
	b.res.P1CeilingAPIServerCPUSeconds = after.cpu - before.cpu
	b.res.P1CeilingSeconds = took.Seconds()
	b.res.P1CeilingObjectsPerSecond = float64(len(objs)) / took.Seconds()
}

// latency is P2 for one path: push a commit changing one parameter of one instance, and time
// it until that instance's update plan for the commit is COMPLETE. Over the poll path the
// pushes are spread evenly over the poll cycle (after a plan completes the next poll is about
// an interval away, so pushing at once would always measure the worst case).
func (b *bench) latency(d daemon, viaWebhook bool) ([]float64, error) {
	target := b.refs[0]
	path := "poll"
	if viaWebhook {
		path = "webhook"
	}
	var samples []float64
	for i := range b.sc.latencySamples {
		if !viaWebhook {
			time.Sleep(time.Duration(i) * b.sc.interval / time.Duration(b.sc.latencySamples))
		}
		before := b.lastCommit
		b.lastValue = fmt.Sprintf("%s-%d", path, i)
		commit := b.repo.setValue(target, b.lastValue)
		b.repo.push()
		pushed := time.Now()
		b.lastCommit = commit
		var deliveryErr error
		if viaWebhook {
			deliveryErr = deliverPush(context.Background(), b.setup, before, commit)
		}
		ctx, cancel := daemonContext(d, 3*b.sc.interval+time.Minute)
		done, err := b.plans.await(ctx, func(p trackedPlans) bool {
			last := p.last(target)
			return last.Name == "update" && last.Status == v1alpha1.StatusComplete && last.Revision == commit
		}, func(p trackedPlans) string {
			last := p.last(target)
			return fmt.Sprintf("%s: last plan %s %s at %s", target, last.Name, last.Status, last.Revision)
		})
		cancel()
		if err != nil {
			b.t.Fatalf("P2 (%s): waiting for the update plan of %s at %s: %v\nkudod log:\n%s", path, target, commit, err, d.logTail())
		}
		if deliveryErr != nil {
			// The push still landed (by polling): the next measurement starts from a settled state.
			return nil, deliveryErr
		}
		samples = append(samples, done.Sub(pushed).Seconds())
	}
	return samples, nil
}

// idle is P3: after the daemon has settled (two polls since the last plan), a window with no
// commits, measuring the daemon's CPU per poll, its memory, its API writes and git fetches.
func (b *bench) idle(pid int) {
	t := b.t
	t.Helper()
	settled := b.server.refs.Load() + 2
	deadline := time.Now().Add(5*b.sc.interval + 30*time.Second)
	for b.server.refs.Load() < settled {
		if time.Now().After(deadline) {
			t.Fatalf("P3: the daemon did not poll twice in %s", 5*b.sc.interval+30*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := b.idleCounters(pid)
	time.Sleep(b.sc.idle) // the measurement window itself
	after := b.idleCounters(pid)
	b.res.P3WindowSeconds = after.at.Sub(before.at).Seconds()
	b.res.P3Polls = after.refs - before.refs
	b.res.P3GitFetches = after.fetches - before.fetches
	writes := after.api.writes.since(before.api.writes)
	b.res.P3APIWrites = writes.total()
	b.res.P3APIWritesBy = writes.ints()
	b.res.P3CPUSeconds = (after.usage.cpu - before.usage.cpu).Seconds()
	if b.res.P3Polls == 0 {
		t.Fatalf("P3: no poll in %.1f s with a %s interval", b.res.P3WindowSeconds, b.sc.interval)
	}
	b.res.P3CPUSecondsPerPoll = b.res.P3CPUSeconds / float64(b.res.P3Polls)
	b.res.P3RSSMB = float64(after.usage.peakRSS) / (1 << 20)
	b.res.P3RSSIdleMB = float64(after.usage.rss) / (1 << 20)
}

// idleCounters are what P3 compares at the two ends of its window.
type idleCounters struct {
	at            time.Time
	usage         usage
	api           apiServerCounts
	refs, fetches int64
}

func (b *bench) idleCounters(pid int) idleCounters {
	b.t.Helper()
	c := idleCounters{at: time.Now(), refs: b.server.refs.Load(), fetches: b.server.fetches.Load()}
	var err error
	if c.usage, err = processUsage(pid); err != nil {
		b.t.Fatal(err)
	}
	if c.api, err = scrapeAPIServer(context.Background(), b.cluster.Config); err != nil {
		b.t.Fatal(err)
	}
	return c
}

// planDiff is P4: `kudod plan` between the commit P1 deployed and the last one, timed as a
// user runs it (wall clock of the process). The last commit changes one instance.
func (b *bench) planDiff(bin string) {
	t := b.t
	t.Helper()
	args := []string{"plan", "--repo", b.repo.work, "--from", b.first, "--to", b.lastCommit}
	for range b.sc.planRuns {
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		began := time.Now()
		err := cmd.Run()
		took := time.Since(began)
		if code := exitCodeOf(err); code != 1 {
			t.Fatalf("P4: kudod %s: exit code %d (%v), want 1 (plans to run)", strings.Join(args, " "), code, err)
		}
		b.res.P4SamplesSeconds = append(b.res.P4SamplesSeconds, took.Seconds())
	}
	b.res.P4Seconds = median(b.res.P4SamplesSeconds)
	// What was timed is the real diff: every instance, one update.
	var out bytes.Buffer
	cmd := exec.Command(bin, append(args, "-o", "json")...)
	cmd.Stdout = &out
	_ = cmd.Run()
	var res planner.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("P4: kudod plan -o json: %v: %s", err, out.String())
	}
	updates := 0
	for _, d := range res.Decisions {
		if d.Action == planner.ActionUpdate {
			updates++
		}
	}
	if len(res.Decisions) != len(b.refs) || updates != 1 {
		t.Fatalf("P4: kudod plan decided on %d instances with %d updates, want %d and 1", len(res.Decisions), updates, len(b.refs))
	}
}

func exitCodeOf(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	return -1
}

// version is `kudod version`'s version.
func version(bin string) string {
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		return "unknown"
	}
	var v struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(out, &v) != nil {
		return "unknown"
	}
	return v.Version
}

// objectKey names an object of the instance.
func objectKey(ref instanceRef, suffix string) types.NamespacedName {
	return types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name + suffix}
}
