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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlane is a running kube-apiserver and etcd, and optionally a
// kube-controller-manager and a kube-scheduler.
type ControlPlane struct {
	Env    *envtest.Environment
	Config *rest.Config
	// Kubeconfig is a file with admin credentials.
	Kubeconfig string

	kcm, scheduler *exec.Cmd
	out            io.Writer
	dir            string
	// forNode: started with ControlPlaneOptions.Node.
	forNode bool
	// nodeIP is the address besides loopback that the API server's
	// certificate covers (ControlPlaneOptions.NodeIP).
	nodeIP string
}

// ControlPlaneOptions tune StartControlPlane.
type ControlPlaneOptions struct {
	// ControllerManager starts kube-controller-manager with the deployment,
	// replicaset, serviceaccount and disruption controllers, so that
	// Deployments make Pods, namespaces get their default ServiceAccount
	// and PodDisruptionBudgets are kept up to date (the Eviction API reads
	// their status), and the one that type-checks ValidatingAdmissionPolicies
	// (their status).
	ControllerManager bool
	// Node makes the control plane ready for a real node (StartNode): the
	// Node authorizer, API server to webhook traffic through the endpoints'
	// Pod IPs (there is no kube-proxy), a kube-scheduler, and the
	// controllers of ControllerManager plus those Pods and Services need
	// (endpoints, garbage collection, namespaces, DaemonSets, the root CA
	// ConfigMap). It implies ControllerManager. The API server's serving
	// certificate then covers NodeIP too, where Pods reach it.
	Node bool
	// NodeIP is the IP address of the node that will be started (its Pod
	// bridge's address, see NodeOptions.PodSubnet); DefaultNodeIP if
	// empty. Only with Node.
	NodeIP string
	// Output receives the components' logs; nil discards them.
	Output io.Writer
}

// StartControlPlane starts a control plane. Unlike envtest's default, the
// ServiceAccount admission plugin is on, as in a real cluster: it copies a
// ServiceAccount's imagePullSecrets into Pods before webhooks see them.
func StartControlPlane(opts ControlPlaneOptions) (*ControlPlane, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if opts.Node {
		if _, err := NodeBinDir(); err != nil { // kube-scheduler
			return nil, err
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		AttachControlPlaneOutput: opts.Output != nil,
	}
	api := env.ControlPlane.GetAPIServer()
	if opts.Output != nil {
		api.Out, api.Err = opts.Output, opts.Output
		env.ControlPlane.Etcd = &envtest.Etcd{Out: opts.Output, Err: opts.Output}
	}
	dir, err := os.MkdirTemp("", "regcred-controlplane-")
	if err != nil {
		return nil, err
	}
	if opts.Node {
		opts.ControllerManager = true
		if opts.NodeIP == "" {
			opts.NodeIP = DefaultNodeIP
		}
		// Pods reach the API server at the node's IP, and trust the CA of
		// the kube-root-ca.crt ConfigMap: that of the kubeconfigs, api.CA.
		// envtest makes no certificate where apiserver.crt exists.
		api.CertDir = filepath.Join(dir, "apiserver")
		if err := os.MkdirAll(api.CertDir, 0o700); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
		if api.CA, err = writeAPIServerCerts(api.CertDir, []string{opts.NodeIP}); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
		args := api.Configure()
		args.Set("authorization-mode", "Node,RBAC")
		args.Set("enable-aggregator-routing", "true")
		// Otherwise the API server publishes the address of the host's
		// default route as the kubernetes Service's endpoint: nothing on
		// the node may be pointed off the machine.
		args.Set("endpoint-reconciler-type", "none")
	}
	if opts.ControllerManager {
		api.Configure().Disable("disable-admission-plugins")
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("starting kube-apiserver and etcd: %w", err), os.RemoveAll(dir))
	}
	cp := &ControlPlane{Env: env, Config: cfg, out: opts.Output, dir: dir, forNode: opts.Node, nodeIP: opts.NodeIP}
	if cp.out == nil {
		cp.out = io.Discard
	}
	cp.Kubeconfig = filepath.Join(cp.dir, "admin.kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, env.KubeConfig, 0o600); err != nil {
		return nil, cp.stopOnError(err)
	}
	if opts.ControllerManager {
		controllers := "deployment,replicaset,serviceaccount,disruption,validatingadmissionpolicy-status-controller"
		if opts.Node {
			controllers += "," + nodeControllers
		}
		if err := cp.startControllerManager(controllers); err != nil {
			return nil, cp.stopOnError(err)
		}
	}
	if opts.Node {
		if err := cp.startScheduler(); err != nil {
			return nil, cp.stopOnError(err)
		}
	}
	return cp, nil
}

// nodeControllers are the controllers Pods on a real node need besides
// those ControllerManager runs. node-lifecycle-controller lifts the
// node.kubernetes.io/not-ready taint that the TaintNodesByCondition
// admission plugin puts on every new Node: without it nothing schedules.
const nodeControllers = "node-lifecycle-controller,endpoints-controller,endpointslice-controller," +
	"garbage-collector-controller,namespace-controller,daemonset-controller," +
	"root-ca-certificate-publisher-controller,pod-garbage-collector-controller"

// AddUser writes a kubeconfig for a user authenticated by a client
// certificate (CN name, O groups) and returns its path.
func (cp *ControlPlane) AddUser(name string, groups ...string) (string, error) {
	user, err := cp.Env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("adding user %s: %w", name, err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("kubeconfig of %s: %w", name, err)
	}
	f, err := os.CreateTemp(cp.dir, "*.kubeconfig")
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Write(kc); err != nil {
		return "", fmt.Errorf("writing kubeconfig of %s: %w", name, err)
	}
	return f.Name(), f.Close()
}

// ClientCAFile returns the file of the CA that signs the client
// certificates the API server accepts (those of AddUser).
func (cp *ControlPlane) ClientCAFile() string {
	return filepath.Join(cp.Env.ControlPlane.APIServer.CertDir, "client-cert-auth-ca.crt")
}

// startComponent starts a control plane binary with a system:masters
// kubeconfig as its first flag.
func (cp *ControlPlane) startComponent(name string, args ...string) (*exec.Cmd, error) {
	path, err := Bin(name)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := cp.AddUser(name, "system:masters")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = cp.out, cp.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return cmd, nil
}

func (cp *ControlPlane) startControllerManager(controllers string) error {
	var err error
	cp.kcm, err = cp.startComponent("kube-controller-manager", "--controllers="+controllers,
		"--leader-elect=false", "--secure-port=0", "--concurrent-deployment-syncs=2")
	if err != nil {
		return err
	}
	return cp.waitForDefaultServiceAccount()
}

func (cp *ControlPlane) startScheduler() error {
	var err error
	cp.scheduler, err = cp.startComponent("kube-scheduler", "--leader-elect=false", "--secure-port=0")
	return err
}

// waitForDefaultServiceAccount waits until the serviceaccount controller
// works, which tells that kube-controller-manager is up.
func (cp *ControlPlane) waitForDefaultServiceAccount() error {
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-controller-manager made no default ServiceAccount: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (cp *ControlPlane) stopOnError(err error) error {
	cp.Stop()
	return err
}

// Stop stops every component and removes their files.
func (cp *ControlPlane) Stop() {
	for _, cmd := range []*exec.Cmd{cp.scheduler, cp.kcm} {
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	_ = cp.Env.Stop()
	if cp.dir != "" {
		_ = os.RemoveAll(cp.dir)
	}
}
