// Package app wires regcred's webhook server together: options and flags,
// the manager and its caches, the config loader, the Pod admission handler
// and the pull-secret upkeep.
package app
