// Package configwatch loads regcred's registry config from a ConfigMap or
// Secret in regcred's namespace and keeps it current: any change to the
// config object or to a Secret it refers to is validated and, if good,
// swapped in atomically; a broken change is rejected with a logged event and
// the last good config keeps serving.
package configwatch
