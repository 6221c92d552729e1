package v1alpha1

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Each repository's state lives in a ConfigMap in the daemon's namespace, where the daemon
// writes it and `kudod status --sources` reads it with only a kubeconfig; `kudod reconcile`
// annotates it to ask for a poll now. This is the wire format both sides share.
const (
	// SourceStatusPrefix names the ConfigMaps: kudod-source-<repository>.
	SourceStatusPrefix = "kudod-source-"
	// AnnotationReconcileRequest asks for a poll now; any new value counts (`kudod reconcile`).
	AnnotationReconcileRequest = "kudod.dev/reconcile-requested-at"
	// LabelSourceStatus marks the ConfigMaps ("true").
	LabelSourceStatus = "kudod.dev/source-status"
)

// SourceStatus is what `kudod status --sources` shows of a repository.
// +kubebuilder:object:generate=false
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

// Data is the status as the ConfigMap's data; times are RFC 3339 in UTC, to the second.
func (s SourceStatus) Data() map[string]string {
	return map[string]string{
		"repository": s.Repository, "url": s.URL, "ref": s.Ref, "revision": s.Revision,
		"lastPoll": s.LastPoll.UTC().Format(time.RFC3339), "nextPoll": s.NextPoll.UTC().Format(time.RFC3339),
		"interval": s.Interval, "lastError": s.LastError, "lastHandledReconcile": s.LastHandledReconcile,
	}
}

// ParseSourceStatus reads a repository's status from its ConfigMap.
func ParseSourceStatus(cm *corev1.ConfigMap) SourceStatus {
	d := cm.Data
	s := SourceStatus{Repository: d["repository"], URL: d["url"], Ref: d["ref"], Revision: d["revision"], Interval: d["interval"], LastError: d["lastError"], LastHandledReconcile: d["lastHandledReconcile"]}
	s.LastPoll, _ = time.Parse(time.RFC3339, d["lastPoll"])
	s.NextPoll, _ = time.Parse(time.RFC3339, d["nextPoll"])
	return s
}
