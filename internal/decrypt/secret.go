package decrypt

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KeySuffix marks the keys of a decryption Secret that hold age private keys, as in Flux.
const KeySuffix = ".agekey"

// SecretKeys reads a repository's age keys from the Secret kudod.yaml names
// (repositories[].decryption.secretRef), each time a commit is read: a rotated key applies to
// the next commit. Reader must read the API server directly (the manager's API reader), so
// the daemon keeps no cache of Secrets.
type SecretKeys struct {
	Reader    client.Reader
	Namespace string
	Name      string
}

// Decrypter returns a decrypter with the Secret's keys; when there are none (no such Secret,
// no key in it, not allowed to read it), one whose every decryption fails saying why.
func (k *SecretKeys) Decrypter(ctx context.Context) *SOPS {
	ids, why := k.load(ctx)
	return NewSOPS(ids, why)
}

func (k *SecretKeys) load(ctx context.Context) (Identities, string) {
	ref := k.Namespace + "/" + k.Name
	s := &corev1.Secret{}
	if err := k.Reader.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("Secret %s not found", ref)
		}
		return nil, fmt.Sprintf("Secret %s cannot be read: %v", ref, err)
	}
	names := make([]string, 0, len(s.Data))
	for name := range s.Data {
		if strings.HasSuffix(name, KeySuffix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var ids Identities
	for _, name := range names {
		parsed, err := ParseIdentities(string(s.Data[name]))
		if err != nil {
			return nil, fmt.Sprintf("Secret %s, key %s: %v", ref, name, err)
		}
		ids = append(ids, parsed...)
	}
	if len(ids) == 0 {
		return nil, fmt.Sprintf("Secret %s holds no key ending in %s", ref, KeySuffix)
	}
	return ids, ""
}
