package applier

import (
	"fmt"
	"sort"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// Inventory is the set of objects kudod applied for an instance, in Flux's format
// ("<namespace>_<name>_<group>_<kind>" and the version last applied).
type Inventory map[string]string

// NewInventory reads an inventory from an Instance's status.
func NewInventory(entries []v1alpha1.InventoryEntry) Inventory {
	inv := make(Inventory, len(entries))
	for _, e := range entries {
		inv[e.ID] = e.Version
	}
	return inv
}

// Add records objects.
func (inv Inventory) Add(objs ...*unstructured.Unstructured) {
	for _, o := range objs {
		inv[inventoryID(o)] = o.GroupVersionKind().Version
	}
}

// Remove forgets objects.
func (inv Inventory) Remove(objs ...*unstructured.Unstructured) {
	for _, o := range objs {
		delete(inv, inventoryID(o))
	}
}

// Entries returns the inventory for an Instance's status, sorted.
func (inv Inventory) Entries() []v1alpha1.InventoryEntry {
	out := make([]v1alpha1.InventoryEntry, 0, len(inv))
	for id, v := range inv {
		out = append(out, v1alpha1.InventoryEntry{ID: id, Version: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Objects returns skeleton objects (apiVersion, kind, namespace, name) of the inventory.
func (inv Inventory) Objects() ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(inv))
	for id, v := range inv {
		m, err := object.ParseObjMetadata(id)
		if err != nil {
			return nil, fmt.Errorf("inventory entry %q: %w", id, err)
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: m.GroupKind.Group, Version: v, Kind: m.GroupKind.Kind})
		u.SetNamespace(m.Namespace)
		u.SetName(m.Name)
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return inventoryID(out[i]) < inventoryID(out[j]) })
	return out, nil
}

// Without returns the entries of inv whose IDs are not in keep.
func (inv Inventory) Without(keep Inventory) Inventory {
	out := Inventory{}
	for id, v := range inv {
		if _, ok := keep[id]; !ok {
			out[id] = v
		}
	}
	return out
}

func inventoryID(o *unstructured.Unstructured) string {
	return object.UnstructuredToObjMetadata(o).String()
}
