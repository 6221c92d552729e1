package ui

import (
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// What the server sends to the browser. Every type here is built from an Instance by the
// functions below and never by encoding the Instance itself: the spec holds parameter values,
// and only what passes a masker reaches the page (docs/ui.md).

// InstanceRow is one line of the Instances page, as `kudod status -A` prints it.
type InstanceRow struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Repository string `json:"repository,omitempty"`
	Operator   string `json:"operator"`
	Version    string `json:"version,omitempty"`
	Plan       string `json:"plan,omitempty"`
	Status     string `json:"status,omitempty"`
	// Running is set while a plan runs (status.activePlan).
	Running   bool   `json:"running,omitempty"`
	Suspended bool   `json:"suspended,omitempty"`
	Message   string `json:"message,omitempty"`
	// Revision is the commit the last completed git plan applied, else the one the spec was read from.
	Revision      string     `json:"revision,omitempty"`
	ShortRevision string     `json:"shortRevision,omitempty"`
	RevisionURL   string     `json:"revisionURL,omitempty"`
	Created       *time.Time `json:"created,omitempty"`
}

// InstanceDetail is everything the instance page shows.
type InstanceDetail struct {
	InstanceRow
	AppVersion  string `json:"appVersion,omitempty"`
	Path        string `json:"path,omitempty"`
	PackagePath string `json:"packagePath,omitempty"`
	// Parent is the instance whose KudoOperator task made this one.
	Parent     *InstanceKey `json:"parent,omitempty"`
	Conditions []Condition  `json:"conditions"`
	// CurrentPlan is the plan the page opens on: the running one, else the last that ran.
	CurrentPlan string      `json:"currentPlan,omitempty"`
	Plans       []Plan      `json:"plans"`
	History     []Execution `json:"history"`
	Parameters  []Parameter `json:"parameters"`
	Schedules   []Schedule  `json:"schedules"`
	// Objects are the instance's objects (its inventory) with their live health.
	Objects []Object `json:"objects"`
	// ObjectsNote says why some objects carry no health (too many to read, no permission).
	ObjectsNote string    `json:"objectsNote,omitempty"`
	Commands    []Command `json:"commands"`
}

// Condition is one of the Instance's conditions.
type Condition struct {
	Type    string     `json:"type"`
	Status  string     `json:"status"`
	Reason  string     `json:"reason,omitempty"`
	Message string     `json:"message,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
}

// Plan is the status tree of one plan, with the timing the page draws on a time axis.
type Plan struct {
	Name        string   `json:"name"`
	Strategy    string   `json:"strategy,omitempty"`
	Status      string   `json:"status"`
	Message     string   `json:"message,omitempty"`
	UID         string   `json:"uid,omitempty"`
	Trigger     string   `json:"trigger,omitempty"`
	Schedule    string   `json:"schedule,omitempty"`
	Revision    string   `json:"revision,omitempty"`
	RevisionURL string   `json:"revisionURL,omitempty"`
	Reasons     []string `json:"reasons,omitempty"`
	Active      bool     `json:"active,omitempty"`
	Timing
	Phases []Phase `json:"phases"`
	// Command runs this plan once.
	Command string `json:"command,omitempty"`
}

// Phase is one phase of a plan.
type Phase struct {
	Name     string `json:"name"`
	Strategy string `json:"strategy,omitempty"`
	Status   string `json:"status"`
	Message  string `json:"message,omitempty"`
	Timing
	Steps []Step `json:"steps"`
}

// Step is one step of a phase. Objects stays empty until the status records each step's
// objects; the page then lists them under the step instead of only in Objects.
type Step struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	Timing
	Objects []Object `json:"objects,omitempty"`
}

// Timing places a plan, phase or step on the time axis. Start is nil when nothing recorded
// says when it began; StartEstimated marks a start derived from what finished before it (the
// status records only when each step last changed, see planTiming); End is nil while it runs.
type Timing struct {
	Start          *time.Time `json:"start,omitempty"`
	End            *time.Time `json:"end,omitempty"`
	StartEstimated bool       `json:"startEstimated,omitempty"`
	LastUpdated    *time.Time `json:"lastUpdated,omitempty"`
}

// Execution is one run of a plan in the history.
type Execution struct {
	Plan        string     `json:"plan"`
	UID         string     `json:"uid,omitempty"`
	Trigger     string     `json:"trigger,omitempty"`
	Revision    string     `json:"revision,omitempty"`
	RevisionURL string     `json:"revisionURL,omitempty"`
	Status      string     `json:"status"`
	Message     string     `json:"message,omitempty"`
	Start       *time.Time `json:"start,omitempty"`
	End         *time.Time `json:"end,omitempty"`
	// Updated is when the run was last recorded: its end once it ended.
	Updated *time.Time `json:"updated,omitempty"`
	// Outcome, User and Schedule come from status.history (docs/recovery.md, History).
	Outcome  string `json:"outcome,omitempty"`
	User     string `json:"user,omitempty"`
	Schedule string `json:"schedule,omitempty"`
}

// Parameter is a parameter the instance file sets; Value is masked when Sensitive.
type Parameter struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

// Schedule is a schedule of the instance with its last and next run.
type Schedule struct {
	Name              string     `json:"name"`
	Plan              string     `json:"plan"`
	Cron              string     `json:"cron"`
	TimeZone          string     `json:"timeZone,omitempty"`
	ConcurrencyPolicy string     `json:"concurrencyPolicy,omitempty"`
	Suspended         bool       `json:"suspended,omitempty"`
	Next              *time.Time `json:"next,omitempty"`
	Last              *time.Time `json:"last,omitempty"`
	LastResult        string     `json:"lastResult,omitempty"`
	LastSkipped       *time.Time `json:"lastSkipped,omitempty"`
	LastSkipReason    string     `json:"lastSkipReason,omitempty"`
}

// Object is one object of an instance with its health: kstatus's status (Current,
// InProgress, Failed, Terminating, NotFound, Unknown) and message.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Health     string `json:"health,omitempty"`
	Message    string `json:"message,omitempty"`
}

// Command is a `kudod` command the page offers to copy: actions stay on the command line.
type Command struct {
	Label string `json:"label"`
	Text  string `json:"text"`
}

// masker removes sensitive parameter values from text. Parameter values are masked by name
// (manifests.IsSensitive); values of three characters or more are also cut out of every
// free text the page shows (messages, reasons), as pull-request previews do, since a message
// may quote a value.
type masker struct{ values []string }

func newMasker(in *v1alpha1.Instance) masker {
	var m masker
	add := func(params map[string]string) {
		for k, v := range params {
			if sensitive(k) && len(v) >= 3 {
				m.values = append(m.values, v)
			}
		}
	}
	add(in.Spec.Parameters)
	if in.Status.Applied != nil {
		add(in.Status.Applied.Parameters)
	}
	// Longest first, so a value containing another is replaced whole.
	sort.Slice(m.values, func(i, j int) bool { return len(m.values[i]) > len(m.values[j]) })
	return m
}

func (m masker) text(s string) string {
	for _, v := range m.values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, manifests.MaskedValue)
		}
	}
	return s
}

func (m masker) texts(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = m.text(s)
	}
	return out
}

// sensitive reports whether a parameter's value must never reach the browser. Today that is
// decided by name alone; a params.yaml `sensitive: true` recorded in the status would join here.
func sensitive(name string) bool { return manifests.IsSensitive(name) }

func timePtr(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func shortSHA(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}

// repositoryOf is the configured repository an Instance comes from.
func repositoryOf(in *v1alpha1.Instance) string {
	if r := in.Labels[v1alpha1.LabelRepository]; r != "" {
		return r
	}
	return in.Spec.Source.Repository
}

// currentPlanName is the running plan, or else the last one (KUDO's Active-Plan).
func currentPlanName(in *v1alpha1.Instance) string {
	switch {
	case in.Status.ActivePlan != nil:
		return in.Status.ActivePlan.Name
	case in.Status.LastPlan != nil:
		return in.Status.LastPlan.Name
	}
	return ""
}

// row builds an instance's line of the Instances page.
func row(in *v1alpha1.Instance, links commitLinker) InstanceRow {
	m := newMasker(in)
	r := InstanceRow{
		Namespace: in.Namespace, Name: in.Name, Repository: repositoryOf(in),
		Operator: in.Spec.Operator.Name, Version: in.Spec.Operator.Version,
		Suspended: in.Spec.Suspend, Running: in.Status.ActivePlan != nil,
		Revision: in.Spec.Source.Revision, Created: timePtr(&in.CreationTimestamp),
	}
	if a := in.Status.Applied; a != nil && a.Revision != "" {
		r.Revision = a.Revision
	}
	r.ShortRevision = shortSHA(r.Revision)
	r.RevisionURL = links.commitURL(r.Repository, r.Revision)
	if lp := in.Status.LastPlan; lp != nil {
		r.Plan, r.Status, r.Message = lp.Name, string(lp.Status), m.text(lp.Message)
	}
	if ap := in.Status.ActivePlan; ap != nil && ap.Name != r.Plan {
		// The active plan has not written its summary yet.
		r.Plan, r.Status, r.Message = ap.Name, string(v1alpha1.StatusInProgress), ""
	}
	return r
}

// detail builds the instance page's data; objects are filled in by the caller, which reads
// their health from the cluster.
func detail(in *v1alpha1.Instance, links commitLinker, cmds commander) InstanceDetail {
	m := newMasker(in)
	d := InstanceDetail{
		InstanceRow: row(in, links),
		AppVersion:  in.Spec.Operator.AppVersion,
		Path:        in.Spec.Source.Path,
		PackagePath: in.Spec.Source.PackagePath,
		CurrentPlan: currentPlanName(in),
		Conditions:  []Condition{},
		Plans:       plans(in, m, links, cmds),
		History:     history(in, m, links),
		Parameters:  parameters(in),
		Schedules:   schedules(in),
		Objects:     []Object{},
		Commands:    cmds.forInstance(in),
	}
	if ns, name, ok := strings.Cut(in.Labels[v1alpha1.LabelParent], "."); ok && ns != "" && name != "" {
		d.Parent = &InstanceKey{Namespace: ns, Name: name}
	}
	if a := in.Status.Applied; a != nil && a.AppVersion != "" && d.AppVersion == "" {
		d.AppVersion = a.AppVersion
	}
	for _, c := range in.Status.Conditions {
		d.Conditions = append(d.Conditions, Condition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: m.text(c.Message), Since: timePtr(&c.LastTransitionTime)})
	}
	return d
}

// plans is every plan of the package, sorted by name, each with its timing.
func plans(in *v1alpha1.Instance, m masker, links commitLinker, cmds commander) []Plan {
	out := make([]Plan, 0, len(in.Status.Plans))
	repo := repositoryOf(in)
	for i := range in.Status.Plans {
		ps := &in.Status.Plans[i]
		p := Plan{
			Name: ps.Name, Strategy: ps.Strategy, Status: string(ps.Status), Message: m.text(ps.Message),
			UID: ps.UID, Trigger: string(ps.Trigger), Revision: ps.Revision, RevisionURL: links.commitURL(repo, ps.Revision),
			Reasons: m.texts(ps.Reasons), Phases: []Phase{}, Command: cmds.trigger(in, ps.Name),
		}
		if ap := in.Status.ActivePlan; ap != nil && ap.Name == ps.Name && (ap.UID == ps.UID || ps.UID == "") {
			p.Active, p.Schedule = true, ap.Schedule
		}
		for _, ph := range ps.Phases {
			phase := Phase{Name: ph.Name, Strategy: ph.Strategy, Status: string(ph.Status), Message: m.text(ph.Message), Steps: []Step{}}
			for _, st := range ph.Steps {
				step := Step{Name: st.Name, Status: string(st.Status), Message: m.text(st.Message)}
				for _, o := range st.Objects {
					step.Objects = append(step.Objects, Object{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name})
				}
				phase.Steps = append(phase.Steps, step)
			}
			p.Phases = append(p.Phases, phase)
		}
		planTiming(in, ps, &p)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// runStart is when the run recorded in ps started, when the status still says: the active
// plan's and the last plan's summaries carry a start time, older runs keep none.
func runStart(in *v1alpha1.Instance, ps *v1alpha1.PlanStatus) (start, finish *time.Time) {
	if ap := in.Status.ActivePlan; ap != nil && ap.Name == ps.Name && ap.UID == ps.UID {
		start = timePtr(&ap.StartTime)
	}
	if lp := in.Status.LastPlan; lp != nil && lp.Name == ps.Name && lp.UID == ps.UID {
		if start == nil {
			start = timePtr(lp.StartTime)
		}
		if lp.Status.IsTerminal() {
			finish = timePtr(lp.FinishTime)
		}
	}
	return start, finish
}

// planTiming places a plan's phases and steps on a time axis from what the status records
// today: the run's start (active/last plan summary) and each step's lastUpdatedTimestamp,
// which the engine sets when the step starts (IN_PROGRESS) and again when it ends. A running
// step therefore starts at its timestamp; an ended step ends at it and, in a serial phase,
// started when the step before it ended (in a parallel phase, when the phase started). Those
// derived starts are marked estimated.
func planTiming(in *v1alpha1.Instance, ps *v1alpha1.PlanStatus, p *Plan) {
	p.LastUpdated = timePtr(ps.LastUpdated)
	if ps.Status == v1alpha1.StatusNeverRun {
		return
	}
	start, finish := runStart(in, ps)
	p.Start = start
	if ps.Status.IsTerminal() {
		p.End = finish
		if p.End == nil {
			p.End = p.LastUpdated
		}
	}
	// cursor is when the next serial phase starts; estimated says it was derived from an end.
	cursor, estimated := start, false
	for i := range p.Phases {
		ph := &p.Phases[i]
		src := &ps.Phases[i]
		ph.Start, ph.StartEstimated = cursor, estimated && cursor != nil
		if p.Strategy == manifests.StrategyParallel {
			ph.Start, ph.StartEstimated = start, false
		}
		stepCursor, stepEstimated := ph.Start, ph.StartEstimated
		var phaseEnd *time.Time
		for j := range ph.Steps {
			st := &ph.Steps[j]
			stepStart, startEstimated := stepCursor, stepEstimated && stepCursor != nil
			if ph.Strategy == manifests.StrategyParallel {
				stepStart, startEstimated = ph.Start, ph.StartEstimated
			}
			st.LastUpdated = timePtr(src.Steps[j].LastUpdated)
			if rec := src.Steps[j].StartTime; rec != nil {
				// Recorded by the engine when the step started: nothing to estimate.
				stepStart, startEstimated = timePtr(rec), false
			}
			switch v1alpha1.ExecutionStatus(st.Status) {
			case v1alpha1.StatusInProgress:
				st.Start = st.LastUpdated
				if src.Steps[j].StartTime != nil || st.Start == nil {
					st.Start, st.StartEstimated = stepStart, startEstimated
				}
			case v1alpha1.StatusError:
				// Retrying: its timestamp is the last error, not its start.
				st.Start, st.StartEstimated = stepStart, startEstimated
			case v1alpha1.StatusComplete, v1alpha1.StatusFatalError:
				st.End = st.LastUpdated
				st.Start, st.StartEstimated = stepStart, startEstimated
				if st.Start != nil && st.End != nil && st.End.Before(*st.Start) {
					// A step skipped on resume, or a clock between writes: no negative bars.
					st.Start = st.End
				}
			}
			if st.End != nil {
				stepCursor, stepEstimated = st.End, true
				if phaseEnd == nil || st.End.After(*phaseEnd) {
					phaseEnd = st.End
				}
			}
		}
		if v1alpha1.ExecutionStatus(ph.Status).IsTerminal() {
			ph.End = phaseEnd
		}
		if ph.End != nil {
			cursor, estimated = ph.End, true
		}
	}
}

// history is the instance's executions, newest first: today the last run of each plan
// (status.plans) with the start and end the last plan's summary adds. This is the one place
// that reads runs, so a status.history list joins here.
func history(in *v1alpha1.Instance, m masker, links commitLinker) []Execution {
	out := []Execution{}
	repo := repositoryOf(in)
	// Every execution that ended, as the daemon keeps them (the last 20 by default).
	for _, h := range in.Status.History {
		out = append(out, Execution{
			Plan: h.Plan, UID: h.UID, Trigger: string(h.Trigger), Revision: h.Revision,
			RevisionURL: links.commitURL(repo, h.Revision), Status: string(h.Status), Message: m.text(h.Message),
			Start: timePtr(&h.StartTime), End: timePtr(&h.FinishTime), Updated: timePtr(&h.FinishTime),
			Outcome: string(h.Outcome), User: h.User, Schedule: h.Schedule,
		})
	}
	// The run of each plan the history does not hold: one running now, or older than it.
	for i := range in.Status.Plans {
		ps := &in.Status.Plans[i]
		if ps.Status == v1alpha1.StatusNeverRun || ps.Status == "" {
			continue
		}
		if hasRun(out, ps.Name, ps.UID) {
			continue
		}
		start, finish := runStart(in, ps)
		e := Execution{
			Plan: ps.Name, UID: ps.UID, Trigger: string(ps.Trigger), Revision: ps.Revision,
			RevisionURL: links.commitURL(repo, ps.Revision), Status: string(ps.Status), Message: m.text(ps.Message),
			Start: start, End: finish, Updated: timePtr(ps.LastUpdated),
		}
		if e.End == nil && ps.Status.IsTerminal() {
			e.End = e.Updated
		}
		out = append(out, e)
	}
	// A run of the last plan that has not written its tree yet.
	if lp := in.Status.LastPlan; lp != nil && !hasRun(out, lp.Name, lp.UID) {
		e := Execution{
			Plan: lp.Name, UID: lp.UID, Trigger: string(lp.Trigger), Revision: lp.Revision,
			RevisionURL: links.commitURL(repo, lp.Revision), Status: string(lp.Status), Message: m.text(lp.Message),
			Start: timePtr(lp.StartTime), End: timePtr(lp.FinishTime),
		}
		e.Updated = e.End
		if e.Updated == nil {
			e.Updated = e.Start
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.End == nil) != (b.End == nil) {
			return a.End == nil // running first
		}
		ta, tb := a.Updated, b.Updated
		if ta == nil || tb == nil {
			return ta != nil
		}
		return ta.After(*tb)
	})
	return out
}

func hasRun(runs []Execution, plan, uid string) bool {
	for _, r := range runs {
		if r.Plan == plan && (uid == "" || r.UID == uid) {
			return true
		}
	}
	return false
}

// parameters are the values the instance file sets, sorted, sensitive ones masked: the mask
// replaces the value here, so it never leaves the process.
func parameters(in *v1alpha1.Instance) []Parameter {
	out := make([]Parameter, 0, len(in.Spec.Parameters))
	for k, v := range in.Spec.Parameters {
		// A sensitive value is stored as a digest (docs/secrets.md); a name that looks like a
		// secret is masked whatever it holds.
		if manifests.IsSensitiveDigest(v) || sensitive(k) {
			out = append(out, Parameter{Name: k, Value: manifests.SensitiveValue, Sensitive: true})
			continue
		}
		out = append(out, Parameter{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// schedules joins the spec's schedules with their status.
func schedules(in *v1alpha1.Instance) []Schedule {
	out := make([]Schedule, 0, len(in.Spec.Schedules))
	status := map[string]*v1alpha1.ScheduleStatus{}
	for i := range in.Status.Schedules {
		status[in.Status.Schedules[i].Name] = &in.Status.Schedules[i]
	}
	for _, s := range in.Spec.Schedules {
		sc := Schedule{Name: s.Name, Plan: s.Plan, Cron: s.Cron, TimeZone: s.TimeZone, ConcurrencyPolicy: string(s.ConcurrencyPolicy), Suspended: s.Suspend || in.Spec.Suspend}
		if sc.ConcurrencyPolicy == "" {
			sc.ConcurrencyPolicy = string(v1alpha1.ForbidConcurrent)
		}
		if st := status[s.Name]; st != nil {
			sc.Next, sc.Last, sc.LastResult = timePtr(st.NextScheduleTime), timePtr(st.LastScheduleTime), st.LastResult
			sc.LastSkipped, sc.LastSkipReason = timePtr(st.LastSkipped), st.LastSkipReason
		}
		if sc.Suspended {
			sc.Next = nil
		}
		out = append(out, sc)
	}
	return out
}
