// Package admission is regcred's mutating admission handler for Pod
// CREATE: it matches the Pod's images to the configured registries, makes
// sure their pull secrets exist in the Pod's namespace and patches their
// names into spec.imagePullSecrets. It fails open: a regcred problem never
// rejects a Pod, it adds a warning.
package admission
