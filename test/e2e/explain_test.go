package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/cli"
)

// explained is what the tests read of `regcred explain -o json`.
type explained struct {
	Kind       string `json:"kind"`
	Live       bool   `json:"live"`
	Config     string `json:"config"`
	Cluster    string `json:"cluster"`
	Skipped    string `json:"skipped"`
	SkipDetail string `json:"skipDetail"`
	Images     []struct {
		Container    string  `json:"container"`
		Image        string  `json:"image"`
		Registry     string  `json:"registry"`
		Secret       string  `json:"secret"`
		Injected     bool    `json:"injected"`
		Reason       string  `json:"reason"`
		KubeletFirst *string `json:"kubeletFirst"`
	} `json:"images"`
	PullSecrets []struct {
		Name       string `json:"name"`
		InjectedBy string `json:"injectedBy"`
		Registry   string `json:"registry"`
		Planned    bool   `json:"planned"`
	} `json:"imagePullSecrets"`
	Notes []string `json:"notes"`
}

// runExplain runs the command line as program (regcred or kubectl-regcred)
// and returns its output and exit code.
func runExplain(t *testing.T, program string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cli.RunAs(t.Context(), program, append([]string{"explain"}, args...), strings.NewReader(""), &out, &errOut)
	code := 0
	if err != nil {
		code = cli.ExitCode(err)
		if !cli.Printed(err) {
			errOut.WriteString(err.Error())
		}
	}
	return out.String(), errOut.String(), code
}

// explainJSON runs regcred explain -o json against the test bed's cluster,
// telling it where regcred's config is (regcred runs in this process, not
// as a Deployment).
func explainJSON(t *testing.T, args ...string) explained {
	t.Helper()
	args = append(args, "--kubeconfig", env.cp.Kubeconfig, "--config-configmap", configName, "--cluster-name", clusterName, "--exclude-namespaces=", "-o", "json")
	out, errOut, code := runExplain(t, "regcred", args...)
	require.Equal(t, 0, code, errOut)
	var res explained
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	return res
}

// createPodEventually creates p once the namespace's ServiceAccount exists.
func createPodEventually(t *testing.T, ns string, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		got, err = clientset(t, nil).CoreV1().Pods(ns).Create(t.Context(), p.DeepCopy(), metav1.CreateOptions{})
		assert.NoError(c, err)
	}, 30*time.Second, 100*time.Millisecond)
	return got
}

// `regcred explain pod` on a Pod regcred admitted through the real API
// server: each image's registry and secret, and which of the Pod's
// imagePullSecrets regcred injected.
func TestExplainPod(t *testing.T) {
	ns := newNamespace(t)
	p := pod(env.imageA, env.imageB, "registry.k8s.io/pause:3.10")
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "own"}}
	got := createPodEventually(t, ns, p)
	require.Equal(t, []string{"own", "regcred-reg-a", "regcred-reg-b"}, secretNames(got))

	for _, args := range [][]string{{"pod", got.Name, "-n", ns}, {"pod/" + got.Name, "--namespace", ns}} {
		res := explainJSON(t, args...)
		assert.Equal(t, "Pod", res.Kind)
		assert.True(t, res.Live)
		assert.Equal(t, "ConfigMap regcred/regcred-config key config.yaml", res.Config)
		require.Len(t, res.Images, 3)
		for i, want := range []struct {
			registry, secret, reason string
			injected                 bool
		}{
			{"reg-a", "regcred-reg-a", "injected", true},
			{"reg-b", "regcred-reg-b", "injected", true},
			{"", "", "no-registry", false},
		} {
			img := res.Images[i]
			assert.Equal(t, want.registry, img.Registry, i)
			assert.Equal(t, want.secret, img.Secret, i)
			assert.Equal(t, want.reason, img.Reason, i)
			assert.Equal(t, want.injected, img.Injected, i)
			if want.injected {
				if assert.NotNil(t, img.KubeletFirst, i) {
					assert.Equal(t, want.secret, *img.KubeletFirst, "the kubelet tries regcred's secret first")
				}
			} else {
				assert.Nil(t, img.KubeletFirst, "no secret the Pod carries serves it")
			}
		}
		require.Len(t, res.PullSecrets, 3)
		assert.Equal(t, "own", res.PullSecrets[0].Name)
		assert.Empty(t, res.PullSecrets[0].InjectedBy)
		assert.Equal(t, "regcred", res.PullSecrets[1].InjectedBy)
		assert.Equal(t, "reg-a", res.PullSecrets[1].Registry)
		assert.Equal(t, "reg-b", res.PullSecrets[2].Registry)
		assert.Empty(t, res.Notes)
	}

	// The text, as a kubectl plugin, with the namespace from the kubeconfig
	// context as kubectl takes it.
	kubeconfig, err := clientcmd.LoadFromFile(env.cp.Kubeconfig)
	require.NoError(t, err)
	kubeconfig.Contexts[kubeconfig.CurrentContext].Namespace = ns
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kubeconfig, path))
	t.Setenv("KUBECONFIG", path)
	out, errOut, code := runExplain(t, "/usr/local/bin/kubectl-regcred", "pod", got.Name, "--context", kubeconfig.CurrentContext,
		"--config-configmap", configName, "--cluster-name", clusterName, "--exclude-namespaces=")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Pod "+ns+"/"+got.Name+" (in the cluster)\n")
	assert.Contains(t, out, "  regcred-reg-a  injected by regcred, for registry \"reg-a\"\n")
	assert.Contains(t, out, "  own            not regcred's\n")
}

// `regcred explain deployment/NAME` says which pull secrets the
// Deployment's Pods will get; the Pod kube-controller-manager then makes
// gets exactly those.
func TestExplainDeployment(t *testing.T) {
	ns := newNamespace(t)
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "init", Image: env.imageB}},
					Containers:     []corev1.Container{{Name: "web", Image: env.imageA}},
				},
			},
		},
	}
	require.NoError(t, env.client.Create(t.Context(), d))

	res := explainJSON(t, "deployment/web", "-n", ns)
	assert.Equal(t, "Deployment", res.Kind)
	require.Len(t, res.Images, 2)
	assert.Equal(t, "init", res.Images[0].Container)
	assert.Equal(t, "reg-b", res.Images[0].Registry)
	assert.Equal(t, "web", res.Images[1].Container)
	assert.Equal(t, "reg-a", res.Images[1].Registry)
	var planned []string
	for _, s := range res.PullSecrets {
		assert.True(t, s.Planned)
		planned = append(planned, s.Name)
	}
	assert.Equal(t, []string{"regcred-reg-b", "regcred-reg-a"}, planned)

	var pods corev1.PodList
	require.Eventually(t, func() bool {
		return env.client.List(t.Context(), &pods, client.InNamespace(ns), client.MatchingLabels(labels)) == nil && len(pods.Items) == 1
	}, 60*time.Second, 100*time.Millisecond, "kube-controller-manager made no Pod")
	assert.Equal(t, planned, secretNames(&pods.Items[0]), "explain said what the webhook did")

	// The Pod, explained in turn, says regcred injected them.
	res = explainJSON(t, "pod", pods.Items[0].Name, "-n", ns)
	require.Len(t, res.PullSecrets, 2)
	assert.Equal(t, "regcred", res.PullSecrets[0].InjectedBy)
	assert.Equal(t, "regcred", res.PullSecrets[1].InjectedBy)
}

// Without flags saying where regcred's config is, explain reads them from
// regcred's Deployment, as the chart makes it: its config, its cluster
// name, the namespaces it excludes.
func TestExplainFindsRegcredsDeployment(t *testing.T) {
	ns, excluded := newNamespace(t), newNamespace(t)
	labels := map[string]string{"app.kubernetes.io/name": "regcred"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: regcredNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0), // its flags, not its Pods: regcred runs in the test
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "regcred", Image: "ghcr.io/regcred/regcred:dev",
					Args: []string{"--cluster-name=" + clusterName, "--config-configmap=" + configName, "--config-key=config.yaml",
						"--webhook-port=9443", "--zap-log-level=info", "--exclude-namespaces=" + excluded},
				}}},
			},
		},
	}
	require.NoError(t, env.client.Create(t.Context(), d))
	t.Cleanup(func() { _ = env.client.Delete(env.ctx(), d) })

	file := filepath.Join(t.TempDir(), "pod.yaml")
	require.NoError(t, os.WriteFile(file, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: "+env.imageA+"}]\n"), 0o600))
	for _, tc := range []struct {
		ns      string
		skipped string
	}{{ns, ""}, {excluded, "namespace-excluded"}} {
		out, errOut, code := runExplain(t, "regcred", "-f", file, "-n", tc.ns, "--kubeconfig", env.cp.Kubeconfig, "-o", "json")
		require.Equal(t, 0, code, errOut)
		var res explained
		require.NoError(t, json.Unmarshal([]byte(out), &res))
		assert.Equal(t, "ConfigMap regcred/regcred-config key config.yaml (as Deployment regcred/regcred runs)", res.Config)
		assert.Equal(t, clusterName, res.Cluster)
		assert.False(t, res.Live)
		assert.Equal(t, tc.skipped, res.Skipped)
		if tc.skipped == "" {
			require.Len(t, res.Images, 1)
			assert.True(t, res.Images[0].Injected)
			assert.Equal(t, "regcred-reg-a", res.Images[0].Secret)
		}
	}
}
