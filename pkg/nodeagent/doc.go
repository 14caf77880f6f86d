// Package nodeagent is regcred's node agent (regcred node-agent), run on
// every node by a DaemonSet when nodeTrust is enabled. It reads one
// ConfigMap of regcred's namespace, where the leader publishes what nodes
// must trust (package nodetrust: hosts, modes, CA certificates, never a
// credential), writes containerd's files for it (package
// nodetrust/containerd), and reports what it applied in an annotation of
// its own Node and in metrics.
package nodeagent
