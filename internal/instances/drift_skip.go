package instances

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
)

// driftMemo remembers, per instance, what its last clean drift check compared: a fingerprint
// of the Instance's plans and inventory and of its live objects' resourceVersions. The API
// server changes an object's resourceVersion with every write, so while the fingerprint is
// the same, nothing was edited or deleted since that check and the next one needs neither a
// render nor a dry-run (docs/design.md, Drift; docs/scaling.md). It is kept in memory only:
// after a restart the first check of each instance is a full one.
type driftMemo struct {
	mu    sync.Mutex
	clean map[types.NamespacedName]uint64
}

func (m *driftMemo) unchanged(key types.NamespacedName, fp uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.clean[key]
	return ok && last == fp
}

func (m *driftMemo) remember(key types.NamespacedName, fp uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.clean == nil {
		m.clean = map[types.NamespacedName]uint64{}
	}
	m.clean[key] = fp
}

func (m *driftMemo) forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.clean, key)
}

// liveFingerprint hashes what a drift check of inst depends on: the spec's generation and
// package, the plans recorded in its status, and each inventory object's resourceVersion,
// read as metadata only around the cache (one small GET per object). A deleted object reads
// as missing and changes the fingerprint too.
func liveFingerprint(ctx context.Context, r client.Reader, inst *v1alpha1.Instance) (uint64, error) {
	if r == nil {
		return 0, errors.New("no reader around the cache")
	}
	h := fnv.New64a()
	field := func(s string) {
		_ = binary.Write(h, binary.LittleEndian, uint32(len(s)))
		_, _ = h.Write([]byte(s))
	}
	field(fmt.Sprint(inst.Generation))
	field(inst.Spec.PackageDigest)
	for _, p := range inst.Status.Plans {
		field(p.Name)
		field(p.UID)
		field(string(p.Status))
		if p.LastUpdated != nil {
			field(p.LastUpdated.UTC().Format(time.RFC3339Nano))
		}
	}
	objs, err := applier.NewInventory(inst.Status.Inventory).Objects()
	if err != nil {
		return 0, err
	}
	for _, o := range objs {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(o.GroupVersionKind())
		rv := "missing"
		if err := r.Get(ctx, client.ObjectKeyFromObject(o), meta); err == nil {
			rv = string(meta.UID) + "/" + meta.ResourceVersion
		} else if !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("read %s %s: %w", o.GetKind(), client.ObjectKeyFromObject(o), err)
		}
		field(o.GroupVersionKind().String())
		field(o.GetNamespace() + "/" + o.GetName())
		field(rv)
	}
	return h.Sum64(), nil
}

// driftSpread is how far past its interval an instance's first drift check is put: a
// fraction of the interval that depends only on the instance's key, so that after a restart,
// when the daemon first sees every instance at once, their checks spread evenly over an
// interval instead of all coming due together.
func driftSpread(key types.NamespacedName, interval time.Duration) time.Duration {
	sum := sha256.Sum256([]byte(key.String()))
	return time.Duration(float64(interval) * float64(binary.BigEndian.Uint32(sum[:4])) / (1 << 32))
}
