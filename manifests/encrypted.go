package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decrypter decrypts SOPS-encrypted files of a repository (internal/decrypt): an instance file
// whose values are encrypted is read in memory and never written anywhere decrypted.
type Decrypter interface {
	// Decrypt returns the plain text of an encrypted file; file names it in errors.
	Decrypt(file string, data []byte) ([]byte, error)
}

// MaxEncryptedFileSize bounds an encrypted file kudod decrypts: instance files are small, and
// a huge one is a mistake or an attack on the daemon's memory.
const MaxEncryptedFileSize = 1 << 20

// NoKey is how an index without a Decrypter (`kudod plan` without a key) describes an
// encrypted file: it is reported, not failed.
const NoKey = "encrypted, key not available"

// IsEncrypted reports whether YAML data is a SOPS-encrypted file: a document with a top-level
// sops mapping that holds a mac.
func IsEncrypted(data []byte) bool {
	if !bytes.Contains(data, []byte("sops")) || !bytes.Contains(data, []byte("mac")) {
		return false
	}
	docs, err := decodeDocuments(data)
	return err == nil && hasSOPSMetadata(docs)
}

func hasSOPSMetadata(docs []*yaml.Node) bool {
	for _, d := range docs {
		if m := mappingValue(d, "sops"); m != nil && m.Kind == yaml.MappingNode && mappingValue(m, "mac") != nil {
			return true
		}
	}
	return false
}

// decodeDocuments reads every YAML document of data as its root node; empty documents are
// skipped.
func decodeDocuments(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
			docs = append(docs, doc.Content[0])
		} else {
			docs = append(docs, &yaml.Node{Kind: yaml.MappingNode})
		}
	}
}

// encryptedValue reports whether a node is or holds a SOPS-encrypted value.
func encryptedValue(n *yaml.Node) bool {
	if n == nil {
		return false
	}
	if n.Kind == yaml.ScalarNode {
		return strings.HasPrefix(n.Value, "ENC[")
	}
	for _, c := range n.Content {
		if encryptedValue(c) {
			return true
		}
	}
	return false
}

// plainScalar returns a key's value when it is written in plain text, "" when it is absent,
// encrypted or not a scalar.
func plainScalar(m *yaml.Node, key string) string {
	v := mappingValue(m, key)
	if v == nil || v.Kind != yaml.ScalarNode || strings.HasPrefix(v.Value, "ENC[") {
		return ""
	}
	return v.Value
}

// encryptedParameters names, per document, the parameters whose values are encrypted.
func encryptedParameters(docs []*yaml.Node) []map[string]bool {
	out := make([]map[string]bool, len(docs))
	for i, d := range docs {
		spec := mappingValue(d, "spec")
		if spec == nil {
			continue
		}
		p := mappingValue(spec, "parameters")
		if p == nil || p.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(p.Content); j += 2 {
			if encryptedValue(p.Content[j+1]) {
				if out[i] == nil {
					out[i] = map[string]bool{}
				}
				out[i][p.Content[j].Value] = true
			}
		}
	}
	return out
}

// decryptFile decrypts an encrypted instance file. It returns the plain text and, per
// document, the parameters that were encrypted; ok is false when the file is not read further:
// it is not kudod's (a plain kind other than Instance, such as a Secret that Flux decrypts), or
// it cannot be decrypted (recorded in the index).
func (idx *Index) decryptFile(file string, data []byte) (plain []byte, decrypted []map[string]bool, ok bool) {
	docs, err := decodeDocuments(data)
	if err != nil {
		return data, nil, true // not YAML: reported by the reader as any broken file is
	}
	instances := false
	for _, d := range docs {
		// A document without a kind is not an instance (a values file of another tool); one whose
		// kind is encrypted may be.
		if k := mappingValue(d, "kind"); k != nil && k.Kind == yaml.ScalarNode && (k.Value == InstanceKind || strings.HasPrefix(k.Value, "ENC[")) {
			instances = true
		}
	}
	if !instances {
		return nil, nil, false
	}
	if idx.decrypter == nil {
		idx.Encrypted[file] = NoKey
		return nil, nil, false
	}
	if len(data) > MaxEncryptedFileSize {
		idx.undecryptable(file, docs, fmt.Errorf("%d bytes is too large to decrypt (at most %d)", len(data), MaxEncryptedFileSize))
		return nil, nil, false
	}
	plain, err = idx.decrypter.Decrypt(file, data)
	if err != nil {
		idx.undecryptable(file, docs, err)
		return nil, nil, false
	}
	return plain, encryptedParameters(docs), true
}

// undecryptable records a file that could not be decrypted: the instances whose namespace and
// name are written in plain text are invalid with the error, and the file is broken (its
// instances of an older commit are rejected, never removed).
func (idx *Index) undecryptable(file string, docs []*yaml.Node, err error) {
	f := errorf(file, 0, "cannot decrypt: %v", err)
	idx.DecryptErrors = append(idx.DecryptErrors, f)
	named := false
	for _, d := range docs {
		meta := mappingValue(d, "metadata")
		if meta == nil || plainScalar(d, "kind") != InstanceKind {
			continue
		}
		name, ns := plainScalar(meta, "name"), plainScalar(meta, "namespace")
		if name == "" || ns == "" {
			continue
		}
		named = true
		idx.invalid(&Instance{Name: name, Namespace: ns, File: file, Line: d.Line}, Findings{f})
	}
	if !named {
		idx.BrokenFiles[file] = append(idx.BrokenFiles[file], f)
		idx.Findings = append(idx.Findings, f)
	}
}
