package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Node is a real Kubernetes node on this machine: containerd, runc and a
// kubelet registered with a ControlPlane as system:node:<Name>. No
// credentials for any registry are configured on it: only a Pod's
// imagePullSecrets authenticate its pulls, as regcred needs.
type Node struct {
	Name string
	// Dir holds every file of the node (containerd's root and state, the
	// kubelet's root, Pod logs, CNI state, registry trust).
	Dir string
	// IP is the node's InternalIP: the address of its Pod bridge.
	IP string
	// APIServer is where the node's Pods reach the API server (host:port):
	// the node's IP and the API server's port, forwarded to its loopback
	// address. See PodAPIServerEnv.
	APIServer string

	cp         *ControlPlane
	client     kubernetes.Interface
	network    *podNetwork
	cgroupRoot string
	sandbox    *Registry
	apiProxy   *Proxy
	containerd *containerd
	kubelet    *exec.Cmd
	kubeletEnd chan struct{}
	logs       *tailBuffer
	// shimSockets were in containerd's fixed shim socket directory before
	// the node started.
	shimSockets map[string]bool
	// createdHostPaths are the hostPaths that did not exist before.
	createdHostPaths []string
	// Stop undoes only what this node made: not another node's bridge,
	// cgroups or Node object.
	madeBridge, madeCgroups, startedKubelet bool
}

// NodeOptions tune StartNode.
type NodeOptions struct {
	// Name is the Node's name; "regcred-testbed-node" if empty.
	Name string
	// Bridge is the Pod bridge's name, one only the test bed uses;
	// "regcred-br0" if empty.
	Bridge string
	// PodSubnet is a private IPv4 range for Pods; DefaultPodSubnet if
	// empty. The node's IP is its first address, which the control
	// plane's ControlPlaneOptions.NodeIP must name.
	PodSubnet string
	// Output receives the logs of containerd and the kubelet; nil
	// discards them (errors quote their last lines either way).
	Output io.Writer
}

// The node's Pod network unless NodeOptions say otherwise: the Pod
// subnet, and the node's IP, its first address.
const (
	DefaultPodSubnet = "10.217.0.0/24"
	DefaultNodeIP    = "10.217.0.1"
)

// shimSocketDir is where containerd's shims put their sockets, whatever
// containerd's own state directory.
const shimSocketDir = "/run/containerd/s"

// hostPaths are used whatever the configuration: by containerd's shims
// (runc's state, their sockets), the CNI library (its result cache), and
// the kubelet (the device plugin socket, the container log links). Stop
// removes those the node created.
var hostPaths = []string{"/run/containerd", "/var/lib/cni", "/var/lib/kubelet", "/var/log/containers"}

// NodeSupported tells why this machine cannot run a Node, or nil: a node
// needs root, cgroups and the ip command.
func NodeSupported() error {
	if os.Geteuid() != 0 {
		return errors.New("a node needs root (mounts, cgroups, network namespaces)")
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		return fmt.Errorf("a node needs cgroups: %w", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("a node needs the ip command (iproute2): %w", err)
	}
	return nil
}

// StartNode starts a node and waits until it is Ready. cp must have been
// started with ControlPlaneOptions.Node. Stop removes everything it made.
func StartNode(cp *ControlPlane, opts NodeOptions) (n *Node, err error) {
	if err := NodeSupported(); err != nil {
		return nil, err
	}
	if !cp.forNode {
		return nil, errors.New("starting a node: the control plane was not started with ControlPlaneOptions.Node (no scheduler, no node lifecycle)")
	}
	if _, err := NodeBinDir(); err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "regcred-testbed-node"
	}
	if opts.Bridge == "" {
		opts.Bridge = "regcred-br0"
	}
	if opts.PodSubnet == "" {
		opts.PodSubnet = DefaultPodSubnet
	}
	network, err := newPodNetwork(opts.Bridge, opts.PodSubnet)
	if err != nil {
		return nil, err
	}
	if ip := network.hostIP.String(); ip != cp.nodeIP {
		return nil, fmt.Errorf("starting a node with IP %s: the control plane's certificate covers %s (ControlPlaneOptions.NodeIP): Pods could not trust the API server", ip, cp.nodeIP)
	}
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return nil, err
	}
	n = &Node{
		Name: opts.Name, IP: network.hostIP.String(), cp: cp, client: client, network: network,
		cgroupRoot: "/regcred-testbed-" + opts.Name, logs: newTailBuffer(256 << 10),
		shimSockets: dirEntries(shimSocketDir),
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			n.createdHostPaths = append(n.createdHostPaths, p)
		}
	}
	out := io.Writer(n.logs)
	if opts.Output != nil {
		out = io.MultiWriter(opts.Output, n.logs)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("starting node %s: %w", n.Name, err)
			if logs := n.logs.lastLines(40); logs != "" {
				err = fmt.Errorf("%w\nlast lines of containerd and the kubelet:\n%s", err, logs)
			}
			_ = n.Stop()
			n = nil
		}
	}()
	if n.Dir, err = os.MkdirTemp("", "regcred-node-"); err != nil {
		return n, err
	}
	if err := network.up(); err != nil {
		return n, err
	}
	n.madeBridge = true
	if err := n.forwardAPIServer(); err != nil {
		return n, err
	}
	if cgroupRootExists(n.cgroupRoot) {
		return n, fmt.Errorf("cgroup %s exists: a node named %s runs here, or one was not stopped", n.cgroupRoot, n.Name)
	}
	n.madeCgroups = true
	if err := createCgroupRoot(n.cgroupRoot); err != nil {
		return n, err
	}
	sandboxImage, err := n.startSandboxRegistry()
	if err != nil {
		return n, err
	}
	if n.containerd, err = newContainerd(filepath.Join(n.Dir, "containerd")); err != nil {
		return n, err
	}
	if err := n.containerd.routeRegistry(n.sandbox.Host, n.sandbox.Host, nil); err != nil {
		return n, err
	}
	if err := network.writeConflist(n.containerd.cniConf, filepath.Join(n.Dir, "cni", "state")); err != nil {
		return n, err
	}
	if err := n.containerd.start(sandboxImage, out); err != nil {
		return n, err
	}
	if err := n.startKubelet(out); err != nil {
		return n, err
	}
	n.startedKubelet = true
	return n, n.waitReady(2 * time.Minute)
}

// startSandboxRegistry starts a registry of the node's own, anonymous and
// plain HTTP on loopback, and pushes the sandbox ("pause") image to it:
// no image can be downloaded here, and the CRI pulls the sandbox image
// without any Pod's credentials.
func (n *Node) startSandboxRegistry() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pause, err := GoProgram(ctx, WaitForTermSource)
	if err != nil {
		return "", fmt.Errorf("building the pause program: %w", err)
	}
	if n.sandbox, err = StartRegistry(RegistryOptions{}); err != nil {
		return "", fmt.Errorf("sandbox image registry: %w", err)
	}
	if _, err := PushImage(ctx, n.sandbox, "testbed/pause", "1", "", "",
		Image{Files: []File{{Path: "/pause", Content: pause}}, Entrypoint: []string{"/pause"}}); err != nil {
		return "", err
	}
	return n.sandbox.Host + "/testbed/pause:1", nil
}

func (n *Node) startKubelet(out io.Writer) error {
	kubeconfig, err := n.cp.AddUser("system:node:"+n.Name, "system:nodes")
	if err != nil {
		return err
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	healthz, err := FreePort()
	if err != nil {
		return err
	}
	n.kubelet, n.kubeletEnd, err = startKubelet(kubeletSettings{
		name: n.Name, dir: n.Dir, kubeconfig: kubeconfig, clientCA: n.cp.ClientCAFile(),
		runtime: n.containerd.Endpoint(), nodeIP: n.IP, cgroupRoot: n.cgroupRoot,
		port: port, healthzPort: healthz,
	}, out)
	return err
}

// waitReady waits until the Node reports Ready.
func (n *Node) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case <-n.kubeletEnd:
			return fmt.Errorf("the kubelet exited: %v", n.kubelet.ProcessState)
		default:
		}
		node, err := n.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err == nil {
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s was not Ready within %s", n.Name, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Logs returns the last lines containerd and the kubelet logged.
func (n *Node) Logs() string { return n.logs.String() }

// Stop deletes the node's Pods, stops the kubelet and containerd, kills
// whatever is left in the node's cgroups, and removes its mounts,
// cgroups, bridge, files and Node object, so that a node can start again
// on this machine.
func (n *Node) Stop() error {
	var errs []error
	if n.kubelet != nil {
		if err := n.deletePods(30 * time.Second); err != nil {
			errs = append(errs, err)
		}
		stopProcess(n.kubelet, n.kubeletEnd, 10*time.Second)
	}
	// Containers first, then their shims, then containerd.
	if n.madeCgroups {
		killCgroupRoot(n.cgroupRoot)
	}
	if n.containerd != nil {
		killShims(n.containerd.socket)
		n.containerd.stop()
	}
	if n.Dir != "" {
		if err := unmountUnder(n.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if n.madeCgroups {
		if err := removeCgroupRoot(n.cgroupRoot); err != nil {
			errs = append(errs, err)
		}
	}
	if n.apiProxy != nil {
		n.apiProxy.Stop()
	}
	if n.madeBridge {
		if err := n.network.down(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.sandbox != nil {
		n.sandbox.Stop()
	}
	// Another node of the test bed may run here still, and use the shared
	// paths and its shims' sockets.
	if !otherBridges(n.network.bridge) {
		for name := range dirEntries(shimSocketDir) {
			if !n.shimSockets[name] {
				_ = os.Remove(filepath.Join(shimSocketDir, name))
			}
		}
		for _, p := range n.createdHostPaths {
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
			}
		}
	}
	if n.Dir != "" {
		if err := os.RemoveAll(n.Dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", n.Dir, err))
		}
	}
	if n.startedKubelet {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting Node %s: %w", n.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping node %s: %w", n.Name, err)
	}
	return nil
}

// deletePods cordons the node, so that the controllers of what runs there
// (a Deployment's ReplicaSet) cannot put new Pods on it, deletes every Pod
// bound to it and waits until the kubelet has stopped them all (it
// removes each Pod once its containers and network are gone).
func (n *Node) deletePods(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := n.client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("cordoning node %s: %w", n.Name, err)
	}
	sel := metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name}
	for {
		pods, err := n.client.CoreV1().Pods("").List(ctx, sel)
		if err != nil {
			return fmt.Errorf("listing the Pods of node %s: %w", n.Name, err)
		}
		if len(pods.Items) == 0 {
			return nil
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				err := n.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)})
				if err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("deleting Pod %s/%s: %w", p.Namespace, p.Name, err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the kubelet did not stop the Pods of node %s within %s", n.Name, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
