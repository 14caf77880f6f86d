package node

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/regcred/regcred/test/testbed"
)

// regcred's release on the node: its namespace, the Helm release's name
// (so its resources' prefix), and where its image is pushed.
const (
	regcredNS   = "regcred"
	releaseName = "regcred"
	imageRepo   = "regcred/regcred"
	// imagePull is the Secret regcred's own Pods pull its image with
	// (the chart's imagePullSecrets: regcred serves no Pod of its own
	// namespace).
	imagePull = "image-pull"
	// The ECR registry the local endpoint serves, and the access key
	// regcred's config gives for it.
	ecrHost             = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	ecrKeyID, ecrSecret = "AKIAREGCREDNODETEST1", "node-test-secret-access-key"
	// ecrCADir is where regcred's container finds the endpoint's CA.
	ecrCADir = "/etc/regcred/ecr"
	// podSelector selects regcred's Pods.
	podSelector = "app.kubernetes.io/name=regcred,app.kubernetes.io/instance=" + releaseName
)

// release is regcred installed on the node by Helm from its own image,
// with what an admin creates beforehand in its namespace: the pull secret
// of its image, the private registry's password and CA, the ECR access
// key and the ECR endpoint's CA.
type release struct {
	b     *bed
	helm  *testbed.Helm
	ecr   *testbed.ECR
	image *testbed.RegcredImage
	// digest is the image's digest reference once pushed.
	digest string
}

// newRelease prepares regcred's namespace and the local ECR endpoint on
// the node; it uninstalls whatever is left of the release after the test.
func newRelease(t *testing.T, b *bed) *release {
	t.Helper()
	ctx := t.Context()
	r := &release{b: b}
	var err error
	r.helm, err = testbed.NewHelm(b.cp.Kubeconfig)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, r.helm.Close()) })

	// The ECR API on the node's address, where regcred's Pods reach it;
	// the registry it fronts on loopback, where containerd is sent.
	r.ecr, err = testbed.StartECROn(b.ca, time.Hour, b.node.IP)
	require.NoError(t, err)
	t.Cleanup(r.ecr.Stop)
	r.ecr.AddAccessKey(ecrKeyID, ecrSecret)
	require.NoError(t, r.ecr.Front(ecrHost, b.reg, user, password))
	front, ok := r.ecr.FrontAddr(ecrHost)
	require.True(t, ok)
	require.NoError(t, b.node.RouteRegistry(ecrHost, front, b.ca.CertPEM))

	_, err = b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: regcredNS}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		// Whatever a failed step left: the release, then the namespace.
		ctx := context.WithoutCancel(t.Context())
		if _, err := r.helm.Run(ctx, "status", releaseName, "-n", regcredNS); err == nil {
			_, err := r.helm.Run(ctx, "uninstall", releaseName, "-n", regcredNS, "--wait", "--timeout", "2m")
			assert.NoError(t, err)
		}
		_ = b.cs.CoreV1().Namespaces().Delete(ctx, regcredNS, metav1.DeleteOptions{})
	})
	b.pullSecret(t, regcredNS, imagePull, password)
	for _, o := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "private-registry"}, StringData: map[string]string{"password": password, "ca.crt": string(b.ca.CertPEM)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ecr-keys"}, StringData: map[string]string{"access-key-id": ecrKeyID, "secret-access-key": ecrSecret}},
	} {
		_, err := b.cs.CoreV1().Secrets(regcredNS).Create(ctx, o, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err = b.cs.CoreV1().ConfigMaps(regcredNS).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "ecr-ca"},
		Data:       map[string]string{"ca.crt": string(b.ca.CertPEM)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return r
}

// privateRegistry is the test bed's private registry (TLS with its own
// CA, htpasswd) in regcred's config.
func (r *release) privateRegistry() map[string]any {
	ref := func(key string) map[string]any {
		return map[string]any{"secretKeyRef": map[string]any{"name": "private-registry", "key": key}}
	}
	return map[string]any{
		"name": "private", "type": "other", "url": r.b.reg.Host,
		"connection": "secure-with-ca", "caCert": ref("ca.crt"),
		"username": map[string]any{"value": user}, "password": ref("password"),
	}
}

// ecrRegistry is the ECR registry the local endpoint serves, with an
// access key.
func ecrRegistry() map[string]any {
	ref := func(key string) map[string]any {
		return map[string]any{"secretKeyRef": map[string]any{"name": "ecr-keys", "key": key}}
	}
	return map[string]any{
		"name": "ecr", "type": "ecr", "url": "https://" + ecrHost,
		"ecr": map[string]any{"auth": "access-key", "accessKeyID": ref("access-key-id"), "secretAccessKey": ref("secret-access-key")},
	}
}

// values are the chart's values for regcred's image at tag with these
// registries, on this node: the API server's address through extraEnv
// (no kube-proxy), the ECR endpoint through extraArgs, its CA through
// extraVolumes and AWS_CA_BUNDLE.
func (r *release) values(tag string, registries ...map[string]any) map[string]any {
	v := testbed.NodeValues(r.b.node, r.b.reg.Host+"/"+imageRepo, tag, imagePull)
	v["extraEnv"] = append(v["extraEnv"].([]any), map[string]any{"name": "AWS_CA_BUNDLE", "value": ecrCADir + "/ca.crt"})
	regs := []any{}
	for _, reg := range registries {
		regs = append(regs, reg)
	}
	v["config"] = map[string]any{"registries": regs}
	v["clusterName"] = "node-test"
	// The registry listens on the machine's loopback, which is not a
	// Pod's: a login check from regcred's Pod could only fail.
	v["checkInterval"] = "0"
	v["extraArgs"] = []any{"--ecr-endpoint-url=" + r.ecr.URL}
	v["extraVolumes"] = []any{map[string]any{"name": "ecr-ca", "configMap": map[string]any{"name": "ecr-ca"}}}
	v["extraVolumeMounts"] = []any{map[string]any{"name": "ecr-ca", "mountPath": ecrCADir, "readOnly": true}}
	return v
}

// helmRelease runs helm install or upgrade of the chart with values and
// waits (--wait) until regcred's Deployment is ready. It returns how long
// helm took.
func (r *release) helmRelease(t *testing.T, verb string, values map[string]any) time.Duration {
	t.Helper()
	file, err := r.helm.ValuesFile(values)
	require.NoError(t, err)
	start := time.Now()
	_, err = r.helm.Run(t.Context(), verb, releaseName, testbed.ChartDir(), "-n", regcredNS,
		"--values", file, "--wait", "--timeout", "4m")
	require.NoError(t, err, "regcred's Pods: %s", r.describePods(t))
	return time.Since(start)
}

// pods returns regcred's Pods.
func (r *release) pods(t *testing.T) []corev1.Pod {
	t.Helper()
	list, err := r.b.cs.CoreV1().Pods(regcredNS).List(t.Context(), metav1.ListOptions{LabelSelector: podSelector})
	require.NoError(t, err)
	return list.Items
}

// describePods tells where regcred's Pods are, with the last lines each
// logged: what a failed step needs.
func (r *release) describePods(t *testing.T) string {
	t.Helper()
	var out []string
	for _, p := range r.pods(t) {
		out = append(out, p.Name+": "+describe(&p))
		log, err := r.b.node.ContainerLog(&p, "regcred")
		if err != nil {
			out = append(out, "  "+err.Error())
			continue
		}
		lines := strings.Split(strings.TrimSpace(log), "\n")
		out = append(out, "  "+strings.Join(lines[max(0, len(lines)-15):], "\n  "))
	}
	return strings.Join(out, "\n")
}

// admissions returns how many admissions regcred's running Pods counted
// with outcome, from their metrics (on the Pod IPs, over the node's
// bridge).
func (r *release) admissions(t *testing.T, outcome string) float64 {
	t.Helper()
	re := regexp.MustCompile(`^regcred_admissions_total\{outcome="` + regexp.QuoteMeta(outcome) + `"\} (\S+)$`)
	sum := 0.0
	for _, p := range r.pods(t) {
		if p.Status.PodIP == "" || p.DeletionTimestamp != nil {
			continue
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+p.Status.PodIP+":8080/metrics", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, "metrics of %s", p.Name)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				v, err := strconv.ParseFloat(m[1], 64)
				require.NoError(t, err)
				sum += v
			}
		}
		require.NoError(t, errors.Join(sc.Err(), resp.Body.Close()))
	}
	return sum
}

// deploy creates a Deployment of one Pod running image, with no
// imagePullSecrets, in ns.
func (b *bed) deploy(t *testing.T, ns, name, image string) {
	t.Helper()
	labels := map[string]string{"app": name}
	_, err := b.cs.AppsV1().Deployments(ns).Create(t.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{{Name: name, Image: image}},
					TerminationGracePeriodSeconds: ptr.To[int64](5),
				},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// deploymentPod waits until a Pod of Deployment name in ns is where done
// says, and returns it.
func (b *bed) deploymentPod(t *testing.T, ns, name string, timeout time.Duration, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last *corev1.Pod
	for {
		pods, err := b.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.DeletionTimestamp != nil {
					continue
				}
				last = p
				if done(p) {
					return p
				}
			}
		}
		select {
		case <-ctx.Done():
			require.FailNow(t, "the Deployment's Pod did not get there in time", "%s/%s after %s: %s", ns, name, timeout, describe(last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// managedSecrets returns the pull secrets regcred made, as
// namespace/name: the Secrets labelled as regcred's outside its own
// namespace (where its last good config has the label too).
func (b *bed) managedSecrets(t *testing.T) []string {
	t.Helper()
	list, err := b.cs.CoreV1().Secrets("").List(t.Context(), metav1.ListOptions{
		// Pull secrets only: not what another test's regcred keeps in its own
		// namespace (its last good config, its TLS material).
		LabelSelector: "app.kubernetes.io/managed-by=regcred",
		FieldSelector: "metadata.namespace!=" + regcredNS + ",type=" + string(corev1.SecretTypeDockerConfigJson),
	})
	require.NoError(t, err)
	out := []string{}
	for _, s := range list.Items {
		out = append(out, s.Namespace+"/"+s.Name)
	}
	return out
}

// names returns the names of objects.
func names[T any](items []T, name func(*T) string) []string {
	out := []string{}
	for i := range items {
		out = append(out, name(&items[i]))
	}
	return out
}
