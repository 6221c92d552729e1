// Package deploy holds kudod's install manifests; the daemon embeds its CRD from here to
// install or update it at start.
package deploy

import _ "embed"

// InstanceCRD is the CustomResourceDefinition of kudod.dev/v1alpha1 Instance (make generate).
//
//go:embed crd/kudod.dev_instances.yaml
var InstanceCRD []byte
