package planner

import (
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

func window(schedule string, d time.Duration, zone string, kind v1alpha1.WindowKind) v1alpha1.Window {
	return v1alpha1.Window{Schedule: schedule, Duration: metav1.Duration{Duration: d}, TimeZone: zone, Kind: kind}
}

func mustTime(t *testing.T, zone, value string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04:05", value, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWindows(t *testing.T) {
	saturdayNight := window("0 22 * * 6", 4*time.Hour, "Europe/Berlin", v1alpha1.WindowAllow)
	christmasFreeze := window("0 0 24 12 *", 48*time.Hour, "", v1alpha1.WindowDeny)
	nightly := window("0 22 * * *", 4*time.Hour, "", v1alpha1.WindowAllow)
	// 2026-12-26 is a Saturday.
	cases := []struct {
		name      string
		windows   []v1alpha1.Window
		scheduled bool
		now       time.Time
		open      bool
		next      time.Time
		deny      bool
		message   string
	}{
		{name: "no windows", now: mustTime(t, "UTC", "2026-12-26 12:00:00"), open: true},
		{name: "before an allow window", windows: []v1alpha1.Window{saturdayNight}, now: mustTime(t, "Europe/Berlin", "2026-12-26 21:00:00"),
			next: mustTime(t, "Europe/Berlin", "2026-12-26 22:00:00"), message: "waiting for window Sat 22:00 CET"},
		{name: "at the opening", windows: []v1alpha1.Window{saturdayNight}, now: mustTime(t, "Europe/Berlin", "2026-12-26 22:00:00"), open: true},
		{name: "inside", windows: []v1alpha1.Window{saturdayNight}, now: mustTime(t, "Europe/Berlin", "2026-12-27 01:59:59"), open: true},
		{name: "at the end: the next week's", windows: []v1alpha1.Window{saturdayNight}, now: mustTime(t, "Europe/Berlin", "2026-12-27 02:00:00"),
			next: mustTime(t, "Europe/Berlin", "2027-01-02 22:00:00"), message: "waiting for window Sat 2 Jan 22:00 CET"},
		{name: "in a deny window", windows: []v1alpha1.Window{christmasFreeze}, now: mustTime(t, "UTC", "2026-12-25 10:00:00"),
			next: mustTime(t, "UTC", "2026-12-26 00:00:00"), deny: true, message: "waiting for window Sat 00:00 UTC: a deny window is open"},
		{name: "after a deny window", windows: []v1alpha1.Window{christmasFreeze}, now: mustTime(t, "UTC", "2026-12-26 00:00:00"), open: true},
		{name: "a deny window ends inside an allow window", windows: []v1alpha1.Window{nightly, christmasFreeze}, now: mustTime(t, "UTC", "2026-12-24 23:00:00"),
			next: mustTime(t, "UTC", "2026-12-26 00:00:00"), deny: true, message: "waiting for window Sat 00:00 UTC: a deny window is open"},
		{name: "a deny window ends outside the allow windows", windows: []v1alpha1.Window{window("0 12 * * *", time.Hour, "", v1alpha1.WindowAllow), christmasFreeze},
			now: mustTime(t, "UTC", "2026-12-24 12:30:00"), next: mustTime(t, "UTC", "2026-12-26 12:00:00"), deny: true},
		{name: "an allow window opens inside a deny window", windows: []v1alpha1.Window{nightly, christmasFreeze}, now: mustTime(t, "UTC", "2026-12-23 21:00:00"),
			next: mustTime(t, "UTC", "2026-12-23 22:00:00"), message: "waiting for window Wed 22:00 UTC"},
		{name: "scheduled plans see only scheduled windows", windows: []v1alpha1.Window{nightly}, scheduled: true, now: mustTime(t, "UTC", "2026-12-23 12:00:00"), open: true},
		{name: "a scheduled window holds scheduled plans", windows: []v1alpha1.Window{{Schedule: "0 22 * * *", Duration: metav1.Duration{Duration: time.Hour}, Scheduled: true}}, scheduled: true,
			now: mustTime(t, "UTC", "2026-12-23 12:00:00"), next: mustTime(t, "UTC", "2026-12-23 22:00:00")},
		{name: "openings closer than the duration: always denied", windows: []v1alpha1.Window{window("*/10 * * * *", 15*time.Minute, "", v1alpha1.WindowDeny)},
			now: mustTime(t, "UTC", "2026-12-23 12:00:00"), deny: true, message: "none found"},
		{name: "one window, two zones", windows: []v1alpha1.Window{window("0 9 * * *", time.Hour, "America/New_York", v1alpha1.WindowAllow)},
			now: mustTime(t, "Europe/Berlin", "2026-07-01 12:00:00"), next: mustTime(t, "America/New_York", "2026-07-01 09:00:00"), message: "waiting for window Wed 09:00 EDT"},
		// Daylight saving in Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
		{name: "spring forward: a time that does not exist opens nothing", windows: []v1alpha1.Window{window("30 2 * * *", time.Hour, "Europe/Berlin", v1alpha1.WindowAllow)},
			now: mustTime(t, "UTC", "2026-03-29 00:00:00"), next: mustTime(t, "Europe/Berlin", "2026-03-30 02:30:00"), message: "waiting for window Mon 02:30 CEST"},
		{name: "fall back: a repeated time opens once", windows: []v1alpha1.Window{window("30 2 * * *", time.Hour, "Europe/Berlin", v1alpha1.WindowAllow)},
			now: mustTime(t, "UTC", "2026-10-25 00:15:00"), next: mustTime(t, "UTC", "2026-10-25 00:30:00"), message: "waiting for window Sun 02:30 CEST"},
		{name: "fall back: open for the duration's elapsed time", windows: []v1alpha1.Window{window("30 2 * * *", time.Hour, "Europe/Berlin", v1alpha1.WindowAllow)},
			now: mustTime(t, "UTC", "2026-10-25 01:29:00"), open: true},
		{name: "fall back: the second 02:30 does not open it again", windows: []v1alpha1.Window{window("30 2 * * *", time.Hour, "Europe/Berlin", v1alpha1.WindowAllow)},
			now: mustTime(t, "UTC", "2026-10-25 01:45:00"), next: mustTime(t, "Europe/Berlin", "2026-10-26 02:30:00"), message: "waiting for window Mon 02:30 CET"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := Windows(c.windows, c.scheduled, c.now)
			if err != nil {
				t.Fatal(err)
			}
			if st.Open != c.open || !st.Next.Equal(c.next) || st.Deny != c.deny {
				t.Errorf("got open=%v next=%s deny=%v (%s); want open=%v next=%s deny=%v", st.Open, st.Next, st.Deny, st.Message, c.open, c.next, c.deny)
			}
			if !strings.Contains(st.Message, c.message) {
				t.Errorf("message %q does not contain %q", st.Message, c.message)
			}
			if st.Open && st.Message != "" {
				t.Errorf("an open window has a message: %q", st.Message)
			}
		})
	}
}

func TestCheckWindows(t *testing.T) {
	now := mustTime(t, "UTC", "2026-12-23 12:00:00")
	if err := CheckWindows([]v1alpha1.Window{window("0 22 * * 6", time.Hour, "Europe/Berlin", v1alpha1.WindowDeny)}, now); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		w   v1alpha1.Window
		msg string
	}{
		{window("61 * * * *", time.Hour, "", ""), "spec.windows[0].schedule"},
		{window("@daily", time.Hour, "Local", ""), "spec.windows[0].timeZone"},
		{window("@daily", time.Hour, "Mars/Base", ""), "unknown time zone"},
		{window("@daily", 0, "", ""), "spec.windows[0].duration"},
		{window("0 0 30 2 *", time.Hour, "", ""), "no time in the next five years"},
		{window("@daily", time.Hour, "", "maybe"), `kind: "maybe"`},
	}
	for _, c := range cases {
		err := CheckWindows([]v1alpha1.Window{c.w}, now)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: got %v, want an error containing %q", c.w, err, c.msg)
		}
	}
	// Windows reports a broken window and goes on with the others.
	st, err := Windows([]v1alpha1.Window{window("61 * * * *", time.Hour, "", ""), window("0 22 * * *", time.Hour, "", "")}, false, now)
	if err == nil || st.Open || !st.Next.Equal(mustTime(t, "UTC", "2026-12-23 22:00:00")) {
		t.Errorf("got %+v, %v", st, err)
	}
}

func TestEffectiveWindowsAndApproval(t *testing.T) {
	own := window("0 1 * * *", time.Hour, "", v1alpha1.WindowAllow)
	ownDeny := window("0 2 * * *", time.Hour, "", v1alpha1.WindowDeny)
	repoAllow := window("0 3 * * *", time.Hour, "", v1alpha1.WindowAllow)
	repoDeny := window("0 4 * * *", time.Hour, "", v1alpha1.WindowDeny)
	cases := []struct {
		name           string
		instance, repo []v1alpha1.Window
		want           []v1alpha1.Window
	}{
		{"none", nil, nil, nil},
		{"the repository's", nil, []v1alpha1.Window{repoAllow, repoDeny}, []v1alpha1.Window{repoAllow, repoDeny}},
		{"own allow windows replace the repository's; deny windows add up", []v1alpha1.Window{own}, []v1alpha1.Window{repoAllow, repoDeny}, []v1alpha1.Window{own, repoDeny}},
		{"own deny windows keep the repository's allow windows", []v1alpha1.Window{ownDeny}, []v1alpha1.Window{repoAllow, repoDeny}, []v1alpha1.Window{ownDeny, repoAllow, repoDeny}},
	}
	for _, c := range cases {
		if got := EffectiveWindows(c.instance, c.repo); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	repo := &v1alpha1.Approval{Plans: []string{"upgrade"}}
	if !NeedsApproval("upgrade", nil, repo) || NeedsApproval("update", nil, repo) {
		t.Error("the repository's approval does not apply")
	}
	if NeedsApproval("upgrade", &v1alpha1.Approval{}, repo) {
		t.Error("approval: {} on the instance does not turn the repository's off")
	}
	if !NeedsApproval("update", &v1alpha1.Approval{Plans: []string{"update"}}, repo) || NeedsApproval("", nil, repo) {
		t.Error("the instance's approval does not replace the repository's")
	}
}
