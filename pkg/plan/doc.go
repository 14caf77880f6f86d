// Package plan decides, in pure code, which pull secrets a Pod gets: given
// the registry set, the Pod's images and existing imagePullSecrets, its
// namespace (name and labels) and the namespaces regcred never serves, it
// says per image which registry serves it, with which secret, whether the
// Pod will carry it, and why not. The webhook, `regcred match`, the
// upkeep of pull secrets and every explanation call it; nothing else
// decides.
package plan
