package manifests_test

import (
	"io/fs"
	"reflect"
	"testing"
	"testing/fstest"

	"github.com/kudod-dev/kudod/internal/decrypt"
	"github.com/kudod-dev/kudod/internal/decrypt/decrypttest"
	"github.com/kudod-dev/kudod/manifests"
)

// gitLikeFS knows its files' hashes, as sources' snapshots do (the hash is the content).
type gitLikeFS struct{ fstest.MapFS }

func (g gitLikeFS) FileHash(name string) (string, error) {
	f, ok := g.MapFS[name]
	if !ok {
		return "", &fs.PathError{Op: "hash", Path: name, Err: fs.ErrNotExist}
	}
	return string(f.Data), nil
}

// TestIndexPreviousDecryptsAgain: an encrypted file is decrypted again by every index, with the
// keys it has then, though it did not change: one that could not be decrypted is once the key
// is there, one that was decrypted is not once the key is gone, and one listed as encrypted
// without a Decrypter is decrypted by an index with one.
func TestIndexPreviousDecryptsAgain(t *testing.T) {
	id, recipient, err := decrypttest.Key()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := decrypt.ParseIdentities(id)
	if err != nil {
		t.Fatal(err)
	}
	withKey := decrypt.NewSOPS(ids, "")
	noKey := decrypt.NewSOPS(nil, "Secret kudod-system/sops-age not found")
	files := map[string]string{
		"instances/full.yaml":  encrypt(t, encInstance, recipient, ""),
		"instances/plain.yaml": "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: plain\n  namespace: data\nspec:\n  operator:\n    name: demo\n  parameters:\n    ROOT_CODE: plain-root-code\n",
	}
	fsys := gitLikeFS{encRepo(t, files)}
	steps := []struct {
		name      string
		decrypter manifests.Decrypter
		// decrypted: data/db is valid with its secret; else the file is held or listed.
		decrypted, listed bool
	}{
		{name: "no key", decrypter: noKey},
		{name: "the key arrives", decrypter: withKey, decrypted: true},
		{name: "the key is gone", decrypter: noKey},
		{name: "no decrypter", listed: true},
		{name: "a decrypter again", decrypter: withKey, decrypted: true},
		{name: "the same decrypter", decrypter: withKey, decrypted: true},
	}
	cache := manifests.NewPackageCache()
	var prev *manifests.Index
	for _, s := range steps {
		got, err := manifests.IndexRepository(fsys, manifests.IndexOptions{Cache: cache, Decrypter: s.decrypter, Previous: prev})
		if err != nil {
			t.Fatal(err)
		}
		want, err := manifests.IndexRepository(fsys.MapFS, manifests.IndexOptions{Cache: cache, Decrypter: s.decrypter})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct {
			name      string
			got, want any
		}{
			{"Instances", got.Instances, want.Instances}, {"InvalidFindings", got.InvalidFindings, want.InvalidFindings},
			{"BrokenFiles", got.BrokenFiles, want.BrokenFiles}, {"Encrypted", got.Encrypted, want.Encrypted},
			{"DecryptErrors", got.DecryptErrors, want.DecryptErrors}, {"Held", got.Held, want.Held}, {"Findings", got.Findings, want.Findings},
		} {
			if !reflect.DeepEqual(f.got, f.want) {
				t.Errorf("%s: %s differ from an index without Previous:\n got %v\nwant %v", s.name, f.name, f.got, f.want)
			}
		}
		db := got.Instance("data/db")
		switch {
		case s.decrypted:
			if db == nil || db.Parameters["ROOT_CODE"].Text != "s3cr3t-root-code" || !db.IsSensitive("ROOT_CODE") {
				t.Errorf("%s: not decrypted: %+v %v", s.name, db, got.Findings)
			}
		case s.listed:
			if db != nil || got.Encrypted["instances/full.yaml"] != manifests.NoKey {
				t.Errorf("%s: not listed as encrypted: %v", s.name, got.Encrypted)
			}
		default:
			if db != nil || len(got.DecryptErrors) != 1 || len(got.Held) != 1 {
				t.Errorf("%s: decrypted without a key: %+v, decrypt errors %v, held %v", s.name, db, got.DecryptErrors, got.Held)
			}
		}
		if prev != nil && (got.Instance("data/plain") == nil || got.Instance("data/plain") != prev.Instance("data/plain")) {
			t.Errorf("%s: the plain file's instance is not shared", s.name)
		}
		prev = got
	}
}
