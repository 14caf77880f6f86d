package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/plan"
)

const manifest = `# the app
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: init, image: quay.io/org/init:1}]
      containers:
      - {name: web, image: docker.io/myorg/web:2}
      - {name: proxy, image: nginx}
      imagePullSecrets: [{name: mine}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: batch}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: team-a.example.com/job}]
          restartPolicy: Never
---
apiVersion: v1
kind: Pod
metadata: {name: quiet, labels: {regcred.io/inject: "false"}}
spec:
  containers: [{name: q, image: quay.io/org/q}]
`

// explainOffline runs explain on a manifest with a config file, no
// cluster, and decodes its results.
func explainOffline(t *testing.T, manifest string, args ...string) ([]explainResult, string, int) {
	t.Helper()
	cfg := writeFile(t, "config.yaml", explainConfig)
	file := writeFile(t, "app.yaml", manifest)
	out, errOut, code := runCLI(t, append([]string{"explain", "-f", file, "--config-file", cfg, "-o", "json"}, args...)...)
	if code != 0 {
		return nil, errOut, code
	}
	var res []explainResult
	if strings.HasPrefix(out, "{") {
		res = make([]explainResult, 1)
		require.NoError(t, json.Unmarshal([]byte(out), &res[0]))
	} else {
		require.NoError(t, json.Unmarshal([]byte(out), &res))
	}
	return res, errOut, code
}

// With a manifest and a config file, explain needs no cluster.
func TestExplainOffline(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	res, errOut, code := explainOffline(t, manifest, "-n", "shop", "--cluster-name", "prod")
	require.Equal(t, 0, code, errOut)
	require.Len(t, res, 3, "the Service is skipped")

	web := res[0]
	assert.Equal(t, "Deployment", web.Kind)
	assert.Equal(t, "shop", web.Namespace, "-n for objects without a namespace")
	assert.False(t, web.Live)
	assert.Equal(t, "prod", web.Cluster)
	assert.Equal(t, []img{{"quay", true, plan.Injected}, {"hub", true, plan.Injected}, {"", false, plan.NoRegistry}}, images(web))
	assert.Equal(t, []string{"init", "web", "proxy"}, []string{web.Images[0].Container, web.Images[1].Container, web.Images[2].Container})
	assert.Equal(t, []explainSecret{{Name: "mine"}, {Name: "regcred-quay", InjectedBy: "regcred", Registry: "quay", Planned: true}, {Name: "regcred-hub", InjectedBy: "regcred", Registry: "hub", Planned: true}}, web.PullSecrets)

	nightly := res[1]
	assert.Equal(t, "CronJob", nightly.Kind)
	assert.Equal(t, "batch", nightly.Namespace, "the manifest's namespace")
	assert.Equal(t, []img{{"team-a", false, plan.NamespaceNotSelected}}, images(nightly))

	quiet := res[2]
	assert.Equal(t, plan.PodOptedOut, quiet.Skipped)
	assert.Equal(t, "the Pod is labelled regcred.io/inject=false", quiet.SkipDetail)

	res, _, code = explainOffline(t, manifest, "-n", "shop", "--namespace-labels", "team=a")
	require.Equal(t, 0, code)
	assert.Equal(t, []img{{"team-a", true, plan.Injected}}, images(res[1]), "--namespace-labels")
	assert.Equal(t, map[string]string{"kubernetes.io/metadata.name": "batch", "team": "a"}, res[1].NamespaceLabels)

	res, _, code = explainOffline(t, manifest, "--namespace-labels", "regcred.io/inject=false")
	require.Equal(t, 0, code)
	assert.Equal(t, "default", res[0].Namespace, "no -n and no kubeconfig: default")
	assert.Equal(t, plan.NamespaceOptedOut, res[0].Skipped)

	res, _, code = explainOffline(t, manifest, "--exclude-namespaces", "batch,shop", "-n", "shop")
	require.Equal(t, 0, code)
	assert.Equal(t, plan.NamespaceExcluded, res[0].Skipped)
	assert.Equal(t, plan.NamespaceExcluded, res[1].Skipped)

	res, _, code = explainOffline(t, manifest, "--regcred-namespace", "shop", "-n", "shop")
	require.Equal(t, 0, code)
	assert.Equal(t, plan.NamespaceExcluded, res[0].Skipped, "regcred's own namespace")
}

// A Namespace the manifest defines is the one its Pods will be in, as
// kubectl apply makes it: its labels decide the namespaceSelectors, unless
// --namespace-labels says otherwise.
func TestExplainUsesTheNamespaceTheManifestDefines(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	withNS := "apiVersion: v1\nkind: Namespace\nmetadata: {name: batch, labels: {team: a}}\n---\n" + manifest
	res, errOut, code := explainOffline(t, withNS, "-n", "shop")
	require.Equal(t, 0, code, errOut)
	require.Len(t, res, 3, "the Namespace is no Pod nor workload")
	assert.Equal(t, []img{{"team-a", true, plan.Injected}}, images(res[1]), "batch is labelled team=a by the manifest")
	assert.Equal(t, map[string]string{"kubernetes.io/metadata.name": "batch", "team": "a"}, res[1].NamespaceLabels)
	assert.Contains(t, strings.Join(res[1].Notes, "\n"), `namespace "batch" as this manifest defines it`)
	assert.Equal(t, []img{{"quay", true, plan.Injected}, {"hub", true, plan.Injected}, {"", false, plan.NoRegistry}}, images(res[0]), "shop is not in the manifest")

	res, _, code = explainOffline(t, withNS, "-n", "shop", "--namespace-labels", "team=b")
	require.Equal(t, 0, code)
	assert.Equal(t, []img{{"team-a", false, plan.NamespaceNotSelected}}, images(res[1]), "--namespace-labels wins")
}

func TestExplainOfflineInputs(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	list := `{"apiVersion": "v1", "kind": "List", "items": [
	  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": [{"name": "a", "image": "quay.io/a"}]}},
	  {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "b"}, "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "harbor.example.com/b"}]}}}}]}`
	res, errOut, code := explainOffline(t, list)
	require.Equal(t, 0, code, errOut)
	require.Len(t, res, 2)
	assert.Equal(t, []img{{"quay", true, plan.Injected}}, images(res[0]))
	assert.Equal(t, []img{{"harbor", true, plan.Injected}}, images(res[1]))

	// Typed lists, as kubectl get -o yaml prints them.
	typed := "apiVersion: v1\nkind: PodList\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p1}, spec: {containers: [{name: a, image: quay.io/x/y}]}}\n" +
		"---\napiVersion: apps/v1\nkind: DeploymentList\nitems:\n- {metadata: {name: d1}, spec: {template: {spec: {containers: [{name: b, image: harbor.example.com/b}]}}}}\n"
	res, errOut, code = explainOffline(t, typed)
	require.Equal(t, 0, code, errOut)
	require.Len(t, res, 2)
	assert.Equal(t, "p1", res[0].Name)
	assert.Equal(t, []img{{"quay", true, plan.Injected}}, images(res[0]))
	assert.Equal(t, "Deployment", res[1].Kind)
	assert.Equal(t, []img{{"harbor", true, plan.Injected}}, images(res[1]))

	res, _, code = explainOffline(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: one, namespace: x}\nspec: {containers: [{name: a, image: quay.io/a}]}\n")
	require.Equal(t, 0, code)
	require.Len(t, res, 1, "one object: one JSON object")

	_, errOut, code = explainOffline(t, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "holds no Pod nor workload (pod, deployment, statefulset, daemonset, replicaset, job or cronjob); it holds Service")

	_, errOut, code = explainOffline(t, "this is not: [yaml")
	assert.Equal(t, 1, code)
	assert.NotEmpty(t, errOut)

	// Standard input, and a config in a ConfigMap manifest.
	cfg := writeFile(t, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  config.yaml: |\n"+indentLines(explainConfig, "    "))
	var out, stderr bytes.Buffer
	err := Run(t.Context(), []string{"explain", "-f", "-", "--config-file", cfg}, strings.NewReader(manifest), &out, &stderr)
	require.NoError(t, err, stderr.String())
	assert.Contains(t, out.String(), "Deployment default/web (from the manifest; its Pod template)\n")
	assert.Contains(t, out.String(), "Pod default/quiet (from the manifest)\n")
	assert.Contains(t, out.String(), "regcred leaves this Pod alone: the Pod is labelled regcred.io/inject=false.\n")
	assert.Contains(t, out.String(), "  regcred-hub   regcred will inject it, for registry \"hub\", when the Pod is created\n")
	assert.Contains(t, out.String(), "Config:     "+cfg+` (ConfigMap "c", key config.yaml)`+"\n")
	assert.Contains(t, out.String(), "Cluster:    (no name: registries with an inject-only cluster policy do not inject)\n")

	// A rejected config file.
	bad := writeFile(t, "bad.yaml", "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n- {name: q, type: quay, url: quay.io, usernme: {value: x}}\n")
	file := writeFile(t, "app.yaml", manifest)
	_, errOut, code = runCLI(t, "explain", "-f", file, "--config-file", bad)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `registry "q": usernme: unknown field`)
}

// Kinds the scheme does not know (a CRD's objects) are skipped like other
// objects that are no Pod nor workload: as YAML documents, and in a List,
// YAML or JSON.
func TestExplainOfflineSkipsUnknownKinds(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	const pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: quay.io/a}]}\n"
	const certificate = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: web}\nspec: {secretName: web-tls, dnsNames: [web.example.com]}\n"
	for name, doc := range map[string]string{
		"YAML documents": certificate + "---\n" + pod + "---\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: web}\nspec: {endpoints: [{port: http}]}\n",
		"a YAML List": `apiVersion: v1
kind: List
items:
- apiVersion: monitoring.coreos.com/v1
  kind: ServiceMonitor
  metadata: {name: web}
  spec: {endpoints: [{port: http}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec: {containers: [{name: a, image: quay.io/a}]}
`,
		"a JSON List": `{"apiVersion": "v1", "kind": "List", "items": [
		  {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "web"}},
		  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": [{"name": "a", "image": "quay.io/a"}]}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			res, errOut, code := explainOffline(t, doc)
			require.Equal(t, 0, code, errOut)
			require.Len(t, res, 1)
			assert.Equal(t, "Pod", res[0].Kind)
			assert.Equal(t, []img{{"quay", true, plan.Injected}}, images(res[0]))
		})
	}

	_, errOut, code := explainOffline(t, certificate)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "holds no Pod nor workload (pod, deployment, statefulset, daemonset, replicaset, job or cronjob); it holds Certificate")

	_, errOut, code = explainOffline(t, "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: cert-manager.io/v1, kind: Certificate, metadata: {name: web}}\n")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "it holds Certificate")

	for _, bad := range []string{`{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": "x"}`, "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: x\n"} {
		_, errOut, code = explainOffline(t, bad)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "not a Kubernetes object: json: cannot unmarshal string", "a malformed Pod is not skipped: %s", bad)
	}

	_, errOut, code = explainOffline(t, "metadata: {name: web}\nspec: {}\n")
	assert.Equal(t, 1, code, "no kind at all is not a Kubernetes object")
	assert.Contains(t, errOut, "not a Kubernetes object")
}

// explain --config-file takes --stored-in as validate does: a bare config
// meant for a Secret may hold inline credentials.
func TestExplainConfigFileStoredIn(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	cfg := writeFile(t, "config.yaml", quayInline)
	app := writeFile(t, "app.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: quay.io/org/a}]}\n")

	out, errOut, code := runCLI(t, "explain", "-f", app, "--config-file", cfg)
	assert.Equal(t, 1, code, "a bare config is a ConfigMap's by default")
	assert.Contains(t, errOut, "a credential must not be written inline in a ConfigMap")
	assert.NotContains(t, out+errOut, "s3cret")

	out, errOut, code = runCLI(t, "explain", "-f", app, "--config-file", cfg, "--stored-in", "secret", "-o", "json")
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out+errOut, "s3cret")
	var res explainResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, []img{{"quay", true, plan.Injected}}, images(res))

	cm := writeFile(t, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  config.yaml: |\n"+indentLines(quayInline, "    "))
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--config-file", cfg, "--stored-in", "etcd"}, `--stored-in "etcd": must be configmap or secret`},
		{[]string{"--config-file", cm, "--stored-in", "secret"}, "--stored-in secret: " + cm + " is a ConfigMap"},
		{[]string{"--config-configmap", "c", "--stored-in", "secret"}, "--stored-in: only with --config-file"},
	} {
		_, errOut, code = runCLI(t, append([]string{"explain", "-f", app}, tc.args...)...)
		assert.Equal(t, 2, code, "%s: %s", tc.args, errOut)
		assert.Contains(t, errOut, tc.msg)
	}
}

// The kubelet pulls an image volume's reference with the Pod's
// imagePullSecrets: explain reads it where the webhook does, after the
// containers, and names the volume.
func TestExplainImageVolumes(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: models}
spec:
  containers: [{name: app, image: nginx}]
  volumes:
  - {name: config, configMap: {name: c}}
  - {name: weights, image: {reference: quay.io/org/weights:1, pullPolicy: IfNotPresent}}
  - {name: unset, image: {pullPolicy: Always}}
  - {name: tokenizer, image: {reference: docker.io/myorg/tokenizer:2}}
`
	res, errOut, code := explainOffline(t, pod, "-n", "shop")
	require.Equal(t, 0, code, errOut)
	require.Len(t, res, 1)
	assert.Equal(t, []img{{"", false, plan.NoRegistry}, {"quay", true, plan.Injected}, {"hub", true, plan.Injected}}, images(res[0]))
	var named [][2]string
	for _, i := range res[0].Images {
		named = append(named, [2]string{i.Container, i.Volume})
	}
	assert.Equal(t, [][2]string{{"app", ""}, {"", "weights"}, {"", "tokenizer"}}, named)
	assert.Equal(t, []explainSecret{{Name: "regcred-quay", InjectedBy: "regcred", Registry: "quay", Planned: true}, {Name: "regcred-hub", InjectedBy: "regcred", Registry: "hub", Planned: true}}, res[0].PullSecrets)

	cfg := writeFile(t, "config.yaml", explainConfig)
	out, errOut, code := runCLI(t, "explain", "-f", writeFile(t, "pod.yaml", pod), "--config-file", cfg, "-n", "shop")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `\nvolume/weights +quay.io/org/weights:1 +quay `, out)
	assert.Regexp(t, `\nvolume/tokenizer +docker.io/myorg/tokenizer:2 +hub `, out)
}
