// Package planner decides, per instance, which plan a change in git runs and why: the plan
// diff between two states of a repository (two commits, or what the cluster last applied and
// a commit). It is pure: it reads packages and instances and never touches git or a cluster.
package planner

import (
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// Action is the kind of change a decision makes, as `kudod plan -o json` prints it (docs/cli.md).
type Action string

// Actions.
const (
	// ActionDeploy: a new instance.
	ActionDeploy Action = "deploy"
	// ActionUpdate: parameters or templates changed.
	ActionUpdate Action = "update"
	// ActionUpgrade: the operator version changed.
	ActionUpgrade Action = "upgrade"
	// ActionCleanup: the instance was removed.
	ActionCleanup Action = "cleanup"
	// ActionNone: nothing to do.
	ActionNone Action = "none"
	// ActionRejected: the change is not allowed; the instance stays as it was.
	ActionRejected Action = "rejected"
)

// State is what one side of a comparison knows about an instance.
type State struct {
	Namespace string
	Name      string
	// Package is the resolved package.
	Package *manifests.Package
	// Parameters are the explicitly given values, as KUDO stores them; sensitive values as
	// their digests (manifests.SensitiveDigest).
	Parameters map[string]string
	// ParametersFrom are the instance's references to Secrets and ConfigMaps; their values
	// are read only when a plan renders.
	ParametersFrom []v1alpha1.ParameterSource
	// File is where the instance is declared ("" for cluster state).
	File string
	// Suspend holds plans until the instance is resumed.
	Suspend bool
	// Instance is the parsed instance document, when the state comes from git.
	Instance *manifests.Instance
	// NeverCompleted marks cluster state whose first plan has not completed yet: any change
	// runs deploy again rather than an update of something never deployed.
	NeverCompleted bool
	// DependsOn, Approval and Windows say when the instance's plans may start
	// (docs/operations.md); namespaces in DependsOn are filled in.
	DependsOn []v1alpha1.InstanceRef
	Approval  *v1alpha1.Approval
	Windows   []v1alpha1.Window
}

// Key is "<namespace>/<name>".
func (s *State) Key() string { return s.Namespace + "/" + s.Name }

// Decision says what happens to one instance and why.
type Decision struct {
	Namespace string   `json:"namespace"`
	Instance  string   `json:"instance"`
	Action    Action   `json:"action"`
	Plan      string   `json:"plan"`
	Reasons   []string `json:"reasons"`
	Error     string   `json:"error,omitempty"`

	// DependsOn are the instances this one depends on, as namespace/name (docs/operations.md).
	DependsOn []string `json:"dependsOn,omitempty"`
	// Order is when the plan runs among the commit's changes: plans of order 1 start first,
	// each other one after the changes named in After are done. 0 when nothing runs.
	Order int      `json:"order,omitempty"`
	After []string `json:"after,omitempty"`
	// NeedsApproval: the plan waits for `kudod approve`.
	NeedsApproval bool `json:"needsApproval,omitempty"`
	// Window is what the instance's maintenance windows say, when it has any.
	Window *WindowInfo `json:"window,omitempty"`

	// Old and New are the states compared (nil for a new or removed instance).
	Old *State `json:"-"`
	New *State `json:"-"`
}

// Key is "<namespace>/<name>".
func (d *Decision) Key() string { return d.Namespace + "/" + d.Instance }

// Changes reports whether the decision runs a plan or removes the instance.
func (d *Decision) Changes() bool {
	return d.Action != ActionNone && d.Action != ActionRejected
}

// WindowInfo is what maintenance windows say about a decision's plan when it is planned.
type WindowInfo struct {
	// Open: the windows let the plan start now.
	Open bool `json:"open"`
	// Next is when they let it start, if not now.
	Next *time.Time `json:"next,omitempty"`
	// Message says it for people: "waiting for window Sat 22:00 CET".
	Message string `json:"message,omitempty"`
}
