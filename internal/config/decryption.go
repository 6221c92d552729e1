package config

import (
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DecryptionSOPS is the only decryption provider: SOPS with age keys (docs/secrets.md).
const DecryptionSOPS = "sops"

// Decryption says how a repository's SOPS-encrypted instance files are decrypted.
type Decryption struct {
	// Provider is sops; empty disables decryption (encrypted files fail to read).
	Provider string
	// SecretRef names the Secret holding the age keys (keys ending in .agekey).
	SecretRef SecretRef
}

// SecretRef names a Secret.
type SecretRef struct {
	Name      string
	Namespace string
}

func (d *decoder) decryption(n *yaml.Node, field string) Decryption {
	var out Decryption
	var refNode, providerNode *yaml.Node
	d.fields(n, field, fieldSet{
		"provider": func(v *yaml.Node, f string) {
			providerNode = v
			out.Provider = d.str(v, f)
			if out.Provider != DecryptionSOPS {
				d.errorf(v, f, "unknown provider %q (use sops)", out.Provider)
			}
		},
		"secretRef": func(v *yaml.Node, f string) {
			refNode = v
			d.fields(v, f, fieldSet{
				"name":      func(v *yaml.Node, f string) { out.SecretRef.Name = d.dnsName(v, f) },
				"namespace": func(v *yaml.Node, f string) { out.SecretRef.Namespace = d.dnsLabelName(v, f) },
			})
		},
	})
	if n = deref(n); n.Kind != yaml.MappingNode {
		return out
	}
	if providerNode == nil {
		d.errorf(n, field, "provider is required (sops)")
	}
	switch {
	case refNode == nil:
		d.errorf(n, field, "secretRef is required: the Secret {name, namespace} holding the age keys")
	case out.SecretRef.Name == "" || out.SecretRef.Namespace == "":
		d.errorf(refNode, field+".secretRef", "name and namespace are required")
	}
	return out
}

// dnsName reads an object name (DNS-1123 subdomain).
func (d *decoder) dnsName(n *yaml.Node, field string) string {
	s := d.str(n, field)
	if errs := validation.IsDNS1123Subdomain(s); s != "" && len(errs) > 0 {
		d.errorf(n, field, "%q is not a valid name: %s", s, strings.Join(errs, "; "))
	}
	return s
}

// dnsLabelName reads a namespace name (DNS-1123 label).
func (d *decoder) dnsLabelName(n *yaml.Node, field string) string {
	s := d.str(n, field)
	if errs := validation.IsDNS1123Label(s); s != "" && len(errs) > 0 {
		d.errorf(n, field, "%q is not a valid namespace: %s", s, strings.Join(errs, "; "))
	}
	return s
}
