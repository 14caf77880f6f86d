// Package status keeps a ConfigMap in regcred's namespace that says, per
// registry, whether its config is valid, when its credentials were last
// checked and with what result, and when its token expires (ECR), so that
// `kubectl describe configmap regcred-status` answers "is it working?"
// without extra tools. The leader writes it and runs the periodic login
// checks.
package status
