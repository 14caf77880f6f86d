// Package recovery brings back Pods that were admitted without a pull
// secret regcred would give them now: their registry was configured, or its
// policy changed, after they were created, or regcred was down when they
// were (it fails open). Such a Pod waits in ImagePullBackOff for ever, and
// its imagePullSecrets cannot be changed. The leader watches Pods through a
// cache that keeps only what the decision needs (View), asks package plan
// which pull secrets a failing Pod lacks (plan.Lacking), and evicts the Pods
// a controller recreates through the Eviction API (PodDisruptionBudgets
// hold), paced and at most once per Pod, with an Event saying why; a Pod
// nothing recreates only gets the Event. A Pod that its controller made
// after such an eviction and that lacks the same secret is not evicted:
// the webhook did not give it the secret, and would not give it to the
// next one either, so regcred gives up on it with an Event (owners.go).
// Opt-in (--recovery).
package recovery
