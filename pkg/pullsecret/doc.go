// Package pullsecret renders the kubernetes.io/dockerconfigjson Secrets
// regcred makes, keyed so that both the kubelet and go-containerregistry's
// keychain find the right credentials and only those, and keeps them in
// place in each namespace: created on demand, updated when credentials
// change, deleted when their registry no longer wants them.
package pullsecret
