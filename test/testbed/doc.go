// Package testbed starts the real components regcred is tested and demoed
// against: a kube-apiserver with etcd (controller-runtime's envtest), a
// kube-controller-manager, and distribution registries serving TLS and
// htpasswd auth. build.sh beside it builds them from the Go module proxy
// and caches them by version.
package testbed
