// Package upkeep keeps the pull secrets regcred made in step with the
// config, off the admission path: a credential change or a refreshed token
// updates every one of them, a registry that is removed, switched to
// image-pull-secret mode or excluded from a namespace has its secrets
// deleted, and a pull secret an admission could not create is retried in
// the background. Whether a secret belongs in a namespace is decided by
// package plan, as for admissions.
package upkeep
