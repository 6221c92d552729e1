package manifests

// CompareVersions orders two operator (or app) versions as the repository index does:
// semantically when both are semantic versions, else as strings. A rollback tells a downgrade
// from an upgrade with it (docs/recovery.md, Rollback).
func CompareVersions(a, b string) int { return compareVersions(a, b) }
