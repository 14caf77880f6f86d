// Package secretsync keeps the pull secrets regcred made in step with the
// config: a credential change updates every one of them, a registry that is
// removed, switched to image-pull-secret mode or excluded from this cluster
// has its secrets deleted, and a pull secret an admission could not create
// is retried in the background.
package secretsync
