// Package recovery runs regcred's recovery of Pods stuck without a pull
// secret end to end: a real kube-apiserver, etcd and
// kube-controller-manager (Deployments, ReplicaSets, PodDisruptionBudgets),
// regcred in this process registered through a real
// MutatingWebhookConfiguration over TLS, and a real registry. There is no
// kubelet: the tests report the failed pulls through the pods/status
// subresource, as a kubelet would (test/node does it with a real one).
package recovery

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/test/testbed"
)

const (
	regcredNamespace = "regcred"
	configName       = "regcred-config"
	credsSecret      = "registry-creds"
	user             = "alice"
	// password must never show in regcred's log.
	password = "alice-Pa55-recovery"
)

var env struct {
	cp     *testbed.ControlPlane
	ca     *certgen.CA
	reg    *testbed.Registry
	image  string
	client client.Client
	logs   *testbed.LogBuffer
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "recovery e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx := context.Background()
	start := time.Now()
	var err error
	if env.cp, err = testbed.StartControlPlane(testbed.ControlPlaneOptions{ControllerManager: true}); err != nil {
		return 1, err
	}
	defer env.cp.Stop()
	fmt.Fprintf(os.Stderr, "recovery e2e: control plane up in %s\n", time.Since(start).Round(time.Millisecond))
	if env.ca, err = certgen.NewCA("regcred-recovery-e2e-ca", 24*time.Hour); err != nil {
		return 1, err
	}
	if env.reg, err = testbed.StartRegistry(testbed.RegistryOptions{CA: env.ca, Users: map[string]string{user: password}}); err != nil {
		return 1, err
	}
	defer env.reg.Stop()
	if env.image, err = env.reg.Push(ctx, "team/app", "v1", user, password); err != nil {
		return 1, err
	}
	if env.client, err = client.New(env.cp.Config, client.Options{}); err != nil {
		return 1, err
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: regcredNamespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: credsSecret, Namespace: regcredNamespace}, StringData: map[string]string{"password": password}},
		// No registry yet: the workloads come first.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: configName, Namespace: regcredNamespace}, Data: map[string]string{"config.yaml": noRegistries}},
	} {
		if err := env.client.Create(ctx, o); err != nil {
			return 1, err
		}
	}
	env.logs = &testbed.LogBuffer{}
	log := zap.New(zap.WriteTo(env.logs), zap.UseDevMode(true), zap.Level(zapcore.Level(-1)))
	ctrl.SetLogger(log)
	klog.SetLogger(log)

	code := m.Run()
	if strings.Contains(env.logs.String(), password) {
		fmt.Fprintln(os.Stderr, "recovery e2e: the registry's password appears in regcred's log")
		code = 1
	}
	if code != 0 && os.Getenv("REGCRED_E2E_LOG") != "" {
		fmt.Fprintln(os.Stderr, testbed.Redact(env.logs.String(), password))
	}
	return code, nil
}

const noRegistries = "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries: []\n"

// withRegistry is the config that declares the test registry as "reg".
func withRegistry() string {
	return testbed.Config(testbed.RegistryWithCA("reg", env.reg.Host, env.ca.CertPEM, user, credsSecret, "password"))
}
