package daemon

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
)

// Each repository's state lives in a ConfigMap in the daemon's namespace, where the daemon
// writes it and `kudod status --sources` reads it with only a kubeconfig; `kudod reconcile`
// annotates it to ask for a poll now.
const (
	// SourceStatusPrefix names the ConfigMaps: kudod-source-<repository>.
	SourceStatusPrefix = "kudod-source-"
	// AnnotationReconcileRequest asks for a poll now; any new value counts (`kudod reconcile`).
	AnnotationReconcileRequest = "kudod.dev/reconcile-requested-at"
	// LabelSourceStatus marks the ConfigMaps.
	LabelSourceStatus = "kudod.dev/source-status"
	// sourceHeartbeat bounds how stale a recorded poll time may get: the record is rewritten
	// when something changes and at least this often, so an idle daemon makes no API writes.
	sourceHeartbeat = 10 * time.Minute
)

// SourceStatus is what `kudod status --sources` shows of a repository.
type SourceStatus struct {
	Repository string    `json:"repository"`
	URL        string    `json:"url,omitempty"`
	Ref        string    `json:"ref,omitempty"`
	Revision   string    `json:"revision,omitempty"`
	LastPoll   time.Time `json:"lastPoll"`
	NextPoll   time.Time `json:"nextPoll"`
	Interval   string    `json:"interval,omitempty"`
	LastError  string    `json:"lastError,omitempty"`
	// LastHandledReconcile echoes the last `kudod reconcile` request acted on.
	LastHandledReconcile string `json:"lastHandledReconcile,omitempty"`
}

// SourceStatusName is the ConfigMap name of a repository's status.
func SourceStatusName(repository string) string { return SourceStatusPrefix + repository }

func (s SourceStatus) data() map[string]string {
	d := map[string]string{
		"repository": s.Repository, "url": s.URL, "ref": s.Ref, "revision": s.Revision,
		"lastPoll": s.LastPoll.UTC().Format(time.RFC3339), "nextPoll": s.NextPoll.UTC().Format(time.RFC3339),
		"interval": s.Interval, "lastError": s.LastError, "lastHandledReconcile": s.LastHandledReconcile,
	}
	return d
}

// ParseSourceStatus reads a repository's status from its ConfigMap.
func ParseSourceStatus(cm *corev1.ConfigMap) SourceStatus {
	d := cm.Data
	s := SourceStatus{Repository: d["repository"], URL: d["url"], Ref: d["ref"], Revision: d["revision"], Interval: d["interval"], LastError: d["lastError"], LastHandledReconcile: d["lastHandledReconcile"]}
	s.LastPoll, _ = time.Parse(time.RFC3339, d["lastPoll"])
	s.NextPoll, _ = time.Parse(time.RFC3339, d["nextPoll"])
	return s
}

// sameRecord reports whether two statuses differ only in their poll times.
func sameRecord(a, b SourceStatus) bool {
	a.LastPoll, a.NextPoll, b.LastPoll, b.NextPoll = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

// writeSourceStatus creates or updates a repository's status ConfigMap.
func writeSourceStatus(ctx context.Context, c client.Client, namespace string, s SourceStatus) error {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: SourceStatusName(s.Repository), Namespace: namespace, Labels: map[string]string{LabelSourceStatus: "true", v1alpha1.LabelManagedBy: "kudod"}},
		Data:       s.data(),
	}
	if err := applier.ServerSideApply(ctx, c, cm); err != nil {
		return fmt.Errorf("record the status of repository %s: %w", s.Repository, err)
	}
	return nil
}
