package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// SimulatedCluster returns the package's shared simulated cluster (hack/local-cluster.sh):
// a real control plane with kube-controller-manager, kube-scheduler and kwok, where pods run
// on a fake node, Deployments, StatefulSets (volumes included) and Jobs become ready, and
// `kubectl exec` runs the command on this host. No CRD is installed.
func SimulatedCluster(t testing.TB) *Cluster {
	t.Helper()
	return shared(t, "simulated cluster", startSimulatedCluster)
}

// NewSimulatedCluster starts a simulated cluster for this test alone (a bare cluster nothing
// else touches) and stops it when the test ends.
func NewSimulatedCluster(t testing.TB) *Cluster {
	t.Helper()
	return dedicated(t, "simulated cluster", startSimulatedCluster)
}

func startSimulatedCluster(ctx context.Context) (*Cluster, func() error, error) {
	dir, stop, err := upScript(ctx, "local-cluster.sh")
	if err != nil {
		return nil, stop, err
	}
	vars, err := readEnvFile(filepath.Join(dir, "cluster.env"))
	if err != nil {
		return nil, stop, err
	}
	kubeconfig := vars["KUBECONFIG"]
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, stop, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	c, err := newCluster(cfg, kubeconfig)
	if err != nil {
		return nil, stop, err
	}
	c.Dir = dir
	c.kubectl = vars["KUBECTL"]
	c.env = []string{"KUBECACHEDIR=" + vars["KUBECACHEDIR"]}
	return c, stop, nil
}

// AuditEvent is what the simulated cluster's audit log records of one write request
// (Metadata level: who, what, where; never the object's content). Reads are not logged.
type AuditEvent struct {
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	// ImpersonatedUser is whom the request acted as, when User impersonated someone.
	ImpersonatedUser *struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"impersonatedUser"`
	UserAgent string `json:"userAgent"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
		APIVersion  string `json:"apiVersion"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	// StageTimestamp is when the request completed.
	StageTimestamp metav1.MicroTime `json:"stageTimestamp"`
}

// DryRun reports whether the request was a server-side dry run. The audit event has no field
// for it: the `dryRun` query parameter of its requestURI says so.
func (e AuditEvent) DryRun() bool {
	u, err := url.ParseRequestURI(e.RequestURI)
	return err == nil && u.Query().Has("dryRun")
}

// AuditEvents reads every event of the simulated cluster's audit log so far
// (create, update, patch, delete and deletecollection requests of every user). The API server
// writes an event as the request completes: poll for one rather than read once.
func (c *Cluster) AuditEvents(t testing.TB) []AuditEvent {
	t.Helper()
	if c.Dir == "" {
		t.Fatal("testenv: only a simulated cluster keeps an audit log")
	}
	events, err := readAuditLog(filepath.Join(c.Dir, "audit.log"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return events
}

func readAuditLog(path string) ([]AuditEvent, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	events := make([]AuditEvent, 0, len(lines))
	for i, line := range lines {
		if len(line) == 0 {
			continue
		}
		var e AuditEvent
		if err := json.Unmarshal(line, &e); err != nil {
			if i == len(lines)-1 {
				break // the API server is writing it right now
			}
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		events = append(events, e)
	}
	return events, nil
}
