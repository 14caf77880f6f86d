package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/plan"
)

// explainConfig is the live config of the fake clusters below.
const explainConfig = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: hub, type: docker, url: docker.io/myorg, username: {value: myorg}, password: {secretKeyRef: {name: hub, key: token}}}
- {name: quay, type: quay, url: quay.io, username: {value: "org+robot"}, password: {secretKeyRef: {name: quay, key: token}}}
- {name: harbor, type: other, url: harbor.example.com, pullSecret: {mode: image-pull-secret, name: harbor-pull}}
- {name: team-a, type: other, url: team-a.example.com, username: {value: u}, password: {secretKeyRef: {name: team-a, key: p}}, namespaceSelector: {matchLabels: {team: a}}}
- {name: prod-only, type: other, url: prod.example.com, username: {value: u}, password: {secretKeyRef: {name: prod, key: p}}, clusters: {mode: inject-only, names: [prod]}}
`

func namespace(name string, labels ...string) *corev1.Namespace {
	l := map[string]string{corev1.LabelMetadataName: name}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func configMap(name, data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: name}, Data: map[string]string{"config.yaml": data}}
}

// regcredDeployment is regcred's Deployment as the chart makes it.
func regcredDeployment(name string, args ...string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: name}}
	d.Spec.Template.Spec.Containers = []corev1.Container{
		{Name: "regcred", Image: "ghcr.io/regcred/regcred:0.1.0", Args: args},
	}
	return d
}

// testPod returns a Pod running images, with imagePullSecrets and
// annotations.
func testPod(ns, name string, images []string, secrets []string, annotations map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: img})
	}
	for _, s := range secrets {
		p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return p
}

func podTemplate(images ...string) corev1.PodTemplateSpec {
	var t corev1.PodTemplateSpec
	for i, img := range images {
		t.Spec.Containers = append(t.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: img})
	}
	return t
}

// cluster returns a fake cluster with regcred installed as the chart does,
// the namespaces shop, team-a (labelled team=a) and monitoring, and objs.
func cluster(objs ...client.Object) client.Reader {
	base := []client.Object{
		namespace("regcred"), namespace("shop"), namespace("team-a", "team", "a"), namespace("monitoring"),
		configMap("regcred-config", explainConfig),
		regcredDeployment("regcred", "--cluster-name=prod", "--config-configmap=regcred-config", "--config-key=config.yaml",
			"--webhook-port=9443", "--zap-log-level=info", "--exclude-namespaces=monitoring"),
	}
	return fake.NewClientBuilder().WithObjects(append(base, objs...)...).Build()
}

// runExplain runs explain against a cluster.
func runExplain(t *testing.T, c client.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := explainCommand(&explainCmd{reader: c})
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	err := cmd.ExecuteContext(t.Context())
	var ran ranError
	if errors.As(err, &ran) {
		err = ran.error
	}
	if err != nil {
		code = ExitCode(err)
		if !Printed(err) {
			errOut.WriteString(err.Error())
		}
	}
	return out.String(), errOut.String(), code
}

// explainJSON runs explain -o json and decodes its one result.
func explainJSON(t *testing.T, c client.Reader, args ...string) explainResult {
	t.Helper()
	out, errOut, code := runExplain(t, c, append(args, "-o", "json")...)
	require.Equal(t, 0, code, errOut)
	var res explainResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	return res
}

// img is what a test expects of one image.
type img struct {
	registry string
	injected bool
	reason   plan.Reason
}

func images(res explainResult) []img {
	var out []img
	for _, i := range res.Images {
		out = append(out, img{i.Registry, i.Injected, i.Reason})
	}
	return out
}

func TestExplainFromTheCluster(t *testing.T) {
	hub, quay, teamA, prod := "docker.io/myorg/web:1", "quay.io/org/worker:2", "team-a.example.com/app", "prod.example.com/app"
	objs := []client.Object{
		testPod("shop", "admitted", []string{hub, quay, "nginx"}, []string{"mine", "regcred-hub", "regcred-quay"},
			map[string]string{admission.AnnotationInjected: "regcred-hub=hub,regcred-quay=quay"}),
		testPod("shop", "missed", []string{hub}, nil, nil),
		testPod("shop", "retired", []string{"old.example.com/app"}, []string{"regcred-old"},
			map[string]string{admission.AnnotationInjected: "regcred-old=old"}),
		testPod("team-a", "scoped", []string{teamA}, []string{"regcred-team-a"}, map[string]string{admission.AnnotationInjected: "regcred-team-a=team-a"}),
		testPod("shop", "unscoped", []string{teamA}, nil, nil),
		testPod("regcred", "self", []string{hub}, nil, nil),
		testPod("monitoring", "excluded", []string{hub}, nil, nil),
		testPod("shop", "prod", []string{prod}, nil, nil),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: appsv1.DeploymentSpec{Template: podTemplate(hub, quay)}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Spec: appsv1.StatefulSetSpec{Template: podTemplate("harbor.example.com/db")}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "agent"}, Spec: appsv1.DaemonSetSpec{Template: podTemplate(quay)}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"}, Spec: appsv1.ReplicaSetSpec{Template: podTemplate(hub)}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "once"}, Spec: batchv1.JobSpec{Template: podTemplate("nginx")}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "nightly"}, Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate(quay)}}}},
	}
	c := cluster(objs...)
	for _, tc := range []struct {
		name    string
		args    []string
		kind    string
		skipped plan.Reason
		images  []img
		secrets []explainSecret
		notes   []string
	}{
		{name: "a Pod regcred patched", args: []string{"pod", "admitted", "-n", "shop"}, kind: "Pod",
			images:  []img{{"hub", true, plan.Injected}, {"quay", true, plan.Injected}, {"", false, plan.NoRegistry}},
			secrets: []explainSecret{{Name: "mine"}, {Name: "regcred-hub", InjectedBy: "regcred", Registry: "hub"}, {Name: "regcred-quay", InjectedBy: "regcred", Registry: "quay"}}},
		{name: "a Pod regcred did not patch", args: []string{"pod/missed", "-n", "shop"}, kind: "Pod",
			images: []img{{"hub", false, plan.Injected}},
			notes:  []string{`regcred injected nothing into this Pod, but would inject ["regcred-hub"] into a Pod created now`}},
		{name: "a Pod patched for a registry since removed", args: []string{"po", "retired", "--namespace", "shop"}, kind: "Pod",
			images:  []img{{"", false, plan.NoRegistry}},
			secrets: []explainSecret{{Name: "regcred-old", InjectedBy: "regcred", Registry: "old"}},
			notes:   []string{`regcred injected "regcred-old" (registry "old") when the Pod was created; today's config would not`}},
		{name: "namespace selected by its labels", args: []string{"pod", "scoped", "-n", "team-a"}, kind: "Pod",
			images:  []img{{"team-a", true, plan.Injected}},
			secrets: []explainSecret{{Name: "regcred-team-a", InjectedBy: "regcred", Registry: "team-a"}}},
		{name: "namespace not selected", args: []string{"pod", "unscoped", "-n", "shop"}, kind: "Pod",
			images: []img{{"team-a", false, plan.NamespaceNotSelected}}},
		{name: "regcred's own namespace", args: []string{"pod", "self", "-n", "regcred"}, kind: "Pod", skipped: plan.NamespaceExcluded,
			images: []img{{"hub", false, plan.NamespaceExcluded}}},
		{name: "excluded by the Deployment's --exclude-namespaces", args: []string{"pod", "excluded", "-n", "monitoring"}, kind: "Pod", skipped: plan.NamespaceExcluded,
			images: []img{{"hub", false, plan.NamespaceExcluded}}},
		{name: "--exclude-namespaces given", args: []string{"pod", "missed", "-n", "shop", "--exclude-namespaces", "shop"}, kind: "Pod", skipped: plan.NamespaceExcluded,
			images: []img{{"hub", false, plan.NamespaceExcluded}}},
		{name: "cluster name from the Deployment", args: []string{"pod", "prod", "-n", "shop"}, kind: "Pod",
			images: []img{{"prod-only", false, plan.Injected}}, notes: []string{`would inject ["regcred-prod-only"]`}},
		{name: "--cluster-name given", args: []string{"pod", "prod", "-n", "shop", "--cluster-name", "dev"}, kind: "Pod",
			images: []img{{"prod-only", false, plan.ClusterPolicy}}},
		{name: "a Deployment's template", args: []string{"deployment/web", "-n", "shop"}, kind: "Deployment",
			images:  []img{{"hub", true, plan.Injected}, {"quay", true, plan.Injected}},
			secrets: []explainSecret{{Name: "regcred-hub", InjectedBy: "regcred", Registry: "hub", Planned: true}, {Name: "regcred-quay", InjectedBy: "regcred", Registry: "quay", Planned: true}}},
		{name: "deploy NAME", args: []string{"deploy", "web", "-n", "shop"}, kind: "Deployment",
			images:  []img{{"hub", true, plan.Injected}, {"quay", true, plan.Injected}},
			secrets: []explainSecret{{Name: "regcred-hub", InjectedBy: "regcred", Registry: "hub", Planned: true}, {Name: "regcred-quay", InjectedBy: "regcred", Registry: "quay", Planned: true}}},
		{name: "a StatefulSet, the admin's secret", args: []string{"sts/db", "-n", "shop"}, kind: "StatefulSet",
			images:  []img{{"harbor", true, plan.Injected}},
			secrets: []explainSecret{{Name: "harbor-pull", InjectedBy: "regcred", Registry: "harbor", Planned: true}}},
		{name: "a DaemonSet", args: []string{"daemonset", "agent", "-n", "shop"}, kind: "DaemonSet",
			images:  []img{{"quay", true, plan.Injected}},
			secrets: []explainSecret{{Name: "regcred-quay", InjectedBy: "regcred", Registry: "quay", Planned: true}}},
		{name: "a ReplicaSet", args: []string{"replicaset.apps/web-1", "-n", "shop"}, kind: "ReplicaSet",
			images:  []img{{"hub", true, plan.Injected}},
			secrets: []explainSecret{{Name: "regcred-hub", InjectedBy: "regcred", Registry: "hub", Planned: true}}},
		{name: "a Job, public image", args: []string{"job", "once", "-n", "shop"}, kind: "Job",
			images: []img{{"", false, plan.NoRegistry}}},
		{name: "a CronJob", args: []string{"cronjobs", "nightly", "-n", "shop"}, kind: "CronJob",
			images:  []img{{"quay", true, plan.Injected}},
			secrets: []explainSecret{{Name: "regcred-quay", InjectedBy: "regcred", Registry: "quay", Planned: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := explainJSON(t, c, tc.args...)
			assert.Equal(t, tc.kind, res.Kind)
			assert.True(t, res.Live)
			assert.Equal(t, tc.skipped, res.Skipped)
			assert.Equal(t, tc.images, images(res))
			assert.Equal(t, tc.secrets, res.PullSecrets)
			require.Len(t, res.Notes, len(tc.notes), "%q", res.Notes)
			for i, n := range tc.notes {
				assert.Contains(t, res.Notes[i], n)
			}
			assert.Contains(t, res.Config, `ConfigMap regcred/regcred-config key config.yaml (as Deployment regcred/regcred runs)`)
			for _, i := range res.Images {
				if i.Injected {
					if assert.NotNil(t, i.KubeletFirst, i.Image) {
						assert.Equal(t, i.Secret, *i.KubeletFirst, "the kubelet tries the injected secret first: %s", i.Image)
					}
				}
				assert.NotEmpty(t, i.Detail)
			}

			out, errOut, code := runExplain(t, c, tc.args...)
			assert.Equal(t, 0, code, errOut)
			assert.Contains(t, out, "CONTAINER  IMAGE")
			assert.Contains(t, out, "KUBELET FIRST")
		})
	}
}

func TestExplainText(t *testing.T) {
	c := cluster(testPod("shop", "admitted", []string{"docker.io/myorg/web:1", "nginx"}, []string{"mine", "regcred-hub"},
		map[string]string{admission.AnnotationInjected: "regcred-hub=hub"}))
	out, errOut, code := runExplain(t, c, "pod", "admitted", "-n", "shop")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, `Pod shop/admitted (in the cluster)
Namespace:  shop (kubernetes.io/metadata.name=shop)
Cluster:    prod
Config:     ConfigMap regcred/regcred-config key config.yaml (as Deployment regcred/regcred runs)

CONTAINER  IMAGE                  REGISTRY  SECRET       INJECTED  KUBELET FIRST  WHY
a          docker.io/myorg/web:1  hub       regcred-hub  yes       regcred-hub    registry "hub" (docker.io/myorg) injects regcred's secret "regcred-hub"
b          nginx                  -         -            no        -              no configured registry serves docker.io/library/nginx

Image pull secrets:
  mine         not regcred's
  regcred-hub  injected by regcred, for registry "hub"
`, out)
}

// Where regcred's config is: the flags, else regcred's Deployment.
func TestExplainFindsTheConfig(t *testing.T) {
	pod := testPod("shop", "web", []string{"quay.io/org/app"}, nil, nil)
	shop := namespace("shop")
	secretConfig := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "cfg"}, Data: map[string][]byte{"registries": []byte(explainConfig)}}
	for _, tc := range []struct {
		name   string
		objs   []client.Object
		args   []string
		config string
		err    string
	}{
		{name: "flags, no Deployment needed", objs: []client.Object{configMap("mine", explainConfig)},
			args: []string{"--config-configmap", "mine"}, config: "ConfigMap regcred/mine key config.yaml"},
		{name: "a Secret in another namespace", objs: []client.Object{secretConfig},
			args: []string{"--regcred-namespace", "ops", "--config-secret", "cfg", "--config-key", "registries"}, config: "Secret ops/cfg key registries"},
		{name: "the Deployment, serve and one-dash flags", objs: []client.Object{configMap("c", explainConfig), regcredDeployment("rc", "serve", "-config-configmap", "c", "-leader-elect=false")},
			config: "ConfigMap regcred/c key config.yaml (as Deployment regcred/rc runs)"},
		{name: "the Deployment beside others", objs: []client.Object{configMap("c", explainConfig), regcredDeployment("rc", "--config-configmap=c"), regcredDeployment("other", "--port=80")},
			config: "ConfigMap regcred/c key config.yaml (as Deployment regcred/rc runs)"},
		{name: "no Deployment", err: `finding regcred's config: no Deployment in namespace "regcred" runs regcred with --config-configmap or --config-secret: pass --config-configmap or --config-secret`},
		{name: "two Deployments", objs: []client.Object{regcredDeployment("a", "--config-configmap=c"), regcredDeployment("b", "--config-secret=s")},
			err: `several Deployments in namespace "regcred" run regcred (a, b)`},
		{name: "the ConfigMap is missing", args: []string{"--config-configmap", "gone"}, err: "ConfigMap regcred/gone key config.yaml: not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithObjects(append(tc.objs, pod.DeepCopy(), shop.DeepCopy())...).Build()
			out, errOut, code := runExplain(t, c, append([]string{"pod", "web", "-n", "shop", "-o", "json"}, tc.args...)...)
			if tc.err != "" {
				assert.Equal(t, 1, code)
				assert.Contains(t, errOut, tc.err)
				return
			}
			require.Equal(t, 0, code, errOut)
			var res explainResult
			require.NoError(t, json.Unmarshal([]byte(out), &res))
			assert.Equal(t, tc.config, res.Config)
			assert.Equal(t, []img{{"quay", false, plan.Injected}}, images(res))
		})
	}
}

func TestExplainFailures(t *testing.T) {
	broken := fake.NewClientBuilder().WithObjects(namespace("shop"), configMap("c", explainConfig+"- {name: hub, type: quay, url: quay.io, password: {value: hunter2}}\n"),
		testPod("shop", "web", []string{"quay.io/a"}, nil, nil)).Build()
	_, errOut, code := runExplain(t, broken, "pod", "web", "-n", "shop", "--config-configmap", "c")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "The config in ConfigMap regcred/c key config.yaml is rejected; regcred keeps serving its last good config")
	assert.Contains(t, errOut, `registry "hub" (registries[5]): name: is also the name of registries[0]`)
	assert.NotContains(t, errOut, "hunter2")

	_, errOut, code = runExplain(t, cluster(), "pod", "nope", "-n", "shop")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `Pod "nope" not found in namespace "shop"`)

	_, errOut, code = runExplain(t, cluster(), "deployment", "nope")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `Deployment "nope" not found in namespace "default"`)
}

// A namespace explain cannot read is treated as the webhook treats it:
// labels unknown, registries scoped by namespace fail closed; a note says
// why.
func TestExplainNamespaceNotes(t *testing.T) {
	manifest := writeFile(t, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: nowhere}\nspec: {containers: [{name: a, image: team-a.example.com/x}, {name: b, image: quay.io/y}]}\n")
	res := explainJSON(t, cluster(), "-f", manifest)
	assert.Nil(t, res.NamespaceLabels)
	assert.Equal(t, []img{{"team-a", false, plan.NamespaceUnknown}, {"quay", true, plan.Injected}}, images(res))
	require.Len(t, res.Notes, 1)
	assert.Equal(t, `namespace "nowhere" does not exist: a Pod cannot be created there yet`, res.Notes[0])

	forbidden := interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.Namespace); ok {
			return apierrors.NewForbidden(corev1.Resource("namespaces"), key.Name, errors.New("no"))
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	c := fake.NewClientBuilder().WithObjects(namespace("shop"), configMap("regcred-config", explainConfig), regcredDeployment("regcred", "--config-configmap=regcred-config")).
		WithInterceptorFuncs(forbidden).Build()
	res = explainJSON(t, c, "-f", manifest, "-n", "shop", "--config-configmap", "regcred-config")
	assert.Equal(t, []img{{"team-a", false, plan.NamespaceUnknown}, {"quay", true, plan.Injected}}, images(res))
	require.Len(t, res.Notes, 1)
	assert.Contains(t, res.Notes[0], `cannot read namespace "nowhere" (Forbidden)`)

	res = explainJSON(t, c, "-f", manifest, "--config-configmap", "regcred-config", "--namespace-labels", "team=a")
	assert.Equal(t, []img{{"team-a", true, plan.Injected}, {"quay", true, plan.Injected}}, images(res), "--namespace-labels instead")
	assert.Empty(t, res.Notes)
}

// A Namespace the manifest defines keeps the labels it has in the cluster
// that the manifest does not set, as kubectl apply keeps them: team-a is
// labelled team=a in the cluster, not in the manifest.
func TestExplainMergesTheManifestsNamespaceOverTheClusters(t *testing.T) {
	manifest := writeFile(t, "app.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {owner: bob}}\n---\n"+
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team-a}\nspec: {containers: [{name: a, image: team-a.example.com/x}]}\n")
	res := explainJSON(t, cluster(), "-f", manifest)
	assert.Equal(t, []img{{"team-a", true, plan.Injected}}, images(res), "team=a kept")
	assert.Equal(t, "a", res.NamespaceLabels["team"])
	assert.Equal(t, "bob", res.NamespaceLabels["owner"])
}

// A workload's Pods get their ServiceAccount's imagePullSecrets from the
// API server before regcred sees them, when they name none: explain says
// so and plans with them.
func TestExplainAddsTheServiceAccountsSecrets(t *testing.T) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "builder"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred-hub"}}}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: appsv1.DeploymentSpec{Template: podTemplate("docker.io/myorg/web:1", "quay.io/org/w:2")}}
	d.Spec.Template.Spec.ServiceAccountName = "builder"
	res := explainJSON(t, cluster(sa, d), "deployment", "web", "-n", "shop")
	require.NotEmpty(t, res.Notes)
	assert.Contains(t, res.Notes[0], `the API server adds ServiceAccount "builder"'s (regcred-hub) before regcred sees it`)
	var planned []string
	for _, s := range res.PullSecrets {
		if s.Planned {
			planned = append(planned, s.Name)
		}
	}
	assert.Equal(t, []string{"regcred-quay"}, planned, "the hub secret is there already")

	d.Spec.Template.Spec.ServiceAccountName = "missing"
	res = explainJSON(t, cluster(d), "deployment", "web", "-n", "shop")
	assert.Contains(t, res.Notes[0], `ServiceAccount "missing" does not exist in namespace "shop" yet`)

	// A Pod in the cluster has its ServiceAccount's secrets already.
	p := testPod("shop", "p", []string{"docker.io/myorg/web:1"}, nil, nil)
	p.Spec.ServiceAccountName = "builder"
	res = explainJSON(t, cluster(sa, p), "pod", "p", "-n", "shop")
	for _, n := range res.Notes {
		assert.NotContains(t, n, "ServiceAccount")
	}
}

// With the config named (--config-configmap, --config-secret or
// --config-file), --cluster-name and --exclude-namespaces not given are
// still regcred's Deployment's, as their help says; when the Deployment
// cannot be read, a note says they are unknown.
func TestExplainConfigFlagsKeepTheDeploymentsOthers(t *testing.T) {
	objs := []client.Object{
		testPod("shop", "prod", []string{"prod.example.com/app"}, nil, nil),
		testPod("monitoring", "excluded", []string{"docker.io/myorg/web:1"}, nil, nil),
		configMap("mine", explainConfig),
	}
	cfgFile := writeFile(t, "config.yaml", explainConfig)
	for _, how := range [][]string{
		{"--config-configmap", "mine"},
		{"--config-configmap", "regcred-config"},
		{"--config-file", cfgFile},
	} {
		t.Run(strings.Join(how, " "), func(t *testing.T) {
			c := cluster(objs...)
			res := explainJSON(t, c, append([]string{"pod", "prod", "-n", "shop"}, how...)...)
			assert.Equal(t, "prod", res.Cluster, "the Deployment's --cluster-name")
			assert.Equal(t, []img{{"prod-only", false, plan.Injected}}, images(res))
			for _, n := range res.Notes {
				assert.NotContains(t, n, "unknown")
			}

			res = explainJSON(t, c, append([]string{"pod", "excluded", "-n", "monitoring"}, how...)...)
			assert.Equal(t, plan.NamespaceExcluded, res.Skipped, "the Deployment's --exclude-namespaces")

			res = explainJSON(t, c, append([]string{"pod", "prod", "-n", "shop", "--cluster-name", "dev"}, how...)...)
			assert.Equal(t, "dev", res.Cluster, "the flag given wins")
			assert.Equal(t, []img{{"prod-only", false, plan.ClusterPolicy}}, images(res))
			res = explainJSON(t, c, append([]string{"pod", "excluded", "-n", "monitoring", "--exclude-namespaces", "other"}, how...)...)
			assert.Empty(t, res.Skipped, "the flag given wins")
		})
	}

	// No Deployment to read, or not allowed to list them: a note, not a
	// silent empty cluster name.
	forbidden := interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if _, ok := list.(*appsv1.DeploymentList); ok {
			return apierrors.NewForbidden(appsv1.Resource("deployments"), "", errors.New("no"))
		}
		return c.List(ctx, list, opts...)
	}}
	for name, c := range map[string]client.Reader{
		"no Deployment": fake.NewClientBuilder().WithObjects(namespace("shop"), configMap("mine", explainConfig), testPod("shop", "p", []string{"quay.io/a"}, nil, nil)).Build(),
		"forbidden": fake.NewClientBuilder().WithObjects(namespace("shop"), configMap("mine", explainConfig), testPod("shop", "p", []string{"quay.io/a"}, nil, nil)).
			WithInterceptorFuncs(forbidden).Build(),
	} {
		t.Run(name, func(t *testing.T) {
			res := explainJSON(t, c, "pod", "p", "-n", "shop", "--config-configmap", "mine")
			assert.Empty(t, res.Cluster)
			require.NotEmpty(t, res.Notes)
			assert.Contains(t, res.Notes[0], "this cluster's name (--cluster-name) and the namespaces regcred excludes (--exclude-namespaces) are unknown")

			res = explainJSON(t, c, "pod", "p", "-n", "shop", "--config-configmap", "mine", "--cluster-name", "prod")
			require.NotEmpty(t, res.Notes)
			assert.Contains(t, res.Notes[0], "the namespaces regcred excludes (--exclude-namespaces) are unknown")
			assert.NotContains(t, res.Notes[0], "--cluster-name")

			out, errOut, code := runExplain(t, c, "pod", "p", "-n", "shop", "--config-configmap", "mine")
			assert.Equal(t, 0, code, errOut)
			assert.Contains(t, out, "Notes:\n  - ")
			assert.Contains(t, out, "(--cluster-name) and the namespaces regcred excludes (--exclude-namespaces) are unknown")

			res = explainJSON(t, c, "pod", "p", "-n", "shop", "--config-configmap", "mine", "--cluster-name", "prod", "--exclude-namespaces", "monitoring")
			for _, n := range res.Notes {
				assert.NotContains(t, n, "unknown", "nothing to look up")
			}
		})
	}
}

// explain loads the live config without an ECR token minter (it reads no
// credential and calls no AWS API): its ECR registries, exact or glob,
// have no provider, and are explained as the webhook decides for them.
func TestExplainECRWithoutMinter(t *testing.T) {
	cfg := `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: ecr, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
- {name: ecr-any, type: ecr, url: "*.dkr.ecr.*.amazonaws.com", ecr: {auth: iam-role}}
`
	exact, glob := "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1", "210987654321.dkr.ecr.us-east-1.amazonaws.com/tool:2"
	c := fake.NewClientBuilder().WithObjects(namespace("shop"), configMap("c", cfg),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: appsv1.DeploymentSpec{Template: podTemplate(exact, glob)}}).Build()
	res := explainJSON(t, c, "deployment/web", "-n", "shop", "--config-configmap", "c")
	assert.Equal(t, []img{{"ecr", true, plan.Injected}, {"ecr-any", true, plan.Injected}}, images(res))
	assert.Equal(t, []explainSecret{
		{Name: "regcred-ecr", InjectedBy: "regcred", Registry: "ecr", Planned: true},
		{Name: "regcred-ecr-any", InjectedBy: "regcred", Registry: "ecr-any", Planned: true},
	}, res.PullSecrets)

	out, errOut, code := runExplain(t, c, "deployment/web", "-n", "shop", "--config-configmap", "c")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `registry "ecr" (123456789012.dkr.ecr.eu-west-1.amazonaws.com) injects regcred's secret "regcred-ecr"`)
	assert.Empty(t, errOut)
}
