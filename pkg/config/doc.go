// Package config defines regcred's registry config: the versioned YAML
// format a cluster admin writes, its parsing, its validation (every problem
// at once, each naming the registry and the field) and the resolution of the
// Secret references it holds.
package config
