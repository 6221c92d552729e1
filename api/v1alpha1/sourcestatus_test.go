package v1alpha1

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestSourceStatusRoundTrip(t *testing.T) {
	in := SourceStatus{
		Repository: "platform", URL: "https://git.example.com/ops/platform.git", Ref: "branch main",
		Revision: "0123456789abcdef0123456789abcdef01234567", Interval: "1m0s", LastError: "fetch: timeout",
		LastPoll: time.Date(2026, 2, 3, 4, 5, 6, 0, time.FixedZone("CET", 3600)), NextPoll: time.Date(2026, 2, 3, 3, 6, 6, 0, time.UTC),
		LastHandledReconcile: "2026-02-03T03:05:00Z",
	}
	out := ParseSourceStatus(&corev1.ConfigMap{Data: in.Data()})
	if !out.LastPoll.Equal(in.LastPoll) || !out.NextPoll.Equal(in.NextPoll) {
		t.Fatalf("times %v %v, want %v %v", out.LastPoll, out.NextPoll, in.LastPoll, in.NextPoll)
	}
	out.LastPoll, out.NextPoll, in.LastPoll, in.NextPoll = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if out != in {
		t.Fatalf("read back %+v, want %+v", out, in)
	}
	if got := SourceStatusName("platform"); got != "kudod-source-platform" {
		t.Fatalf("name %q", got)
	}
}
