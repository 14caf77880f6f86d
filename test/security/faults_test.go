package security

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/regcred/regcred/pkg/secretstore"
	"github.com/regcred/regcred/pkg/status"
	"github.com/regcred/regcred/test/testbed"
)

// setConfig stores a new registry config, as the admin does.
func setConfig(t *testing.T, mutate func(string) string) (restore func()) {
	t.Helper()
	ctx := t.Context()
	var cm corev1.ConfigMap
	require.NoError(t, env.admin.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: "regcred-config"}, &cm))
	before := cm.Data["config.yaml"]
	cm.Data["config.yaml"] = mutate(before)
	require.NoError(t, env.admin.Update(ctx, &cm))
	return func() {
		var cm corev1.ConfigMap
		require.NoError(t, env.admin.Get(context.Background(), client.ObjectKey{Namespace: regcredNS, Name: "regcred-config"}, &cm))
		cm.Data["config.yaml"] = before
		require.NoError(t, env.admin.Update(context.Background(), &cm))
	}
}

// The API server unreachable for 30s: no replica exits, admissions go on
// from what regcred has, and the leader's work resumes after.
func TestAPIServerOutage(t *testing.T) {
	ctx := t.Context()
	ns := testbed.NewNamespace(t, env.admin, "outage-")
	cs := clientset(t, nil)
	_, err := cs.CoreV1().Pods(ns).Create(ctx, pod(env.image), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NotNil(t, secretOf(t, ns, "regcred-reg"))

	env.apiLink.SetDown(true)
	downSince := time.Now()
	for time.Since(downSince) < 30*time.Second {
		// Steady state needs no API call: admissions there go on.
		p, err := cs.CoreV1().Pods(ns).Create(ctx, pod(env.image), metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"regcred-reg"}, testbed.PodSecretNames(p), "admitted %s into the outage", time.Since(downSince).Round(time.Second))
		time.Sleep(time.Second)
	}
	env.apiLink.SetDown(false)
	for _, r := range env.replicas {
		assert.False(t, r.Exited(), "replica %s exited during the outage", r.Name)
	}

	// Leader-only work resumes: a credential change reaches the secret.
	before := secretOf(t, ns, "regcred-reg").Data[corev1.DockerConfigJsonKey]
	require.NoError(t, env.admin.Patch(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: regcredNS, Name: "reg-creds"}},
		client.RawPatch("application/merge-patch+json", []byte(`{"stringData":{"password":"`+canary+`-rotated"}}`))))
	t.Cleanup(func() {
		_ = env.admin.Patch(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: regcredNS, Name: "reg-creds"}},
			client.RawPatch("application/merge-patch+json", []byte(`{"stringData":{"password":"`+canary+`"}}`)))
	})
	rotated := base64.StdEncoding.EncodeToString([]byte(user + ":" + canary + "-rotated"))
	require.Eventually(t, func() bool {
		s := secretOf(t, ns, "regcred-reg")
		// Compared, never printed: the data holds a credential.
		return s != nil && string(s.Data[corev1.DockerConfigJsonKey]) != string(before) &&
			strings.Contains(string(s.Data[corev1.DockerConfigJsonKey]), `"auth":"`+rotated+`"`)
	}, time.Minute, 100*time.Millisecond, "after the outage, the leader brings pull secrets up to date again, with the new password")
	_, err = leader(ctx)
	require.NoError(t, err, "a replica leads again")
}

// A replica that starts while the stored config is broken serves the last
// good one, and reports both.
func TestRestartWithABrokenConfig(t *testing.T) {
	ctx := t.Context()
	for _, r := range env.replicas {
		r.Stop()
	}
	restore := setConfig(t, func(s string) string { return strings.Replace(s, "type: other", "type: nexus", 1) })
	r := env.replicas["replica-a"]
	// Registered before the start, so that a start that fails does not
	// leave the rest of the package with no replica and a broken config.
	started := false
	t.Cleanup(func() {
		restore()
		if !started {
			require.NoError(t, r.start())
		}
		require.NoError(t, env.replicas["replica-b"].start())
		require.NoError(t, waitReady(2, time.Minute))
	})
	require.NoError(t, r.start())
	started = true
	require.NoError(t, waitReady(1, time.Minute))

	ns := testbed.NewNamespace(t, env.admin, "lastgood-")
	p, err := clientset(t, nil).CoreV1().Pods(ns).Create(ctx, pod(env.image), metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"regcred-reg"}, testbed.PodSecretNames(p), "the last good config serves")
	assert.Contains(t, r.Log.String(), "serving the last good config")
	var rep status.Report
	require.Eventually(t, func() bool {
		var cm corev1.ConfigMap
		if env.admin.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: "regcred-status"}, &cm) != nil {
			return false
		}
		return yaml.Unmarshal([]byte(cm.Data["status.yaml"]), &rep) == nil && rep.Config.ServingLastGood
	}, eventually, tick, "the status reports the last good config serving")
	assert.Contains(t, rep.Config.LastError, `type: "nexus" is not one of`, "and the rejected one")
	assert.NotEmpty(t, rep.Config.LastGoodLoadedAt)
}

// No credential shows, at the highest log level, in the replicas' logs,
// the events, the status, the metrics, or what Pods carry.
func TestNoCredentialAnywhere(t *testing.T) {
	ctx := t.Context()
	ns := testbed.NewNamespace(t, env.admin, "canary-")
	w := &testbed.Warnings{}
	bad := pod(env.image, "Quay.io/x/y", "not a reference!")
	p, err := clientset(t, w).CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{})
	require.NoError(t, err)
	// A change is rejected (events, status), then restored.
	// An unknown field whose value is the canary: the rejection must not
	// quote it.
	restore := setConfig(t, func(s string) string { return addField(s, "usernme: {value: "+canary+"}") })
	// assert, not require: the config is restored whatever happens.
	assert.Eventually(t, func() bool {
		return len(configEvents("ConfigRejected", "", func(note string) bool { return strings.Contains(note, "usernme: unknown field") })) > 0
	}, eventually, tick, "the change with the canary in it was rejected, with an event")
	restore()
	// Every replica running loads the config restored: all it said of
	// the rejected one is said by then.
	restored := configVersion(t)
	running := 0
	for _, r := range env.replicas {
		if !r.Exited() {
			running++
		}
	}
	require.Eventually(t, func() bool {
		return len(configEvents("ConfigLoaded", restored, nil)) >= running
	}, eventually, tick, "the %d replicas running did not all load the config restored (version %s)", running, restored)

	requireNoCanary(t, "warnings", strings.Join(w.Take(), "\n"))
	requireNoCanary(t, "the Pod's annotations", strings.Join(mapValues(p.Annotations), "\n"))
	var events eventsv1.EventList
	require.NoError(t, env.admin.List(ctx, &events))
	var notes []string
	for _, e := range events.Items {
		notes = append(notes, e.Note)
	}
	requireNoCanary(t, "events", strings.Join(notes, "\n"))
	var cm corev1.ConfigMap
	require.NoError(t, env.admin.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: "regcred-status"}, &cm))
	requireNoCanary(t, "the status ConfigMap", cm.Data["status.yaml"])
	requireNoCanary(t, "metrics", scrape(t))
	for _, out := range env.outputs {
		requireNoCanary(t, "the replicas' logs", out())
	}
	// The canary is where it belongs: the pull secret holds it.
	s := secretOf(t, ns, "regcred-reg")
	require.NotNil(t, s)
	assert.True(t, strings.Contains(string(s.Data[corev1.DockerConfigJsonKey]), base64.StdEncoding.EncodeToString([]byte(user+":"+canary))), "the test looks for the right thing")
}

// configVersion returns the resource version of the stored config.
func configVersion(t *testing.T) string {
	t.Helper()
	var cm corev1.ConfigMap
	require.NoError(t, env.admin.Get(t.Context(), client.ObjectKey{Namespace: regcredNS, Name: "regcred-config"}, &cm))
	return cm.ResourceVersion
}

// configEvents returns the Events of this reason about the config: about
// its version if version is not empty, with a note note accepts if note
// is not nil. None if they cannot be listed: it is polled.
func configEvents(reason, version string, note func(string) bool) []eventsv1.Event {
	var events eventsv1.EventList
	if err := env.admin.List(context.Background(), &events); err != nil {
		return nil
	}
	var out []eventsv1.Event
	for _, e := range events.Items {
		if e.Reason == reason && e.Regarding.Namespace == regcredNS && e.Regarding.Name == "regcred-config" &&
			(version == "" || e.Regarding.ResourceVersion == version) && (note == nil || note(e.Note)) {
			out = append(out, e)
		}
	}
	return out
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// addField adds a field to the config's first registry, at the indentation
// of its type field.
func addField(config, field string) string {
	lines := strings.Split(config, "\n")
	for i, l := range lines {
		if strings.Contains(l, "type: other") {
			indent := l[:len(l)-len(strings.TrimLeft(l, " -"))]
			indent = strings.Repeat(" ", len(indent))
			return strings.Join(append(lines[:i+1], append([]string{indent + field}, lines[i+1:]...)...), "\n")
		}
	}
	return config
}

// A pull secret an admission named and no replica could create (here an
// admission policy refuses every Secret in the namespace) is recorded in
// the index as pending, on the API server: the leader's sweeps write it
// even if the replica that admitted the Pod gives up or stops. Once the
// policy goes, the secret is made.
func TestPullSecretNobodyCouldCreateIsHandedOver(t *testing.T) {
	ctx := t.Context()
	ns := testbed.NewNamespace(t, env.admin, "refused-")
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				}}},
			},
			Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "no Secrets in this namespace"}},
		}}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: ns,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}}}
	require.NoError(t, env.admin.Create(ctx, policy))
	require.NoError(t, env.admin.Create(ctx, binding))
	lift := func() {
		_ = env.admin.Delete(context.Background(), binding)
		_ = env.admin.Delete(context.Background(), policy)
	}
	t.Cleanup(lift)
	require.Eventually(t, func() bool {
		err := env.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "probe-"}})
		return err != nil && strings.Contains(err.Error(), "no Secrets in this namespace")
	}, 30*time.Second, 100*time.Millisecond, "the policy refuses Secrets")

	p, err := clientset(t, nil).CoreV1().Pods(ns).Create(ctx, pod(env.image), metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"regcred-reg"}, testbed.PodSecretNames(p), "injected: the kubelet pulls once it exists")
	index := secretstore.NewIndex(env.admin, regcredNS)
	require.Eventually(t, func() bool {
		e, known := index.Lookup(ctx, ns, "reg", false)
		return known && e.Pending()
	}, 30*time.Second, 100*time.Millisecond, "recorded as pending in the index")
	assert.Nil(t, secretOf(t, ns, "regcred-reg"))

	lift()
	require.Eventually(t, func() bool { return secretOf(t, ns, "regcred-reg") != nil }, 5*time.Minute, 200*time.Millisecond, "made once the policy is gone")
	require.Eventually(t, func() bool {
		e, known := secretstore.NewIndex(env.admin, regcredNS).Lookup(ctx, ns, "reg", false)
		return known && !e.Pending() && e.UID == secretOf(t, ns, "regcred-reg").UID
	}, 30*time.Second, 100*time.Millisecond, "and recorded")
}
