// Package registries compiles a validated config into the immutable set of
// registries the webhook serves from: each registry's location, whether it
// injects in this cluster, the pull secret it injects and the provider of
// its credentials, behind an image matcher built once per config.
package registries
