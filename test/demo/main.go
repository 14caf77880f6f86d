// Command demo runs regcred's main job on an embedded default: a local
// control plane and a private registry, regcred with an example config, and
// a Deployment whose Pod gets working pull credentials without asking.
// Where this machine can run a node (root, cgroups), regcred runs there
// from its own image, installed by helm, and the kubelet pulls the
// Deployment's image; elsewhere regcred runs in this process and the pull
// is checked with the Pod's secrets resolved as the kubelet does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/authn/k8schain"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/test/testbed"
)

func main() {
	keep := flag.Bool("keep", false, "keep the control plane and regcred running after the demo, for kubectl")
	verbose := flag.Bool("v", false, "show regcred's log (with a node: the components' logs)")
	inProcess := flag.Bool("in-process", false, "run regcred in this process, without a node, even where a node could run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	setLogger(*verbose)
	var err error
	if why := testbed.NodeSupported(); why == nil && !*inProcess {
		err = runOnNode(ctx, *keep, *verbose)
	} else {
		if why != nil {
			fmt.Printf("==> this machine cannot run a node (%v): regcred runs in this process, without a node\n", why)
		}
		err = run(ctx, *keep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// step prints what is about to happen and, when done, how long it took.
func step(what string, f func() error) error {
	fmt.Printf("==> %s ... ", what)
	start := time.Now()
	err := f()
	if err != nil {
		fmt.Println("failed")
		return err
	}
	fmt.Printf("done (%s)\n", time.Since(start).Round(10*time.Millisecond))
	return nil
}

// setLogger sends regcred's, controller-runtime's and client-go's logs to
// stderr, or nowhere.
func setLogger(verbose bool) {
	logOut := io.Writer(io.Discard)
	if verbose {
		logOut = os.Stderr
	}
	log := zap.New(zap.WriteTo(logOut))
	ctrl.SetLogger(log)
	klog.SetLogger(log)
}

func run(ctx context.Context, keep bool) error {
	fmt.Println("==> test bed binaries (built once from the Go module proxy, then cached; the first build takes ~15 min on 2 cores)")
	if _, err := testbed.BinDir(); err != nil {
		return err
	}
	var cp *testbed.ControlPlane
	if err := step("starting kube-apiserver, etcd and kube-controller-manager", func() (err error) {
		cp, err = testbed.StartControlPlane(testbed.ControlPlaneOptions{ControllerManager: true})
		return err
	}); err != nil {
		return err
	}
	defer cp.Stop()

	ca, err := certgen.NewCA("regcred-demo-ca", 24*time.Hour)
	if err != nil {
		return err
	}
	const user, password = "demo", "demo-Pa55word"
	var reg *testbed.Registry
	var image string
	if err := step("starting a private registry (TLS, htpasswd) and pushing an image", func() (err error) {
		if reg, err = testbed.StartRegistry(testbed.RegistryOptions{CA: ca, Users: map[string]string{user: password}}); err != nil {
			return err
		}
		image, err = reg.Push(ctx, "team/web", "v1", user, password)
		return err
	}); err != nil {
		return err
	}
	defer reg.Stop()

	c, err := client.New(cp.Config, client.Options{})
	if err != nil {
		return err
	}
	cfg := exampleConfig(reg, ca)
	if err := step("storing regcred's config (ConfigMap regcred/regcred-config)", func() error {
		return storeConfig(ctx, c, cfg, password)
	}); err != nil {
		return err
	}
	fmt.Println(indent(cfg, "    "))

	// regcred stops before the control plane it talks to.
	regcredCtx, stopRegcred := context.WithCancel(ctx)
	var r *testbed.Regcred
	defer func() {
		stopRegcred()
		if r != nil {
			r.Wait()
		}
	}()
	if err := step("starting regcred and registering its MutatingWebhookConfiguration", func() (err error) {
		opts := app.DefaultOptions()
		opts.Namespace, opts.ConfigMap, opts.ClusterName = "regcred", "regcred-config", "demo"
		opts.MetricsAddr, opts.ProbeAddr = "0", "0"
		r, err = testbed.StartRegcred(regcredCtx, cp.Config, ca, opts, app.Deps{})
		if err != nil {
			return err
		}
		if st := r.App.ConfigStatus(); st.LastError != nil {
			return st.LastError
		}
		return nil
	}); err != nil {
		return err
	}

	var p corev1.Pod
	if err := step("applying Deployment demo/web (image "+image+", no imagePullSecrets)", func() error {
		return deploy(ctx, c, image, &p)
	}); err != nil {
		return err
	}
	fmt.Printf("\nPod %s/%s, created by kube-controller-manager, was admitted with:\n", p.Namespace, p.Name)
	fmt.Println("  imagePullSecrets:")
	for _, s := range p.Spec.ImagePullSecrets {
		fmt.Printf("  - name: %s\n", s.Name)
	}
	fmt.Printf("  annotation regcred.io/injected: %s\n\n", p.Annotations["regcred.io/injected"])

	if err := prove(ctx, cp, reg, &p, image); err != nil {
		return err
	}
	if keep {
		fmt.Printf("\nThe control plane keeps running; try:\n  export KUBECONFIG=%s\n  kubectl get pods -n demo -o yaml\nCtrl-C stops it.\n", cp.Kubeconfig)
		<-ctx.Done()
	}
	return nil
}

func exampleConfig(reg *testbed.Registry, ca *certgen.CA) string {
	return fmt.Sprintf(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- name: private
  type: other
  url: %s
  default: true
  connection: secure-with-ca
  caCert:
    value: |
%s
  username: {value: demo}
  password: {secretKeyRef: {name: private-registry, key: password}}
  clusters: {mode: inject-everywhere-except, names: [sandbox]}
  pullSecret: {mode: registry-credentials}
- name: hub
  type: docker
  url: docker.io/myorg
  username: {value: myorg}
  password: {secretKeyRef: {name: private-registry, key: hub-token}}
`, reg.Host, indent(string(ca.CertPEM), "      "))
}

func storeConfig(ctx context.Context, c client.Client, cfg, password string) error {
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "regcred"}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "private-registry", Namespace: "regcred"},
			StringData: map[string]string{"password": password, "hub-token": "dckr_pat_example"}, //nolint:gosec // the demo registry's throwaway credentials
		},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "regcred-config", Namespace: "regcred"},
			Data:       map[string]string{"config.yaml": cfg},
		},
	} {
		if err := c.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

func deploy(ctx context.Context, c client.Client, image string, out *corev1.Pod) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}); err != nil {
		return err
	}
	labels := map[string]string{"app": "web"}
	if err := c.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
			},
		},
	}); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace("demo"), client.MatchingLabels(labels)); err != nil {
			return err
		}
		if len(pods.Items) > 0 {
			*out = pods.Items[0]
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("kube-controller-manager made no Pod within a minute")
}

// prove fetches the image's manifest with the Pod's own imagePullSecrets,
// resolved the way the kubelet resolves them, and shows that without them
// the registry refuses.
func prove(ctx context.Context, cp *testbed.ControlPlane, reg *testbed.Registry, p *corev1.Pod, image string) error {
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	var names []string
	for _, s := range p.Spec.ImagePullSecrets {
		names = append(names, s.Name)
	}
	kc, err := k8schain.New(ctx, cs, k8schain.Options{Namespace: p.Namespace, ServiceAccountName: kauth.NoServiceAccount, ImagePullSecrets: names})
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithTransport(reg.Transport), remote.WithAuthFromKeychain(kc))
	if err != nil {
		return fmt.Errorf("pulling with the Pod's imagePullSecrets: %w", err)
	}
	fmt.Printf("Proof: with the Pod's imagePullSecrets (resolved by k8schain, as the kubelet does)\n  GET manifest %s -> %s, digest %s\n", image, desc.MediaType, desc.Digest)
	_, err = remote.Get(ref, remote.WithContext(ctx), remote.WithTransport(reg.Transport), remote.WithAuth(authn.Anonymous))
	if err == nil {
		return errors.New("the registry served the image without credentials; the demo proves nothing")
	}
	fmt.Printf("Without them:\n  GET manifest %s -> %s\n", image, firstLine(err.Error()))
	return nil
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}
