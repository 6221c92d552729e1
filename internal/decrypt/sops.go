// Package decrypt decrypts SOPS-encrypted files of a repository in memory, with age keys
// (docs/secrets.md): the daemon's from a Secret that kudod.yaml names
// (repositories[].decryption), the command line's from SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or
// --age-key-file. Nothing decrypted is ever written to disk.
package decrypt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	sopsconfig "github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"google.golang.org/grpc"
)

// Identities are age private keys.
type Identities []age.Identity

// ParseIdentities reads age private keys, one per line ("AGE-SECRET-KEY-1..."); empty lines
// and lines starting with # are skipped, as in age's key files.
func ParseIdentities(text string) (Identities, error) {
	ids, err := age.ParseIdentities(strings.NewReader(text))
	if err != nil {
		// age's message quotes the offending line, which may be a key: name the line only.
		return nil, errors.New("not a list of age keys (AGE-SECRET-KEY-1..., one per line)")
	}
	return ids, nil
}

// SOPS decrypts SOPS-encrypted YAML with age keys; it implements manifests.Decrypter.
type SOPS struct {
	ids Identities
	// missing says why there are no keys.
	missing string
}

// NewSOPS returns a decrypter with keys; without keys, every file fails with "no age key" and
// why (missing).
func NewSOPS(ids Identities, missing string) *SOPS {
	return &SOPS{ids: ids, missing: missing}
}

// HasKeys reports whether the decrypter has any key.
func (s *SOPS) HasKeys() bool { return len(s.ids) > 0 }

// Decrypt decrypts an encrypted YAML file; the error never holds a decrypted value.
func (s *SOPS) Decrypt(file string, data []byte) ([]byte, error) {
	store := sopsyaml.NewStore(&sopsconfig.YAMLStoreConfig{})
	tree, err := store.LoadEncryptedFile(data)
	if err != nil {
		return nil, fmt.Errorf("not a SOPS file: %w", err)
	}
	if len(s.ids) == 0 {
		why := s.missing
		if why == "" {
			why = "none was given"
		}
		return nil, fmt.Errorf("no age key: %s", why)
	}
	key, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{ageService{ids: s.ids}}, nil)
	if err != nil {
		recipients := recipientsOf(tree.Metadata.KeyGroups)
		if len(recipients) == 0 {
			return nil, errors.New("no age key: the file is encrypted for other kinds of keys only (kudod decrypts age keys)")
		}
		return nil, fmt.Errorf("no age key decrypts it (it is encrypted for %s)", strings.Join(recipients, ", "))
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		return nil, errors.New("its values cannot be decrypted with its data key: the file is damaged")
	}
	want, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || want != mac {
		return nil, errors.New("MAC mismatch: the file was changed after it was encrypted (edit it with sops)")
	}
	plain, err := store.EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, fmt.Errorf("write the decrypted YAML: %w", err)
	}
	return plain, nil
}

// recipientsOf lists the age recipients a file is encrypted for (public keys, safe to show).
func recipientsOf(groups []sops.KeyGroup) []string {
	var out []string
	for _, g := range groups {
		for _, k := range g {
			if ak, ok := k.(*sopsage.MasterKey); ok {
				out = append(out, ak.Recipient)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ageService decrypts SOPS data keys with age identities held in memory: the key service
// kudod gives SOPS instead of its local one, which reads keys from the environment and the
// user's files.
type ageService struct{ ids Identities }

func (a ageService) Decrypt(_ context.Context, req *keyservice.DecryptRequest, _ ...grpc.CallOption) (*keyservice.DecryptResponse, error) {
	if _, ok := req.GetKey().GetKeyType().(*keyservice.Key_AgeKey); !ok {
		return nil, errors.New("kudod decrypts with age keys only")
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(req.GetCiphertext())), a.ids...)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, 1<<10))
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return &keyservice.DecryptResponse{Plaintext: plain}, nil
}

func (ageService) Encrypt(context.Context, *keyservice.EncryptRequest, ...grpc.CallOption) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("kudod never encrypts")
}

// FromEnvironment reads the command line's age keys: the file named by flagFile, else
// $SOPS_AGE_KEY_FILE, else the keys in $SOPS_AGE_KEY. No keys and no error: none was given.
func FromEnvironment(flagFile string) (Identities, error) {
	file := flagFile
	if file == "" {
		file = os.Getenv("SOPS_AGE_KEY_FILE")
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("age key file: %w", err)
		}
		ids, err := ParseIdentities(string(data))
		if err != nil {
			return nil, fmt.Errorf("age key file %s: %w", file, err)
		}
		return ids, nil
	}
	if keys := os.Getenv("SOPS_AGE_KEY"); keys != "" {
		ids, err := ParseIdentities(keys)
		if err != nil {
			return nil, fmt.Errorf("SOPS_AGE_KEY: %w", err)
		}
		return ids, nil
	}
	return nil, nil
}
