package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels, annotations and finalizers kudod puts on Instances.
const (
	// LabelRepository names the configured repository an Instance comes from.
	LabelRepository = "kudod.dev/repository"
	// LabelParent marks a child Instance created by a KudoOperator task: "<namespace>.<name>" of its parent.
	LabelParent = "kudod.dev/parent"
	// LabelManagedBy is "kudod" on every Instance and namespace kudod creates.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotationTrigger requests a manual plan run (written by `kudod trigger`), as JSON ManualTrigger.
	AnnotationTrigger = "kudod.dev/trigger"
	// AnnotationAbort requests the end of the running plan (written by `kudod abort`), as JSON AbortRequest.
	AnnotationAbort = "kudod.dev/abort"
	// AnnotationApproved approves a waiting plan for one commit (written by `kudod approve`), as
	// JSON PlanApproval or a bare commit SHA (docs/operations.md, Approvals).
	AnnotationApproved = "kudod.dev/approved"
	// AnnotationRejected rejects a waiting plan of one commit (written by `kudod reject`), as
	// JSON PlanApproval or a bare commit SHA.
	AnnotationRejected = "kudod.dev/rejected"
	// AnnotationRemovedIn is the commit that removed an instance from git: its cleanup reports there.
	AnnotationRemovedIn = "kudod.dev/removed-in"
	// FinalizerCleanup holds an Instance until its cleanup plan ran and its objects are deleted.
	FinalizerCleanup = "kudod.dev/cleanup"
	// FieldManager is kudod's server-side apply field manager.
	FieldManager = "kudod"
)

// Instance is one instance of an operator package, as declared in git.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kinst,categories=kudod
// +kubebuilder:printcolumn:name="Operator",type=string,JSONPath=`.spec.operator.name`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.operator.version`
// +kubebuilder:printcolumn:name="Plan",type=string,JSONPath=`.status.lastPlan.name`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.lastPlan.status`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.applied.shortRevision`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Instance struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   InstanceSpec   `json:"spec,omitempty"`
	Status InstanceStatus `json:"status,omitempty"`
}

// InstanceList is a list of Instances.
// +kubebuilder:object:root=true
type InstanceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Instance `json:"items"`
}

// InstanceSpec is the desired state of an instance, written by the daemon from git.
type InstanceSpec struct {
	// Operator names the package the instance runs.
	Operator OperatorRef `json:"operator"`
	// PackageDigest is the sha256 of the package's files at Source.Revision.
	// +optional
	PackageDigest string `json:"packageDigest,omitempty"`
	// Parameters given by the instance file, as KUDO stores them: strings, arrays and maps as YAML.
	// +optional
	Parameters map[string]string `json:"parameters,omitempty"`
	// Source says where in git the instance and its package come from.
	// +optional
	Source SourceRef `json:"source,omitempty"`
	// Plan is the plan git asks to run: set by the daemon when a commit changes the instance.
	// +optional
	Plan *PlanRequest `json:"plan,omitempty"`
	// Schedules run plans on a cron schedule.
	// +optional
	// +listType=map
	// +listMapKey=name
	Schedules []Schedule `json:"schedules,omitempty"`
	// Suspend stops plans, schedules and drift correction; nothing is pruned.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// StepTimeout bounds each step of a plan (default: the daemon's --step-timeout).
	// +optional
	StepTimeout *metav1.Duration `json:"stepTimeout,omitempty"`
	// DriftCorrection re-applies objects that drifted from what plans applied (default true);
	// false only reports drift.
	// +optional
	DriftCorrection *bool `json:"driftCorrection,omitempty"`
	// DriftInterval is how often the objects are compared with what plans applied (default:
	// the repository's driftInterval).
	// +optional
	DriftInterval *metav1.Duration `json:"driftInterval,omitempty"`
	// ParametersFrom takes parameter values from Secrets and ConfigMaps in the instance's
	// namespace (docs/secrets.md). The values are read when a plan renders and are never
	// written to the Instance; only a digest of them is kept in the status.
	// +optional
	ParametersFrom []ParameterSource `json:"parametersFrom,omitempty"`
	// ServiceAccountName is the service account, in the instance's namespace, whose rights
	// every request of this instance's plans uses (impersonation; docs/security.md).
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// DependsOn lists instances whose last plan must be COMPLETE before a plan of this one
	// starts (docs/operations.md).
	// +optional
	DependsOn []InstanceRef `json:"dependsOn,omitempty"`
	// Approval names the plans that wait for `kudod approve` (docs/operations.md).
	// +optional
	Approval *Approval `json:"approval,omitempty"`
	// Windows say when plans that git triggers may start (docs/operations.md).
	// +optional
	Windows []Window `json:"windows,omitempty"`
	// OnFailure: "rollback" rolls a failed update or upgrade plan back to the last revision
	// whose plan completed (docs/recovery.md).
	// +optional
	OnFailure FailurePolicy `json:"onFailure,omitempty"`
}

// ParameterSource takes parameter values from a Secret or ConfigMap in the instance's
// namespace, as Flux's HelmRelease valuesFrom does.
type ParameterSource struct {
	// Kind is Secret or ConfigMap.
	// +kubebuilder:validation:Enum=Secret;ConfigMap
	Kind string `json:"kind"`
	// Name of the object.
	Name string `json:"name"`
	// Key of the value in the object's data; without it, every key is a parameter of that name.
	// +optional
	Key string `json:"key,omitempty"`
	// Parameter the value is for (default: Key).
	// +optional
	Parameter string `json:"parameter,omitempty"`
	// Optional: a missing object or key is not an error (the parameter keeps its default).
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// InstanceRef names another instance.
type InstanceRef struct {
	Name string `json:"name"`
	// Namespace defaults to the instance's own.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// Approval configures approval gates.
type Approval struct {
	// Plans that run only once approved for their commit.
	// +optional
	Plans []string `json:"plans,omitempty"`
}

// WindowKind says whether a window allows plans or holds them.
// +kubebuilder:validation:Enum=allow;deny
type WindowKind string

// Window kinds.
const (
	WindowAllow WindowKind = "allow"
	WindowDeny  WindowKind = "deny"
)

// Window is a recurring period, opening at each time of a cron schedule, when plans that git
// triggers may start (allow) or may not (deny).
type Window struct {
	// Schedule is a cron expression of when the window opens.
	Schedule string `json:"schedule"`
	// Duration is how long it stays open.
	Duration metav1.Duration `json:"duration"`
	// TimeZone is an IANA time zone name (default UTC).
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
	// Kind is allow (default) or deny.
	// +optional
	Kind WindowKind `json:"kind,omitempty"`
	// Scheduled applies the window to scheduled plans too.
	// +optional
	Scheduled bool `json:"scheduled,omitempty"`
}

// FailurePolicy says what happens when a plan fails.
// +kubebuilder:validation:Enum="";rollback
type FailurePolicy string

// Failure policies.
const (
	// FailureRollback rolls failed update and upgrade plans back.
	FailureRollback FailurePolicy = "rollback"
)

// OperatorRef identifies an operator package by name and version.
type OperatorRef struct {
	// Name of the package (operator.yaml name).
	Name string `json:"name"`
	// Version is the package's operatorVersion.
	// +optional
	Version string `json:"version,omitempty"`
	// AppVersion is the package's appVersion.
	// +optional
	AppVersion string `json:"appVersion,omitempty"`
}

// SourceRef locates an instance in git.
type SourceRef struct {
	// Repository is the name of the repository in the daemon's configuration.
	Repository string `json:"repository,omitempty"`
	// Path of the instance file within the repository.
	Path string `json:"path,omitempty"`
	// PackagePath is the package directory within the repository.
	PackagePath string `json:"packagePath,omitempty"`
	// Revision is the full commit SHA the desired state was read from.
	Revision string `json:"revision,omitempty"`
}

// PlanRequest asks for a plan run; a new UID asks for a new run.
type PlanRequest struct {
	// Name of the plan.
	Name string `json:"name"`
	// UID identifies the request.
	UID string `json:"uid"`
	// Action is the kind of change: deploy, update, upgrade.
	// +optional
	Action string `json:"action,omitempty"`
	// Reasons say why the plan runs (changed parameters old → new, version change, ...).
	// +optional
	Reasons []string `json:"reasons,omitempty"`
}

// ConcurrencyPolicy says what a schedule does when another plan of the instance runs.
// +kubebuilder:validation:Enum=Forbid;Replace
type ConcurrencyPolicy string

// Concurrency policies.
const (
	// ForbidConcurrent skips the scheduled run while another plan runs.
	ForbidConcurrent ConcurrencyPolicy = "Forbid"
	// ReplaceConcurrent lets the scheduled plan supersede the running one after its current step.
	ReplaceConcurrent ConcurrencyPolicy = "Replace"
)

// Schedule runs a plan on a cron schedule.
type Schedule struct {
	// Name of the schedule, unique within the instance.
	Name string `json:"name"`
	// Plan to run; any plan but cleanup.
	Plan string `json:"plan"`
	// Cron is a 5-field cron expression or a descriptor such as @daily.
	Cron string `json:"cron"`
	// TimeZone is an IANA time zone name (default UTC).
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
	// ConcurrencyPolicy is Forbid (default) or Replace.
	// +optional
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`
	// StartingDeadlineSeconds: a run missed by more than this is skipped.
	// +optional
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`
	// Suspend stops this schedule.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// Parameters apply to the scheduled run only (plan-scoped); a value may use
	// {{ .ScheduledTime | date "..." }}.
	// +optional
	Parameters map[string]string `json:"parameters,omitempty"`
}

// ExecutionStatus is KUDO's status of a plan, phase or step.
type ExecutionStatus string

// KUDO's status values.
const (
	StatusNeverRun   ExecutionStatus = "NEVER_RUN"
	StatusPending    ExecutionStatus = "PENDING"
	StatusInProgress ExecutionStatus = "IN_PROGRESS"
	StatusComplete   ExecutionStatus = "COMPLETE"
	StatusError      ExecutionStatus = "ERROR"
	StatusFatalError ExecutionStatus = "FATAL_ERROR"
)

// IsTerminal reports whether a plan with this status has ended.
func (s ExecutionStatus) IsTerminal() bool { return s == StatusComplete || s == StatusFatalError }

// IsRunning reports whether a plan with this status is still going.
func (s ExecutionStatus) IsRunning() bool {
	return s == StatusPending || s == StatusInProgress || s == StatusError
}

// Trigger says what started a plan.
type Trigger string

// Triggers.
const (
	TriggerGit      Trigger = "git"
	TriggerSchedule Trigger = "schedule"
	TriggerManual   Trigger = "manual"
)

// InstanceStatus is what the daemon observed and did.
type InstanceStatus struct {
	// ObservedGeneration is the generation of the spec last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled, Drifted.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ActivePlan is the plan running now.
	// +optional
	ActivePlan *ActivePlan `json:"activePlan,omitempty"`
	// LastPlan is the running plan, or else the last one that ran.
	// +optional
	LastPlan *PlanSummary `json:"lastPlan,omitempty"`
	// Plans holds the status tree of every plan of the package (KUDO's planStatus).
	// +optional
	// +listType=map
	// +listMapKey=name
	Plans []PlanStatus `json:"plans,omitempty"`
	// Applied is the desired state the last completed git-triggered plan applied.
	// +optional
	Applied *AppliedState `json:"applied,omitempty"`
	// Inventory lists every object kudod applied for this instance.
	// +optional
	Inventory []InventoryEntry `json:"inventory,omitempty"`
	// Schedules reports each schedule's last and next run.
	// +optional
	// +listType=map
	// +listMapKey=name
	Schedules []ScheduleStatus `json:"schedules,omitempty"`
	// HandledPlanRequest is the UID of the last spec.plan acted on.
	// +optional
	HandledPlanRequest string `json:"handledPlanRequest,omitempty"`
	// HandledTrigger is the UID of the last manual trigger acted on.
	// +optional
	HandledTrigger string `json:"handledTrigger,omitempty"`
	// HandledAbort is the UID of the last abort request acted on.
	// +optional
	HandledAbort string `json:"handledAbort,omitempty"`
	// Waiting is the plan git asked for that has not started yet: it waits for its
	// dependencies, an approval or a maintenance window (docs/operations.md).
	// +optional
	Waiting *WaitingPlan `json:"waiting,omitempty"`
	// LastDriftCheck is when drift was last checked.
	// +optional
	LastDriftCheck *metav1.Time `json:"lastDriftCheck,omitempty"`
	// History lists the last executions that ended, oldest first (docs/recovery.md, History).
	// +optional
	History []HistoryEntry `json:"history,omitempty"`
	// RolledBack marks the commit the last rollback undid, until git changes the instance.
	// +optional
	RolledBack *RollbackMark `json:"rolledBack,omitempty"`
	// HandledRetry is the UID of the last retry request acted on.
	// +optional
	HandledRetry string `json:"handledRetry,omitempty"`
	// HandledRollback is the UID of the last rollback request acted on.
	// +optional
	HandledRollback string `json:"handledRollback,omitempty"`
	// ParametersFrom records, per spec.parametersFrom reference, a digest of the values the
	// last plan rendered with (never the values): a change of a digest runs the parameters'
	// trigger plan (docs/secrets.md).
	// +optional
	ParametersFrom []ParameterSourceStatus `json:"parametersFrom,omitempty"`
}

// WaitReason says what a plan waits for before it starts.
type WaitReason string

// Wait reasons, as kudod_plan_wait_seconds labels them (docs/metrics.md).
const (
	WaitDependency WaitReason = "dependency"
	WaitApproval   WaitReason = "approval"
	WaitWindow     WaitReason = "window"
)

// WaitingPlan is a plan that has not started: what it waits for, and since when.
type WaitingPlan struct {
	Name     string  `json:"name"`
	UID      string  `json:"uid"`
	Trigger  Trigger `json:"trigger"`
	Revision string  `json:"revision,omitempty"`
	// Reason is what it waits for now: dependency, approval or window.
	Reason WaitReason `json:"reason"`
	// Message says it for people: "waiting for data/zk (deploy IN_PROGRESS)".
	Message string `json:"message"`
	// Since is when it started waiting for Reason.
	Since metav1.Time `json:"since"`
	// Until is when the wait ends by itself: the next opening of a maintenance window.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`
	// Replaced is the waiting plan this one replaced, "update of 3f2a9c1": a newer commit
	// replaces a plan that waits.
	// +optional
	Replaced string `json:"replaced,omitempty"`
}

// ParameterSourceStatus is what a parametersFrom reference gave the last plan.
type ParameterSourceStatus struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// +optional
	Key string `json:"key,omitempty"`
	// Parameters are the parameters the reference set.
	// +optional
	Parameters []string `json:"parameters,omitempty"`
	// Digest is a salted SHA-256 digest of the parameters' values; empty when an optional
	// object or key was missing.
	// +optional
	Digest string `json:"digest,omitempty"`
}

// ActivePlan identifies the running plan.
type ActivePlan struct {
	Name     string  `json:"name"`
	UID      string  `json:"uid"`
	Trigger  Trigger `json:"trigger"`
	Revision string  `json:"revision,omitempty"`
	// Schedule names the schedule that started the plan.
	// +optional
	Schedule  string      `json:"schedule,omitempty"`
	StartTime metav1.Time `json:"startTime"`
	// ScheduledTime is the schedule's time the plan runs for.
	// +optional
	ScheduledTime *metav1.Time `json:"scheduledTime,omitempty"`
	// User asked for the plan (manual, retry, rollback).
	// +optional
	User string `json:"user,omitempty"`
	// RetryOf is the UID of the execution a retry repeats.
	// +optional
	RetryOf string `json:"retryOf,omitempty"`
	// Parameters are the plan-scoped values of the run; sensitive ones are masked.
	// +optional
	Parameters map[string]string `json:"parameters,omitempty"`
}

// PlanSummary is a short record of the running or last plan (printer columns, CLI).
type PlanSummary struct {
	Name     string          `json:"name"`
	UID      string          `json:"uid,omitempty"`
	Status   ExecutionStatus `json:"status"`
	Trigger  Trigger         `json:"trigger,omitempty"`
	Revision string          `json:"revision,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// Superseded is set when a newer plan took over: the revision or trigger that did.
	// +optional
	SupersededBy string       `json:"supersededBy,omitempty"`
	StartTime    *metav1.Time `json:"startTime,omitempty"`
	// +optional
	FinishTime *metav1.Time `json:"finishTime,omitempty"`
}

// PlanStatus is the status tree of one plan.
type PlanStatus struct {
	Name     string          `json:"name"`
	Strategy string          `json:"strategy,omitempty"`
	Status   ExecutionStatus `json:"status"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	UID string `json:"uid,omitempty"`
	// +optional
	Trigger Trigger `json:"trigger,omitempty"`
	// +optional
	Revision string `json:"revision,omitempty"`
	// +optional
	Reasons []string `json:"reasons,omitempty"`
	// +optional
	LastUpdated *metav1.Time `json:"lastUpdatedTimestamp,omitempty"`
	// +optional
	Phases []PhaseStatus `json:"phases,omitempty"`
}

// PhaseStatus is the status of one phase.
type PhaseStatus struct {
	Name     string          `json:"name"`
	Strategy string          `json:"strategy,omitempty"`
	Status   ExecutionStatus `json:"status"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	Steps []StepStatus `json:"steps,omitempty"`
}

// StepStatus is the status of one step.
type StepStatus struct {
	Name   string          `json:"name"`
	Status ExecutionStatus `json:"status"`
	// +optional
	Message string `json:"message,omitempty"`
	// StartTime is when the step of this run first started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	LastUpdated *metav1.Time `json:"lastUpdatedTimestamp,omitempty"`
	// Objects are what the step applies, deletes or creates (at most MaxStepObjects; the
	// inventory has them all).
	// +optional
	Objects []ObjectRef `json:"objects,omitempty"`
}

// MaxStepObjects bounds StepStatus.Objects: a step with more lists the first ones.
const MaxStepObjects = 50

// ObjectRef names a Kubernetes object.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// AppliedState is the desired state a completed git-triggered plan applied.
type AppliedState struct {
	Revision      string `json:"revision,omitempty"`
	ShortRevision string `json:"shortRevision,omitempty"`
	// PackagePath is the package directory the plan ran from.
	// +optional
	PackagePath     string `json:"packagePath,omitempty"`
	OperatorVersion string `json:"operatorVersion,omitempty"`
	AppVersion      string `json:"appVersion,omitempty"`
	PackageDigest   string `json:"packageDigest,omitempty"`
	// Parameters as applied; sensitive values are replaced by a salted digest.
	// +optional
	Parameters map[string]string `json:"parameters,omitempty"`
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// InventoryEntry is one object kudod applied: id "<namespace>_<name>_<group>_<kind>" as Flux records it, and its version.
type InventoryEntry struct {
	ID      string `json:"id"`
	Version string `json:"v"`
}

// ScheduleStatus reports a schedule's runs.
type ScheduleStatus struct {
	Name string `json:"name"`
	// Cron and TimeZone are the schedule as last seen: an edit in git restarts its clock.
	// +optional
	Cron string `json:"cron,omitempty"`
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
	// Since is when the schedule, as it is now, was first seen: runs are due after it.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// LastScheduleTime is the last scheduled time handled (run or skipped); it is never run twice.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// +optional
	LastRunUID string `json:"lastRunUID,omitempty"`
	// +optional
	LastResult string `json:"lastResult,omitempty"`
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
	// +optional
	LastSkipped *metav1.Time `json:"lastSkipped,omitempty"`
	// +optional
	LastSkipReason string `json:"lastSkipReason,omitempty"`
}

// ManualTrigger is the JSON of the kudod.dev/trigger annotation.
type ManualTrigger struct {
	Plan    string `json:"plan"`
	UID     string `json:"uid"`
	Replace bool   `json:"replace,omitempty"`
	User    string `json:"user,omitempty"`
	// Parameters apply to this run only (plan-scoped; docs/recovery.md).
	Parameters map[string]string `json:"parameters,omitempty"`
	// IgnoreWindows starts the plan git asked for now even if a maintenance window holds it
	// (`kudod trigger --ignore-windows`, docs/operations.md).
	IgnoreWindows bool `json:"ignoreWindows,omitempty"`
}

// PlanApproval is the JSON of the kudod.dev/approved and kudod.dev/rejected annotations: the
// commit (a full SHA, or a prefix of at least 7 hex digits), optionally the plan, and who.
type PlanApproval struct {
	Revision string `json:"revision"`
	// +optional
	Plan string `json:"plan,omitempty"`
	// +optional
	User string `json:"user,omitempty"`
}

// AbortRequest is the JSON of the kudod.dev/abort annotation.
type AbortRequest struct {
	UID  string `json:"uid"`
	User string `json:"user,omitempty"`
}

// Condition types.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	ConditionDrifted     = "Drifted"
)
