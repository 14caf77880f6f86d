// Package recovery brings back Pods that were admitted without a pull
// secret regcred would give them now: their registry was configured, or its
// policy changed, after they were created, or regcred was down when they
// were (it fails open). Such a Pod waits in ImagePullBackOff for ever, and
// its imagePullSecrets cannot be changed. The leader watches Pods through a
// cache that keeps only what the decision needs (View), asks package plan
// which pull secrets a failing Pod lacks (plan.Lacking), and evicts the Pods
// a controller recreates through the Eviction API (PodDisruptionBudgets
// hold), paced and at most once per Pod, with an Event saying why; a Pod
// nothing recreates only gets the Event. Opt-in (--recovery).
package recovery
