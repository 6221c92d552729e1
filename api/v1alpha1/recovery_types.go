package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Requests of `kudod retry` and `kudod rollback`, written as annotations like `kudod trigger`
// writes its own: the daemon's field manager owns the spec (docs/recovery.md).
const (
	// AnnotationRetry asks for a retry of the last failed plan, as JSON RetryRequest.
	AnnotationRetry = "kudod.dev/retry"
	// AnnotationRollback asks for a rollback, as JSON RollbackRequest.
	AnnotationRollback = "kudod.dev/rollback"
)

// Triggers of plans that recover from a failure.
const (
	// TriggerRetry: `kudod retry` ran a failed plan again.
	TriggerRetry Trigger = "retry"
	// TriggerRollback: `kudod rollback`, or spec.onFailure, returned the instance to an older
	// revision.
	TriggerRollback Trigger = "rollback"
)

// RetryRequest is the JSON of the kudod.dev/retry annotation.
type RetryRequest struct {
	UID  string `json:"uid"`
	User string `json:"user,omitempty"`
	// FromStart runs every step again; otherwise the steps that completed stay done.
	FromStart bool `json:"fromStart,omitempty"`
}

// RollbackRequest is the JSON of the kudod.dev/rollback annotation.
type RollbackRequest struct {
	UID  string `json:"uid"`
	User string `json:"user,omitempty"`
	// To is the revision to return to (a full SHA, or a prefix of a revision in the history);
	// empty: the last revision whose plan completed.
	To string `json:"to,omitempty"`
}

// Outcome is how a plan ended, as history entries and notifications name it.
type Outcome string

// Outcomes.
const (
	OutcomeCompleted  Outcome = "completed"
	OutcomeFailed     Outcome = "failed"
	OutcomeAborted    Outcome = "aborted"
	OutcomeSuperseded Outcome = "superseded"
)

// HistoryEntry is one execution of a plan that ended.
type HistoryEntry struct {
	Plan string `json:"plan"`
	UID  string `json:"uid"`
	// Trigger is what started the execution: git, schedule, manual, retry or rollback.
	Trigger  Trigger `json:"trigger"`
	Revision string  `json:"revision,omitempty"`
	// Schedule names the schedule that started the execution (or the one a retry repeats).
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// ScheduledTime is the schedule's time the execution ran for.
	// +optional
	ScheduledTime *metav1.Time `json:"scheduledTime,omitempty"`
	// User is who asked: `kudod trigger`, `kudod retry` or `kudod rollback`.
	// +optional
	User string `json:"user,omitempty"`
	// RetryOf is the UID of the execution a retry repeated.
	// +optional
	RetryOf    string          `json:"retryOf,omitempty"`
	StartTime  metav1.Time     `json:"startTime"`
	FinishTime metav1.Time     `json:"finishTime"`
	Status     ExecutionStatus `json:"status"`
	Outcome    Outcome         `json:"outcome"`
	// +optional
	Message string `json:"message,omitempty"`
	// FailedStep is "<phase>/<step>" of the step that failed.
	// +optional
	FailedStep string `json:"failedStep,omitempty"`
	// Parameters are the plan-scoped values of the execution; sensitive ones are masked.
	// +optional
	Parameters map[string]string `json:"parameters,omitempty"`
}

// RollbackMark records a rollback: the commit it undid is not applied again until git
// changes the instance (docs/recovery.md, Rollback).
type RollbackMark struct {
	// Revision is the commit rolled back.
	Revision string `json:"revision"`
	// To is the revision the instance returned to.
	To string `json:"to"`
	// UID is the rollback plan's request.
	UID string `json:"uid"`
	// User asked for the rollback ("" for spec.onFailure).
	// +optional
	User string      `json:"user,omitempty"`
	Time metav1.Time `json:"time"`
}
