package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/test/testbed"
)

// nodeDemo is the demo on a real node: regcred's image built and pushed
// to a private registry, installed by helm, and a Deployment whose image
// lives in that registry, naming no pull secret, pulled by the kubelet
// with the one regcred injects; the same Deployment in a namespace that
// opted out is refused.
type nodeDemo struct {
	out  io.Writer // the components' logs
	cp   *testbed.ControlPlane
	node *testbed.Node
	reg  *testbed.Registry
	cs   kubernetes.Interface
	helm *testbed.Helm
	// app is the workload's image; regcred's is repo:tag.
	app, repo, tag string
}

// The demo registry's only user, and regcred's namespace.
const (
	demoUser, demoPassword = "demo", "demo-Pa55word"
	regcredNS              = "regcred"
)

func runOnNode(ctx context.Context, keep, verbose bool) error {
	d := &nodeDemo{out: io.Discard}
	if verbose {
		d.out = os.Stderr
	}
	fmt.Println("==> test bed binaries, a node's too (built once from the Go module proxy and Debian's packages, then cached; the first build takes ~15 min on 2 cores)")
	if _, err := testbed.NodeBinDir(); err != nil {
		return err
	}
	defer d.stop()
	for _, s := range []struct {
		what string
		f    func(context.Context) error
	}{
		{"starting kube-apiserver, etcd, kube-controller-manager and kube-scheduler", d.startControlPlane},
		{"starting a node: containerd, runc, a CNI bridge and a kubelet (no registry credentials on it)", d.startNode},
		{"starting a private registry (TLS with its own CA, htpasswd), pushing the app's image; the node trusts the CA (hosts.toml)", d.startRegistry},
		{"building regcred's image as make image does (this machine's platform only) and pushing it to the private registry", d.pushRegcred},
		{"namespace regcred: the pull secret of regcred's image, the registry's password and CA", d.prepareNamespace},
	} {
		if err := step(s.what, func() error { return s.f(ctx) }); err != nil {
			return err
		}
	}
	values, err := yaml.Marshal(d.values())
	if err != nil {
		return err
	}
	fmt.Printf("==> regcred's values: its image and pull secret, the API server's address on this node (no kube-proxy), the private registry\n%s\n", indent(string(values), "    "))
	if err := step("helm install regcred charts/regcred -n regcred --values <those> --wait: its Pods pull its image and become Ready", func() error {
		return d.install(ctx)
	}); err != nil {
		return err
	}
	if err := d.showRegcred(ctx); err != nil {
		return err
	}
	var p *corev1.Pod
	if err := step("applying Deployment demo/web (image "+d.app+", no imagePullSecrets) and waiting for it to run", func() (err error) {
		p, err = d.deploy(ctx, "demo", nil, running)
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("\nPod %s/%s is %s on node %s (IP %s); the kubelet pulled its image with\n  imagePullSecrets: %v\n  annotation regcred.io/injected: %s\n\n",
		p.Namespace, p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP, testbed.PodSecretNames(p), p.Annotations["regcred.io/injected"])
	if err := step("the same Deployment in namespace demo-opted-out (labelled regcred.io/inject=false)", func() (err error) {
		p, err = d.deploy(ctx, "demo-opted-out", map[string]string{"regcred.io/inject": "false"}, pullRefused)
		return err
	}); err != nil {
		return err
	}
	w := p.Status.ContainerStatuses[0].State.Waiting
	fmt.Printf("\nPod %s/%s: %s, imagePullSecrets %v:\n  %s\nThe difference is regcred.\n", p.Namespace, p.Name, w.Reason, testbed.PodSecretNames(p), w.Message)
	if keep {
		fmt.Printf("\nThe cluster keeps running; try:\n  export KUBECONFIG=%s\n  kubectl get pods -A -o wide\n  kubectl -n regcred get configmap regcred-status -o yaml\nCtrl-C stops it.\n", d.cp.Kubeconfig)
		<-ctx.Done()
	}
	return nil
}

func (d *nodeDemo) startControlPlane(context.Context) (err error) {
	if d.cp, err = testbed.StartControlPlane(testbed.ControlPlaneOptions{Node: true, Output: d.out}); err != nil {
		return err
	}
	if d.helm, err = testbed.NewHelm(d.cp.Kubeconfig); err != nil {
		return err
	}
	d.cs, err = kubernetes.NewForConfig(d.cp.Config)
	return err
}

func (d *nodeDemo) startNode(context.Context) (err error) {
	d.node, err = testbed.StartNode(d.cp, testbed.NodeOptions{Output: d.out})
	return err
}

func (d *nodeDemo) startRegistry(ctx context.Context) error {
	ca, err := certgen.NewCA("regcred-demo-ca", 24*time.Hour)
	if err != nil {
		return err
	}
	if d.reg, err = testbed.StartRegistry(testbed.RegistryOptions{CA: ca, Users: map[string]string{demoUser: demoPassword}}); err != nil {
		return err
	}
	web, err := testbed.GoProgram(ctx, testbed.WaitForTermSource)
	if err != nil {
		return err
	}
	if _, err := testbed.PushImage(ctx, d.reg, "team/web", "v1", demoUser, demoPassword, testbed.Image{
		Files: []testbed.File{{Path: "/web", Content: web}}, Entrypoint: []string{"/web", "serving"},
	}); err != nil {
		return err
	}
	d.app = d.reg.Host + "/team/web:v1"
	return d.node.TrustRegistry(d.reg)
}

func (d *nodeDemo) pushRegcred(ctx context.Context) error {
	im, err := testbed.BuildRegcredImage(ctx)
	if err != nil {
		return err
	}
	d.repo, d.tag = d.reg.Host+"/regcred/regcred", im.Metadata.Version
	_, err = im.Push(ctx, d.reg, "regcred/regcred", d.tag, demoUser, demoPassword)
	return err
}

func (d *nodeDemo) prepareNamespace(ctx context.Context) error {
	if _, err := d.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: regcredNS}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	pull, err := testbed.PullSecret(regcredNS, "image-pull", d.reg.Host, demoUser, demoPassword)
	if err != nil {
		return err
	}
	for _, s := range []*corev1.Secret{pull, {
		ObjectMeta: metav1.ObjectMeta{Name: "private-registry", Namespace: regcredNS},
		StringData: map[string]string{"password": demoPassword, "ca.crt": string(d.reg.CA.CertPEM)},
	}} {
		if _, err := d.cs.CoreV1().Secrets(regcredNS).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// values are the chart's values: regcred's image and its pull secret,
// the API server's address on this node, and the private registry.
func (d *nodeDemo) values() map[string]any {
	v := testbed.NodeValues(d.node, d.repo, d.tag, "image-pull")
	ref := func(key string) map[string]any {
		return map[string]any{"secretKeyRef": map[string]any{"name": "private-registry", "key": key}}
	}
	v["config"] = map[string]any{"registries": []any{map[string]any{
		"name": "private", "type": "other", "url": d.reg.Host,
		"connection": "secure-with-ca", "caCert": ref("ca.crt"),
		"username": map[string]any{"value": demoUser}, "password": ref("password"),
	}}}
	// The registry listens on this machine's loopback, not a Pod's.
	v["checkInterval"] = "0"
	return v
}

func (d *nodeDemo) install(ctx context.Context) error {
	file, err := d.helm.ValuesFile(d.values())
	if err != nil {
		return err
	}
	_, err = d.helm.Run(ctx, "install", "regcred", testbed.ChartDir(), "-n", regcredNS, "--values", file, "--wait", "--timeout", "4m")
	return err
}

func (d *nodeDemo) showRegcred(ctx context.Context) error {
	pods, err := d.cs.CoreV1().Pods(regcredNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=regcred"})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		fmt.Printf("    %s on %s, %s, image %s (pulled with %v)\n", p.Name, p.Spec.NodeName, p.Status.Phase, p.Spec.Containers[0].Image, testbed.PodSecretNames(&p))
	}
	return nil
}

// deploy creates namespace ns with labels and the Deployment web in it,
// and waits until its Pod is where done says.
func (d *nodeDemo) deploy(ctx context.Context, ns string, labels map[string]string, done func(*corev1.Pod) bool) (*corev1.Pod, error) {
	if _, err := d.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	app := map[string]string{"app": "web"}
	if _, err := d.cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: app},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: app},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: d.app}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		pods, err := d.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return nil, err
		}
		for i := range pods.Items {
			if done(&pods.Items[i]) {
				return &pods.Items[i], nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil, fmt.Errorf("the Pod of Deployment %s/web did not get there within 2 minutes", ns)
}

func running(p *corev1.Pod) bool {
	s := p.Status.ContainerStatuses
	return p.Status.Phase == corev1.PodRunning && len(s) > 0 && s[0].State.Running != nil
}

func pullRefused(p *corev1.Pod) bool {
	s := p.Status.ContainerStatuses
	if len(s) == 0 || s[0].State.Waiting == nil {
		return false
	}
	r := s[0].State.Waiting.Reason
	return r == "ErrImagePull" || r == "ImagePullBackOff"
}

// stop stops what started, the node before the control plane.
func (d *nodeDemo) stop() {
	var errs []error
	if d.node != nil {
		errs = append(errs, d.node.Stop())
	}
	if d.reg != nil {
		d.reg.Stop()
	}
	if d.helm != nil {
		errs = append(errs, d.helm.Close())
	}
	if d.cp != nil {
		d.cp.Stop()
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "demo: stopping:", err)
	}
}
