package planner

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zoneinfo

	"github.com/robfig/cron/v3"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// ts parses an RFC 3339 time; "" is the zero time.
func ts(t testing.TB, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func seconds(n int64) *int64 { return &n }

func TestNextRun(t *testing.T) {
	daily2NY := v1alpha1.Schedule{Name: "backup", Plan: "backup", Cron: "0 2 * * *", TimeZone: "America/New_York"}
	berlin := func(cron string) v1alpha1.Schedule {
		return v1alpha1.Schedule{Name: "backup", Plan: "backup", Cron: cron, TimeZone: "Europe/Berlin"}
	}
	utc := func(cron string, deadline *int64) v1alpha1.Schedule {
		return v1alpha1.Schedule{Name: "backup", Plan: "backup", Cron: cron, StartingDeadlineSeconds: deadline}
	}
	suspended := utc("0 3 * * *", nil)
	suspended.Suspend = true

	tests := []struct {
		name     string
		schedule v1alpha1.Schedule
		last     string // "" = never
		since    string
		now      string

		run       bool
		scheduled string // "" = none due
		due       int
		tooMany   bool
		next      string
		reason    string // a part of the reason
	}{
		{
			name: "fires on time in New York in winter (07:00 UTC)", schedule: daily2NY,
			last: "2026-01-14T07:00:00Z", now: "2026-01-15T07:00:00.1Z",
			run: true, scheduled: "2026-01-15T07:00:00Z", due: 1, next: "2026-01-16T07:00:00Z", reason: "scheduled time 2026-01-15T02:00:00-05:00",
		},
		{
			name: "fires on time in New York in summer (06:00 UTC)", schedule: daily2NY,
			last: "2026-07-14T06:00:00Z", now: "2026-07-15T06:00:00.1Z",
			run: true, scheduled: "2026-07-15T06:00:00Z", due: 1, next: "2026-07-16T06:00:00Z",
		},
		{
			name: "not yet due in New York", schedule: daily2NY,
			last: "2026-01-14T07:00:00Z", now: "2026-01-15T06:59:59Z",
			next: "2026-01-15T07:00:00Z",
		},
		{
			name: "Berlin spring forward: 02:30 does not exist and does not run", schedule: berlin("30 2 * * *"),
			last: "2026-03-28T02:30:00+01:00", now: "2026-03-29T03:30:00+02:00",
			next: "2026-03-30T02:30:00+02:00",
		},
		{
			name: "Berlin spring forward: the next day runs as usual", schedule: berlin("30 2 * * *"),
			last: "2026-03-28T02:30:00+01:00", now: "2026-03-30T02:30:00.1+02:00",
			run: true, scheduled: "2026-03-30T02:30:00+02:00", due: 1, next: "2026-03-31T02:30:00+02:00",
		},
		{
			name: "Berlin fall back: the first 02:30 runs and the next run is the next day", schedule: berlin("30 2 * * *"),
			last: "2026-10-24T02:30:00+02:00", now: "2026-10-25T02:30:00.1+02:00",
			run: true, scheduled: "2026-10-25T02:30:00+02:00", due: 1, next: "2026-10-26T02:30:00+01:00",
		},
		{
			name: "Berlin fall back: the repeated 02:30 does not run", schedule: berlin("30 2 * * *"),
			last: "2026-10-25T02:30:00+02:00", now: "2026-10-25T02:30:00.1+01:00",
			next: "2026-10-26T02:30:00+01:00",
		},
		{
			name: "Berlin fall back after a downtime over the repeated hour: one run, the first 02:30", schedule: berlin("30 2 * * *"),
			last: "2026-10-24T02:30:00+02:00", now: "2026-10-25T04:00:00+01:00",
			run: true, scheduled: "2026-10-25T02:30:00+02:00", due: 1, next: "2026-10-26T02:30:00+01:00",
		},
		{
			name: "Berlin fall back: an hourly schedule runs in both 02:00 hours", schedule: berlin("0 * * * *"),
			last: "2026-10-25T02:00:00+02:00", now: "2026-10-25T02:00:00.1+01:00",
			run: true, scheduled: "2026-10-25T02:00:00+01:00", due: 1, next: "2026-10-25T03:00:00+01:00",
		},
		{
			name: "@hourly", schedule: utc("@hourly", nil),
			last: "2026-05-01T10:00:00Z", now: "2026-05-01T11:00:00.1Z",
			run: true, scheduled: "2026-05-01T11:00:00Z", due: 1, next: "2026-05-01T12:00:00Z",
		},
		{
			name: "@daily runs at midnight in its time zone", schedule: berlin("@daily"),
			last: "2026-05-01T00:00:00+02:00", now: "2026-05-02T00:00:00.1+02:00",
			run: true, scheduled: "2026-05-01T22:00:00Z", due: 1, next: "2026-05-02T22:00:00Z",
		},
		{
			name: "missed during a restart, inside startingDeadlineSeconds: runs late", schedule: utc("0 3 * * *", seconds(3600)),
			last: "2026-05-01T03:00:00Z", now: "2026-05-02T03:30:00Z",
			run: true, scheduled: "2026-05-02T03:00:00Z", due: 1, next: "2026-05-03T03:00:00Z",
		},
		{
			name: "missed during a restart, outside startingDeadlineSeconds: skipped", schedule: utc("0 3 * * *", seconds(3600)),
			last: "2026-05-01T03:00:00Z", now: "2026-05-02T04:00:01Z",
			scheduled: "2026-05-02T03:00:00Z", next: "2026-05-03T03:00:00Z",
			reason: "scheduled time 2026-05-02T03:00:00Z missed by 1h0m1s, more than startingDeadlineSeconds (3600)",
		},
		{
			name: "startingDeadlineSeconds 0: any lateness skips", schedule: utc("0 3 * * *", seconds(0)),
			last: "2026-05-01T03:00:00Z", now: "2026-05-02T03:00:00.1Z",
			scheduled: "2026-05-02T03:00:00Z", next: "2026-05-03T03:00:00Z", reason: "startingDeadlineSeconds (0)",
		},
		{
			name: "several missed: only the most recent runs", schedule: utc("0 * * * *", nil),
			last: "2026-05-01T00:00:00Z", now: "2026-05-01T05:30:00Z",
			run: true, scheduled: "2026-05-01T05:00:00Z", due: 5, next: "2026-05-01T06:00:00Z", reason: "the most recent of 5 missed times",
		},
		{
			name: "more than 100 missed: warns and runs the most recent", schedule: utc("* * * * *", nil),
			last: "2026-05-01T00:00:00Z", now: "2026-05-01T03:00:30Z",
			run: true, scheduled: "2026-05-01T03:00:00Z", due: TooManyMissed + 1, tooMany: true, next: "2026-05-01T03:01:00Z",
			reason: "more than 100 missed times",
		},
		{
			name: "startingDeadlineSeconds bounds the missed count", schedule: utc("* * * * *", seconds(600)),
			last: "2026-05-01T00:00:00Z", now: "2026-05-01T03:00:30Z",
			run: true, scheduled: "2026-05-01T03:00:00Z", due: 10, next: "2026-05-01T03:01:00Z",
		},
		{
			name: "more than 100 missed within startingDeadlineSeconds", schedule: utc("* * * * *", seconds(7200)),
			last: "2026-05-01T00:00:00Z", now: "2026-05-01T03:00:30Z",
			run: true, scheduled: "2026-05-01T03:00:00Z", due: TooManyMissed + 1, tooMany: true, next: "2026-05-01T03:01:00Z",
		},
		{
			name: "years down, weekly on Mondays, now a Saturday: the last Monday runs", schedule: utc("0 9 * * 1", nil),
			last: "2020-01-06T09:00:00Z", now: "2026-05-02T12:00:00Z",
			run: true, scheduled: "2026-04-27T09:00:00Z", due: TooManyMissed + 1, tooMany: true, next: "2026-05-04T09:00:00Z",
		},
		{
			name: "suspended", schedule: suspended,
			last: "2026-05-01T03:00:00Z", now: "2026-05-02T03:00:00.1Z",
			reason: "the schedule is suspended",
		},
		{
			name: "the last scheduled time never runs again (restart, new leader)", schedule: utc("0 3 * * *", nil),
			last: "2026-05-02T03:00:00Z", now: "2026-05-02T03:00:00.1Z",
			next: "2026-05-03T03:00:00Z",
		},
		{
			name: "a clock behind the last scheduled time does not bring it back", schedule: utc("0 3 * * *", nil),
			last: "2026-05-02T03:00:00Z", now: "2026-05-02T02:59:59Z",
			next: "2026-05-03T03:00:00Z",
		},
		{
			name: "a schedule first seen after today's time waits for tomorrow", schedule: utc("0 3 * * *", nil),
			since: "2026-05-02T03:30:00Z", now: "2026-05-02T03:40:00Z",
			next: "2026-05-03T03:00:00Z",
		},
		{
			name: "a schedule first seen before its time runs at it", schedule: utc("0 3 * * *", nil),
			since: "2026-05-02T02:00:00Z", now: "2026-05-02T03:00:00.1Z",
			run: true, scheduled: "2026-05-02T03:00:00Z", due: 1, next: "2026-05-03T03:00:00Z",
		},
		{
			name: "no since and no last counts from now", schedule: utc("0 3 * * *", nil),
			now:  "2026-05-02T03:00:00.1Z",
			next: "2026-05-03T03:00:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last *time.Time
			if tt.last != "" {
				l := ts(t, tt.last)
				last = &l
			}
			now := ts(t, tt.now)
			d, err := NextRun(tt.schedule, last, ts(t, tt.since), now)
			if err != nil {
				t.Fatal(err)
			}
			if d.Run != tt.run {
				t.Errorf("Run = %v, want %v (reason %q)", d.Run, tt.run, d.Reason)
			}
			if want := ts(t, tt.scheduled); !d.ScheduledTime.Equal(want) {
				t.Errorf("ScheduledTime = %v, want %v", d.ScheduledTime, want)
			}
			if d.Due != tt.due || d.TooManyMissed != tt.tooMany {
				t.Errorf("Due, TooManyMissed = %d, %v, want %d, %v", d.Due, d.TooManyMissed, tt.due, tt.tooMany)
			}
			if want := ts(t, tt.next); !d.Next.Equal(want) {
				t.Errorf("Next = %v, want %v", d.Next, want)
			}
			wantWait := time.Duration(0)
			if !d.Next.IsZero() {
				wantWait = d.Next.Sub(now) + 100*time.Millisecond
			}
			if d.RequeueAfter != wantWait {
				t.Errorf("RequeueAfter = %v, want %v", d.RequeueAfter, wantWait)
			}
			if !strings.Contains(d.Reason, tt.reason) || (d.ScheduledTime.IsZero() != (d.Reason == "") && !tt.schedule.Suspend) {
				t.Errorf("Reason = %q, want it to contain %q, and to be set exactly when a time is due", d.Reason, tt.reason)
			}
		})
	}
}

// TestNextRunAfterEdit: a schedule edited in git is computed with its new expression at once;
// since decides whether a time of the new expression between the last run and the edit runs.
func TestNextRunAfterEdit(t *testing.T) {
	last := ts(t, "2026-05-02T03:00:00Z")
	created := ts(t, "2026-01-01T00:00:00Z")
	edited := ts(t, "2026-05-02T03:30:00Z")
	sched := v1alpha1.Schedule{Name: "backup", Plan: "backup", Cron: "0 3 * * *"}

	d, err := NextRun(sched, &last, created, edited)
	if err != nil || d.Run || !d.Next.Equal(ts(t, "2026-05-03T03:00:00Z")) {
		t.Fatalf("before the edit: %+v, %v", d, err)
	}

	sched.Cron = "0 4 * * *"
	d, err = NextRun(sched, &last, created, edited)
	if err != nil || d.Run || !d.Next.Equal(ts(t, "2026-05-02T04:00:00Z")) {
		t.Fatalf("moved later: want a wake-up at 04:00 today, got %+v, %v", d, err)
	}
	d, err = NextRun(sched, &last, created, ts(t, "2026-05-02T04:00:00.1Z"))
	if err != nil || !d.Run || !d.ScheduledTime.Equal(ts(t, "2026-05-02T04:00:00Z")) {
		t.Fatalf("moved later: want the 04:00 run, got %+v, %v", d, err)
	}

	// Moved to a time between the last run and the edit: CronJob (since = creation) runs it
	// once, late; counting from the edit does not.
	sched.Cron = "15 3 * * *"
	d, err = NextRun(sched, &last, created, edited)
	if err != nil || !d.Run || !d.ScheduledTime.Equal(ts(t, "2026-05-02T03:15:00Z")) {
		t.Fatalf("since creation: want the 03:15 run, late, got %+v, %v", d, err)
	}
	d, err = NextRun(sched, &last, edited, edited)
	if err != nil || d.Run || !d.ScheduledTime.IsZero() || !d.Next.Equal(ts(t, "2026-05-03T03:15:00Z")) {
		t.Fatalf("since the edit: want no run until tomorrow 03:15, got %+v, %v", d, err)
	}
}

// TestScheduleYear runs a daemon's loop over a year on an injected clock: it wakes up when a
// decision says, persists the scheduled time before running, and asks again at once as a
// restarted daemon or a new leader would. It proves the DST rules over whole days and that
// no scheduled time runs twice.
func TestScheduleYear(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cron string
		// want runs on the local days 2026-03-29 (23 hours), 2026-10-25 (25 hours) and
		// 2026-05-02, and in the year.
		spring, fall, ordinary, year int
	}{
		{cron: "30 2 * * *", spring: 0, fall: 1, ordinary: 1, year: 364},
		{cron: "0 * * * *", spring: 23, fall: 25, ordinary: 24, year: 365 * 24},
		{cron: "*/30 * * * *", spring: 46, fall: 50, ordinary: 48, year: 365 * 48},
		{cron: "0 3 * * *", spring: 1, fall: 1, ordinary: 1, year: 365},
		{cron: "0,30 1-3 * * *", spring: 4, fall: 6, ordinary: 6, year: 364*6 + 4},
	}
	for _, tt := range tests {
		t.Run(tt.cron, func(t *testing.T) {
			sched := v1alpha1.Schedule{Name: "s", Plan: "backup", Cron: tt.cron, TimeZone: "Europe/Berlin"}
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, berlin).Add(-time.Second) // so that 00:00 is due
			end := time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)
			var last *time.Time
			perDay := map[string]int{}
			runs := 0
			seen := map[time.Time]bool{}
			for now := start; now.Before(end); {
				d, err := NextRun(sched, last, start, now)
				if err != nil {
					t.Fatal(err)
				}
				if !d.ScheduledTime.IsZero() {
					l := d.ScheduledTime
					last = &l
				}
				if d.Run {
					if seen[d.ScheduledTime] {
						t.Fatalf("%v ran twice", d.ScheduledTime)
					}
					seen[d.ScheduledTime] = true
					if d.Due != 1 || now.Sub(d.ScheduledTime) != 100*time.Millisecond {
						t.Fatalf("at %v: ran %v with %d due; want each time on time", now, d.ScheduledTime, d.Due)
					}
					runs++
					perDay[d.ScheduledTime.In(berlin).Format(time.DateOnly)]++
				}
				again, err := NextRun(sched, last, start, now)
				if err != nil || again.Run || !again.Next.Equal(d.Next) {
					t.Fatalf("asked again at %v: %+v, %v; want no run and the same next time %v", now, again, err, d.Next)
				}
				now = now.Add(d.RequeueAfter)
			}
			if perDay["2026-03-29"] != tt.spring || perDay["2026-10-25"] != tt.fall || perDay["2026-05-02"] != tt.ordinary || runs != tt.year {
				t.Errorf("runs on spring forward, fall back, an ordinary day, the year = %d, %d, %d, %d; want %d, %d, %d, %d",
					perDay["2026-03-29"], perDay["2026-10-25"], perDay["2026-05-02"], runs, tt.spring, tt.fall, tt.ordinary, tt.year)
			}
		})
	}
}

// TestRobfigDST pins what robfig/cron does alone, which the DST rules of NextRun build on: it
// skips a time that does not exist and returns a repeated one twice.
func TestRobfigDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := cron.ParseStandard("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.Next(ts(t, "2026-03-28T02:30:00+01:00").In(berlin)); !got.Equal(ts(t, "2026-03-30T02:30:00+02:00")) {
		t.Errorf("spring forward: next = %v, want the 30th", got)
	}
	if got := spec.Next(ts(t, "2026-10-25T02:30:00+02:00").In(berlin)); !got.Equal(ts(t, "2026-10-25T02:30:00+01:00")) {
		t.Errorf("fall back: next = %v, want the repeated 02:30 (robfig repeats it; NextRun must filter it)", got)
	}
}

func TestNextRunErrors(t *testing.T) {
	now := ts(t, "2026-05-02T03:00:00Z")
	tests := []struct {
		cron, timeZone, want string
	}{
		{cron: "0 3 * *", want: `schedule "s": cron: "0 3 * *" is not a valid cron expression`},
		{cron: "@every 1h", want: `schedule "s": cron: "@every 1h": not supported`},
		{cron: "CRON_TZ=Europe/Berlin 0 3 * * *", want: `schedule "s": cron: "CRON_TZ=Europe/Berlin 0 3 * * *": set the time zone in timeZone`},
		{cron: "0 0 30 2 *", want: `schedule "s": cron: "0 0 30 2 *" has no time in the next five years`},
		{cron: "0 3 * * *", timeZone: "Europe/Bonn", want: `schedule "s": timeZone: unknown time zone "Europe/Bonn"`},
		{cron: "0 3 * * *", timeZone: "Local", want: `schedule "s": timeZone: "Local" is the daemon's own zone`},
	}
	for _, tt := range tests {
		t.Run(tt.cron+" "+tt.timeZone, func(t *testing.T) {
			_, err := NextRun(v1alpha1.Schedule{Name: "s", Plan: "backup", Cron: tt.cron, TimeZone: tt.timeZone}, nil, now, now)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to start with %q", err, tt.want)
			}
		})
	}
}

func TestCheckSchedules(t *testing.T) {
	now := ts(t, "2026-05-02T03:00:00Z")
	good := []v1alpha1.Schedule{
		{Name: "nightly", Plan: "backup", Cron: "@daily", TimeZone: "Asia/Kolkata"},
		{Name: "leap", Plan: "backup", Cron: "0 0 29 2 *"},
		{Name: "utc", Plan: "repair", Cron: "*/5 * * * 1-5", TimeZone: "UTC"},
	}
	if err := CheckSchedules(good, now); err != nil {
		t.Errorf("valid schedules: %v", err)
	}
	bad := append(append([]v1alpha1.Schedule{}, good...),
		v1alpha1.Schedule{Name: "zone", Plan: "backup", Cron: "0 3 * * *", TimeZone: "Mars/Olympus"},
		v1alpha1.Schedule{Name: "never", Plan: "backup", Cron: "0 0 31 4 *"},
	)
	err := CheckSchedules(bad, now)
	if err == nil {
		t.Fatal("want errors")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `spec.schedules[3].timeZone: unknown time zone "Mars/Olympus"`) ||
		lines[1] != `spec.schedules[4].cron: "0 0 31 4 *" has no time in the next five years` {
		t.Errorf("errors = %q", lines)
	}
}

func TestConcurrency(t *testing.T) {
	tests := []struct {
		policy  v1alpha1.ConcurrencyPolicy
		running string
		want    ConcurrencyAction
		reason  string
	}{
		{policy: "", running: "", want: StartRun},
		{policy: v1alpha1.ForbidConcurrent, running: "", want: StartRun},
		{policy: v1alpha1.ReplaceConcurrent, running: "", want: StartRun},
		{policy: "", running: "deploy", want: SkipRun, reason: "another plan is running: deploy"},
		{policy: v1alpha1.ForbidConcurrent, running: "backup", want: SkipRun, reason: "another plan is running: backup"},
		{policy: v1alpha1.ReplaceConcurrent, running: "repair", want: ReplaceRun, reason: "replaces the running plan repair after its current step"},
	}
	for _, tt := range tests {
		got, reason := Concurrency(tt.policy, tt.running)
		if got != tt.want || reason != tt.reason {
			t.Errorf("Concurrency(%q, %q) = %s, %q; want %s, %q", tt.policy, tt.running, got, reason, tt.want, tt.reason)
		}
	}
}

func TestScheduledRunUID(t *testing.T) {
	at := ts(t, "2026-05-02T03:00:00Z")
	if a, b := ScheduledRunUID("nightly", at), ScheduledRunUID("nightly", at.In(time.FixedZone("x", 3600))); a != b || a != "nightly-29628180" {
		t.Errorf("same schedule and time: %q, %q", a, b)
	}
	if ScheduledRunUID("nightly", at) == ScheduledRunUID("nightly", at.Add(time.Minute)) ||
		ScheduledRunUID("nightly", at) == ScheduledRunUID("weekly", at) {
		t.Error("other time or schedule: same UID")
	}
}

// BenchmarkNextRun measures a decision after a long downtime of a dense schedule, the worst
// case of the look-back and the missed count.
func BenchmarkNextRun(b *testing.B) {
	sched := v1alpha1.Schedule{Name: "s", Plan: "backup", Cron: "* * * * *", TimeZone: "Europe/Berlin"}
	last := ts(b, "2020-01-01T00:00:00Z")
	now := ts(b, "2026-05-02T03:00:30Z")
	for b.Loop() {
		if d, err := NextRun(sched, &last, last, now); err != nil || !d.Run {
			b.Fatal(d, err)
		}
	}
}
