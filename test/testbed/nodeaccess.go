package testbed

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// forwardAPIServer makes the API server reachable from the node's Pods
// at the node's IP and the API server's own port: envtest binds it to
// loopback, which is each Pod's own. The API server's certificate covers
// the node's IP (ControlPlaneOptions.NodeIP).
func (n *Node) forwardAPIServer() error {
	u, err := url.Parse(n.cp.Config.Host)
	if err != nil {
		return fmt.Errorf("the API server's address %q: %w", n.cp.Config.Host, err)
	}
	n.apiProxy, err = StartProxyOn(net.JoinHostPort(n.IP, u.Port()), Backend{Addr: u.Host})
	if err != nil {
		return fmt.Errorf("forwarding the API server to the node's Pods: %w", err)
	}
	n.APIServer = n.apiProxy.Addr
	return nil
}

// PodAPIServerEnv returns the environment that points a Pod's in-cluster
// client at the API server (KUBERNETES_SERVICE_HOST and _PORT, which a
// container's own env overrides): the kubernetes Service's ClusterIP
// leads nowhere on this node, which has no kube-proxy.
func (n *Node) PodAPIServerEnv() []corev1.EnvVar {
	host, port, _ := net.SplitHostPort(n.APIServer)
	return []corev1.EnvVar{
		{Name: "KUBERNETES_SERVICE_HOST", Value: host},
		{Name: "KUBERNETES_SERVICE_PORT", Value: port},
	}
}

// TrustRegistry makes containerd trust reg's CA (or speak plain HTTP to
// it, if it has none) the way an admin does: certs.d/<host>/hosts.toml
// under the node's config_path. It configures no credentials.
func (n *Node) TrustRegistry(reg *Registry) error {
	var ca []byte
	if reg.CA != nil {
		ca = reg.CA.CertPEM
	}
	if err := n.containerd.routeRegistry(reg.Host, reg.Host, ca); err != nil {
		return fmt.Errorf("node %s trusting registry %s: %w", n.Name, reg.Host, err)
	}
	return nil
}

// RegistryConfigDir is containerd's registry configuration directory on
// the node (its config_path), where hosts.toml files are read at every
// pull: what the chart's nodeTrust.hostPath names on a real node.
func (n *Node) RegistryConfigDir() string { return n.containerd.certsD }

// RouteRegistry makes containerd pull the images of registry host (an
// image reference's host, e.g. an ECR registry's name, which does not
// resolve here) from addr (host:port) over TLS, trusting caPEM: an admin
// does the same with a hosts.toml whose server is a private endpoint.
// It configures no credentials: the kubelet's, from a Pod's
// imagePullSecrets for host, are sent to addr.
func (n *Node) RouteRegistry(host, addr string, caPEM []byte) error {
	if caPEM == nil {
		return fmt.Errorf("node %s routing registry %s to %s: a CA is required (TLS)", n.Name, host, addr)
	}
	if err := n.containerd.routeRegistry(host, addr, caPEM); err != nil {
		return fmt.Errorf("node %s routing registry %s to %s: %w", n.Name, host, addr, err)
	}
	return nil
}

// ContainerLog returns what a container of a Pod on the node has written
// (its current run), read from the kubelet's log files: the API server
// cannot fetch logs from this kubelet, which listens on loopback only.
func (n *Node) ContainerLog(p *corev1.Pod, container string) (string, error) {
	dir := filepath.Join(n.Dir, "pod-logs", p.Namespace+"_"+p.Name+"_"+string(p.UID), container)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("logs of %s/%s container %s: %w", p.Namespace, p.Name, container, err)
	}
	// One file per run, 0.log, 1.log, ... (CRI format: time stream tag
	// line); the newest run's.
	newest, run := "", -1
	for _, e := range entries {
		if i, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".log")); err == nil && strings.HasSuffix(e.Name(), ".log") && i > run {
			newest, run = e.Name(), i
		}
	}
	if newest == "" {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(dir, newest))
	if err != nil {
		return "", fmt.Errorf("logs of %s/%s container %s: %w", p.Namespace, p.Name, container, err)
	}
	return string(b), nil
}
