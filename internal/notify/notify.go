// Package notify tells people how plans ended (docs/recovery.md, Notifications): each
// notification of kudod.yaml — a generic webhook (signed JSON), a Slack or a Microsoft Teams
// incoming webhook — receives the plan outcomes its filters select. Notify never blocks: it
// queues a delivery per matching notification on the bounded queue commit statuses use
// (internal/outbox), and forge's Poster sends it with the retries and rate-limit waits of the
// forge clients. URLs and signing keys are read from their files at each delivery (mounted
// Secrets, rotated without a restart) and never appear in a log or an error. Events carry no
// sensitive value: plan-scoped parameters arrive masked.
//
// Each type is one file (webhook.go, slack.go, teams.go) implementing encoder; types lists
// them.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/internal/outbox"
)

// Event is one plan that ended. As JSON it is the body of a generic webhook
// (docs/recovery.md, Notifications): scripts depend on every field.
type Event struct {
	// Kind is "PlanEnded".
	Kind       string      `json:"kind"`
	Repository string      `json:"repository"`
	Instance   InstanceRef `json:"instance"`
	Operator   OperatorRef `json:"operator"`
	Plan       string      `json:"plan"`
	// UID identifies the execution (as in status.history).
	UID string `json:"uid"`
	// Trigger is git, schedule, manual, retry or rollback.
	Trigger  string `json:"trigger"`
	Schedule string `json:"schedule,omitempty"`
	// User asked for the plan (manual, retry, rollback).
	User string `json:"user,omitempty"`
	// RetryOf is the UID of the execution a retry repeated.
	RetryOf  string `json:"retryOf,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Outcome is completed, failed, aborted or superseded; Status is KUDO's.
	Outcome    string    `json:"outcome"`
	Status     string    `json:"status"`
	Message    string    `json:"message,omitempty"`
	FailedStep string    `json:"failedStep,omitempty"`
	StartTime  time.Time `json:"startTime"`
	FinishTime time.Time `json:"finishTime"`
	// DurationSeconds is FinishTime - StartTime.
	DurationSeconds float64 `json:"durationSeconds"`
	// Parameters are the run's plan-scoped values, sensitive ones masked.
	Parameters map[string]string `json:"parameters,omitempty"`
}

// EventKindPlanEnded is the kind of every event so far.
const EventKindPlanEnded = "PlanEnded"

// InstanceRef names an instance.
type InstanceRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// OperatorRef names a package.
type OperatorRef struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	AppVersion string `json:"appVersion,omitempty"`
}

// title is an event in a few words: "plan backup of data/db failed".
func (e Event) title() string {
	return fmt.Sprintf("plan %s of %s/%s %s", e.Plan, e.Instance.Namespace, e.Instance.Name, e.Outcome)
}

// triggerText says what started the plan: "schedule nightly", "retry by alice".
func (e Event) triggerText() string {
	s := e.Trigger
	switch {
	case e.Schedule != "" && e.Trigger == "schedule":
		s += " " + e.Schedule
	case e.User != "":
		s += " by " + e.User
	}
	return s
}

func (e Event) duration() time.Duration {
	return time.Duration(e.DurationSeconds * float64(time.Second)).Round(time.Second)
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Notification is one entry of kudod.yaml's notifications.
type Notification struct {
	// Name identifies the notification in logs and metrics.
	Name string
	// Type is webhook, slack or teams.
	Type string
	// URL, or URLFile (read at each delivery), is where deliveries go.
	URL, URLFile string
	// SecretFile holds the HMAC-SHA256 key that signs webhook bodies.
	SecretFile string
	// Outcomes, Plans and Triggers select the events (empty: all).
	Outcomes, Plans, Triggers []string
}

// Outcomes lists the outcomes a notification may select.
func Outcomes() []string { return []string{"completed", "failed", "aborted", "superseded"} }

// Triggers lists the triggers a notification may select.
func Triggers() []string { return []string{"git", "schedule", "manual", "retry", "rollback"} }

// KnownOutcome reports whether s is an outcome a notification may select (internal/config).
func KnownOutcome(s string) bool { return slices.Contains(Outcomes(), s) }

// KnownTrigger reports whether s is a trigger a notification may select.
func KnownTrigger(s string) bool { return slices.Contains(Triggers(), s) }

// matches reports whether a notification selects an event.
func (n Notification) matches(e Event) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	return in(n.Outcomes, e.Outcome) && in(n.Plans, e.Plan) && in(n.Triggers, e.Trigger)
}

// encoder turns an event into the body and headers of one type's request; key is the
// notification's signing key (nil without secretFile).
type encoder interface {
	encode(e Event, delivery string, key []byte) (body []byte, header http.Header, err error)
	// signs reports whether the type takes a secretFile.
	signs() bool
}

// types are the notification types, by the name kudod.yaml gives them.
func types() map[string]encoder {
	return map[string]encoder{"webhook": webhook{}, "slack": slack{}, "teams": teams{}}
}

// Types lists the notification types.
func Types() []string {
	var names []string
	for n := range types() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// KnownType reports whether t is a notification type; signs whether it takes a secretFile.
func KnownType(t string) (known, signs bool) {
	enc, ok := types()[t]
	return ok, ok && enc.signs()
}

// Options configure a Notifier.
type Options struct {
	Notifications []Notification
	// Poster sends deliveries (forge.NewPoster when nil).
	Poster *forge.Poster
	// QueueSize bounds the deliveries waiting (outbox.DefaultSize when zero).
	QueueSize int
	// DrainTimeout bounds the deliveries at shutdown (outbox.DefaultDrainTimeout when zero).
	DrainTimeout time.Duration
	// Registerer gets the metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     logr.Logger
}

// Notifier delivers plan outcomes to the configured notifications.
type Notifier struct {
	targets map[string]target
	order   []string
	poster  *forge.Poster
	queue   *outbox.Queue[delivery]
	log     logr.Logger
	metrics notifyMetrics
}

type target struct {
	Notification
	enc encoder
}

// delivery is one event for one notification; id is sent along (X-Kudod-Delivery) and stays
// the same across retries.
type delivery struct {
	target string
	id     string
	event  Event
}

type notifyMetrics struct {
	sent, failures, dropped *prometheus.CounterVec
	depth                   prometheus.Gauge
}

// New returns a notifier and registers its metrics: kudod_notifications_sent_total,
// kudod_notification_failures_total and kudod_notifications_dropped_total by notification,
// and kudod_notification_queue_depth.
func New(opts Options) (*Notifier, error) {
	if opts.Poster == nil {
		opts.Poster = forge.NewPoster(forge.Options{})
	}
	m := notifyMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_notifications_sent_total", Help: "Notifications the receiver accepted, by notification.",
		}, []string{"notification"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_notification_failures_total", Help: "Notifications that could not be delivered after retries, by notification.",
		}, []string{"notification"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_notifications_dropped_total", Help: "Notifications dropped undelivered: the queue was full or kudod was stopping, by notification.",
		}, []string{"notification"}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kudod_notification_queue_depth", Help: "Notifications waiting to be delivered.",
		}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{m.sent, m.failures, m.dropped, m.depth} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("registering the notification metrics: %w", err)
			}
		}
	}
	n := &Notifier{targets: map[string]target{}, poster: opts.Poster, log: opts.Logger, metrics: m}
	for _, nt := range opts.Notifications {
		enc, ok := types()[nt.Type]
		if !ok {
			return nil, fmt.Errorf("notification %s: unknown type %q (%s)", nt.Name, nt.Type, strings.Join(Types(), ", "))
		}
		if _, dup := n.targets[nt.Name]; dup {
			return nil, fmt.Errorf("notification %s is configured twice", nt.Name)
		}
		if (nt.URL == "") == (nt.URLFile == "") {
			return nil, fmt.Errorf("notification %s: set url or urlFile", nt.Name)
		}
		n.targets[nt.Name] = target{Notification: nt, enc: enc}
		n.order = append(n.order, nt.Name)
	}
	n.queue = outbox.New(n.order, outbox.Options[delivery]{
		Size:         opts.QueueSize,
		DrainTimeout: opts.DrainTimeout,
		Lane:         func(d delivery) string { return d.target },
		Deliver:      n.deliver,
		Retry:        forge.Transient,
		Dropped: func(d delivery, why string) {
			n.metrics.dropped.WithLabelValues(d.target).Inc()
			n.log.Info("notification dropped: "+why, "notification", d.target, "instance", d.event.Instance.Namespace+"/"+d.event.Instance.Name, "plan", d.event.Plan, "outcome", d.event.Outcome)
		},
		Depth: func(d int) { n.metrics.depth.Set(float64(d)) },
	})
	return n, nil
}

// Notify queues e for every notification that selects it; it never blocks.
func (n *Notifier) Notify(e Event) {
	if n == nil {
		return
	}
	if e.Kind == "" {
		e.Kind = EventKindPlanEnded
	}
	for _, name := range n.order {
		if n.targets[name].matches(e) {
			n.queue.Add(delivery{target: name, id: string(uuid.NewUUID()), event: e})
		}
	}
}

// Start delivers until ctx ends, then drains for a bounded time (manager.Runnable).
func (n *Notifier) Start(ctx context.Context) error {
	if err := n.queue.Start(ctx); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	return nil
}

// NeedLeaderElection is false: only the leader's plans notify, and a standby's queue stays
// empty; running everywhere drains a former leader's queue at once.
func (n *Notifier) NeedLeaderElection() bool { return false }

func (n *Notifier) deliver(ctx context.Context, d delivery) error {
	t := n.targets[d.target]
	log := n.log.WithValues("notification", d.target, "type", t.Type, "instance", d.event.Instance.Namespace+"/"+d.event.Instance.Name, "plan", d.event.Plan, "outcome", d.event.Outcome)
	if err := n.send(ctx, t, d); err != nil {
		n.metrics.failures.WithLabelValues(d.target).Inc()
		log.Error(err, "delivering a notification", "retry", forge.Transient(err) && ctx.Err() == nil)
		return err
	}
	n.metrics.sent.WithLabelValues(d.target).Inc()
	log.V(1).Info("notification delivered")
	return nil
}

func (n *Notifier) send(ctx context.Context, t target, d delivery) error {
	url := t.URL
	if t.URLFile != "" {
		v, err := readSecretFile(t.URLFile, "URL")
		if err != nil {
			return err
		}
		url = v
	}
	var key []byte
	if t.SecretFile != "" {
		v, err := readSecretFile(t.SecretFile, "signing key")
		if err != nil {
			return err
		}
		key = []byte(v)
	}
	body, header, err := t.enc.encode(d.event, d.id, key)
	if err != nil {
		return fmt.Errorf("encoding the notification: %w", err)
	}
	return n.poster.Post(ctx, url, body, header)
}

// readSecretFile reads a URL or key from a mounted Secret, without surrounding white space;
// errors name the file, never its content.
func readSecretFile(path, what string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the %s: %w", what, err)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", errors.New("the " + what + " file " + path + " is empty")
	}
	return v, nil
}
