// Package testbed starts the real components regcred is tested and demoed
// against: a kube-apiserver with etcd (controller-runtime's envtest), a
// kube-controller-manager, distribution registries serving TLS and
// htpasswd auth, and on request a real node (StartNode: containerd, runc,
// CNI and a kubelet) with a kube-scheduler. build.sh beside it builds them
// from the Go module proxy and caches them by version.
package testbed
