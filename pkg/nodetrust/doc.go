// Package nodetrust decides, once, what the container runtime of every
// node must trust so that Pods can pull from the registries the config
// declares with a private CA (secure-with-ca) or without verified TLS
// (insecure): per registry host, a CA, skipped verification or plain
// HTTP, with never a credential. The leader publishes that decision in a
// ConfigMap of regcred's namespace (Publisher); the node agent (package
// nodeagent) reads only that ConfigMap and writes the runtime's files
// (package nodetrust/containerd).
package nodetrust
