// Package secretstore is regcred's only way to the pull secrets it makes,
// and it writes only: regcred's ServiceAccount cannot read a Secret outside
// its own namespace, so nothing here reads one.
//
// It knows where each pull secret lives, and which version it holds, from
// an index kept in regcred's own namespace (ConfigMaps, sharded by
// namespace, one key per namespace and registry). The index survives
// restarts and leader changes, lets an admission tell without an API call
// that a namespace already holds the current secret, and tells the upkeep
// where to refresh, fix or delete secrets.
//
// A pull secret whose content depends on the image hosts (a glob ECR
// registry's, a key per region) keeps every host its entry records, when
// replicas add hosts to it at once (hosts.go).
//
// A write never takes over a Secret regcred did not make: an update is a
// JSON patch whose test operations require regcred's labels and type, and
// a delete is bound to the UID regcred created.
package secretstore
