package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// instanceWriters records who wrote which Instance: a validating admission webhook that allows
// everything and notes, for every create, update and delete of an Instance or its status, the
// requesting user and the Instance's kudod.dev/repository label. envtest's API server keeps no
// audit log and managedFields name the field manager ("kudod" for every daemon), not the
// daemon: this is the audit the sharding figures need, with each daemon impersonating a user
// of its own (impersonatingKubeconfig).
type instanceWriters struct {
	mu sync.Mutex
	// writes counts each user's writes by Instance.
	writes map[string]map[instanceRef]int
	// labels is the repository label each Instance was last written with.
	labels map[instanceRef]string
	// probed is set once the API server calls the webhook.
	probed atomic.Bool
}

const (
	auditConfigName = "kudod-bench-audit"
	auditProbeLabel = "kudod-bench-audit-probe"
)

// recordInstanceWriters starts the webhook and registers it with the API server; it returns
// once the API server calls it. It is removed when the test ends.
func recordInstanceWriters(t testing.TB, cluster *testenv.Cluster) *instanceWriters {
	t.Helper()
	w := &instanceWriters{writes: map[string]map[instanceRef]int{}, labels: map[instanceRef]string{}}
	cert, caPEM, err := selfSignedLoopbackCert()
	if err != nil {
		t.Fatalf("audit webhook certificate: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/instances", func(rw http.ResponseWriter, req *http.Request) { w.review(rw, req, w.record) })
	mux.HandleFunc("/probe", func(rw http.ResponseWriter, req *http.Request) {
		w.review(rw, req, func(*admissionv1.AdmissionRequest) { w.probed.Store(true) })
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	ignore := admissionregistrationv1.Ignore
	timeout := int32(10)
	namespaced := admissionregistrationv1.NamespacedScope
	url := func(path string) *string { u := srv.URL + path; return &u }
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: auditConfigName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "instances.audit.kudod-bench.invalid",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: url("/instances"), CABundle: caPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{v1alpha1.GroupVersion.Group}, APIVersions: []string{"*"},
					Resources: []string{"instances", "instances/status"}, Scope: &namespaced},
			}},
			// Fail: a write the audit missed would hide an overlap.
			FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"},
		}, {
			Name:         "probe.audit.kudod-bench.invalid",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: url("/probe"), CABundle: caPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}, Scope: &namespaced},
			}},
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{auditProbeLabel: "true"}},
			FailurePolicy:  &ignore, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"},
		}},
	}
	ctx := context.Background()
	if err := cluster.Client.Create(ctx, cfg); err != nil {
		t.Fatalf("registering the audit webhook: %v", err)
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(context.Background(), cfg) })
	// The API server picks the configuration up from a watch: probe until it calls.
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kudod-bench-audit-probe", Namespace: metav1.NamespaceDefault, Labels: map[string]string{auditProbeLabel: "true"}}}
	deadline := time.Now().Add(30 * time.Second)
	for !w.probed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the API server did not call the audit webhook within 30s")
		}
		_ = cluster.Client.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		time.Sleep(100 * time.Millisecond)
	}
	return w
}

// review answers an AdmissionReview with "allowed" after passing the request to note.
func (w *instanceWriters) review(rw http.ResponseWriter, req *http.Request, note func(*admissionv1.AdmissionRequest)) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(req.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(rw, fmt.Sprintf("not an AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	note(review.Request)
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	review.Request = nil
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(review)
}

func (w *instanceWriters) record(r *admissionv1.AdmissionRequest) {
	if r.DryRun != nil && *r.DryRun {
		return
	}
	raw := r.Object.Raw
	if len(raw) == 0 {
		raw = r.OldObject.Raw // a delete
	}
	var obj struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	_ = json.Unmarshal(raw, &obj)
	key := instanceRef{Namespace: r.Namespace, Name: r.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	by := w.writes[r.UserInfo.Username]
	if by == nil {
		by = map[instanceRef]int{}
		w.writes[r.UserInfo.Username] = by
	}
	by[key]++
	if repo, ok := obj.Metadata.Labels[v1alpha1.LabelRepository]; ok {
		w.labels[key] = repo
	}
}

// writerCounts is what the audit saw of one user.
type writerCounts struct {
	// instances is how many Instances the user wrote; writes how many writes that took.
	instances, writes int
	// foreign is how many of those Instances belong to another repository than the user's.
	foreign int
}

// counts sums up a user's writes; its own repository is repository.
func (w *instanceWriters) counts(user, repository string) writerCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	var c writerCounts
	for key, n := range w.writes[user] {
		c.instances++
		c.writes += n
		if w.labels[key] != repository {
			c.foreign++
		}
	}
	return c
}

// overlap is how many Instances both users wrote.
func (w *instanceWriters) overlap(a, b string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for key := range w.writes[a] {
		if w.writes[b][key] > 0 {
			n++
		}
	}
	return n
}

// users are the users seen writing Instances.
func (w *instanceWriters) users() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for u := range w.writes {
		out = append(out, u)
	}
	return out
}

// impersonatingKubeconfig writes a copy of a kubeconfig whose user impersonates user in
// system:masters: the daemon keeps every permission and the audit webhook tells it apart.
func impersonatingKubeconfig(t testing.TB, src, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(src)
	if err != nil {
		t.Fatalf("reading %s: %v", src, err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = user
		a.ImpersonateGroups = []string{"system:masters"}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// selfSignedLoopbackCert is a serving certificate for 127.0.0.1 that is its own CA, and its
// PEM for the webhook's caBundle.
func selfSignedLoopbackCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kudod-bench-audit"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return cert, certPEM, err
}
