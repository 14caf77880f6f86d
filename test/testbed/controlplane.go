package testbed

import (
	"context"
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
// kube-controller-manager.
type ControlPlane struct {
	Env    *envtest.Environment
	Config *rest.Config
	// Kubeconfig is a file with admin credentials.
	Kubeconfig string

	kcm *exec.Cmd
	dir string
}

// ControlPlaneOptions tune StartControlPlane.
type ControlPlaneOptions struct {
	// ControllerManager starts kube-controller-manager with the deployment,
	// replicaset and serviceaccount controllers, so that Deployments make
	// Pods and namespaces get their default ServiceAccount.
	ControllerManager bool
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
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		AttachControlPlaneOutput: opts.Output != nil,
	}
	api := env.ControlPlane.GetAPIServer()
	if opts.Output != nil {
		api.Out, api.Err = opts.Output, opts.Output
	}
	if opts.ControllerManager {
		api.Configure().Disable("disable-admission-plugins")
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	cp := &ControlPlane{Env: env, Config: cfg}
	cp.dir, err = os.MkdirTemp("", "regcred-controlplane-")
	if err != nil {
		return nil, cp.stopOnError(err)
	}
	cp.Kubeconfig = filepath.Join(cp.dir, "admin.kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, env.KubeConfig, 0o600); err != nil {
		return nil, cp.stopOnError(err)
	}
	if opts.ControllerManager {
		if err := cp.startControllerManager(opts.Output); err != nil {
			return nil, cp.stopOnError(err)
		}
	}
	return cp, nil
}

func (cp *ControlPlane) startControllerManager(out io.Writer) error {
	path, err := Bin("kube-controller-manager")
	if err != nil {
		return err
	}
	user, err := cp.Env.ControlPlane.AddUser(envtest.User{Name: "kube-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(cp.dir, "kcm.kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}
	cp.kcm = exec.Command(path, "--kubeconfig="+kubeconfig,
		"--controllers=deployment,replicaset,serviceaccount",
		"--leader-elect=false", "--secure-port=0", "--concurrent-deployment-syncs=2")
	if out == nil {
		out = io.Discard
	}
	cp.kcm.Stdout, cp.kcm.Stderr = out, out
	if err := cp.kcm.Start(); err != nil {
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	return cp.waitForDefaultServiceAccount()
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
	if cp.kcm != nil && cp.kcm.Process != nil {
		_ = cp.kcm.Process.Kill()
		_ = cp.kcm.Wait()
	}
	_ = cp.Env.Stop()
	if cp.dir != "" {
		_ = os.RemoveAll(cp.dir)
	}
}
