package applier

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"

	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// lastApplied is kubectl's annotation holding a whole copy of the object as last applied: for
// a Secret, its values.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// secretHasher shows Secret values in a preview as a keyed hash: equal values look equal
// within the preview and a change shows, but the hash says nothing about a value without the
// key, which lives only as long as the preview (docs/design.md, Previews).
type secretHasher struct{ key []byte }

func newSecretHasher() secretHasher {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand never fails (Go 1.24)
	return secretHasher{key: key}
}

func (h secretHasher) hash(value string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(value))
	return "<sensitive hash:" + hex.EncodeToString(m.Sum(nil))[:12] + ">"
}

// secretDiffObjects turns the live Secret and the Secret after the plan into what a preview
// may show: each data key with a hash of its value, annotations with hashes of theirs, and
// neither stringData nor kubectl's last-applied copy. desired is the Secret the plan renders;
// its values, and the live ones read here, are hashed and never leave this function.
func (e *Engine) secretDiffObjects(ctx context.Context, h secretHasher, desired, live, merged *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured) {
	raw := &unstructured.Unstructured{}
	raw.SetGroupVersionKind(desired.GroupVersionKind())
	liveData := map[string]string{}
	if e.client.Get(ctx, client.ObjectKeyFromObject(desired), raw) == nil {
		liveData = secretData(raw)
	}
	want := secretData(desired)
	show := func(o *unstructured.Unstructured, values map[string]string, fallback map[string]string) *unstructured.Unstructured {
		if o == nil {
			return nil
		}
		c := o.DeepCopy()
		unstructured.RemoveNestedField(c.Object, "stringData")
		data, _, _ := unstructured.NestedMap(c.Object, "data")
		shown := map[string]any{}
		for k := range data {
			v, ok := values[k]
			if !ok {
				v, ok = fallback[k]
			}
			if ok {
				shown[k] = h.hash(v)
			} else {
				shown[k] = "<sensitive>"
			}
		}
		if len(shown) > 0 {
			_ = unstructured.SetNestedMap(c.Object, shown, "data")
		}
		if ann := c.GetAnnotations(); len(ann) > 0 {
			delete(ann, lastApplied)
			for k, v := range ann {
				ann[k] = h.hash(v)
			}
			c.SetAnnotations(ann)
		}
		return c
	}
	return show(live, liveData, nil), show(merged, want, liveData)
}

// secretData returns a Secret's values by key: data decoded, stringData as is.
func secretData(o *unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	data, _, _ := unstructured.NestedMap(o.Object, "data")
	for k, v := range data {
		if s, ok := v.(string); ok {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				out[k] = string(b)
			}
		}
	}
	sd, _, _ := unstructured.NestedStringMap(o.Object, "stringData")
	for k, v := range sd {
		out[k] = v
	}
	return out
}

// isSecret reports whether an object is a core Secret.
func isSecret(o *unstructured.Unstructured) bool { return utils.IsSecret(o) }
