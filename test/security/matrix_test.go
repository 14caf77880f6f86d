package security

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/secretstore"
	"github.com/regcred/regcred/test/testbed"
)

// ours is a pull secret as regcred makes it.
func ours(ns, registry string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred-" + registry,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "regcred", "regcred.io/registry": registry}},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)},
	}
}

// What regcred's ServiceAccount can and cannot do, tried on the API server
// with the chart's own RBAC and admission policy.
func TestImpersonationMatrix(t *testing.T) {
	ctx := t.Context()
	sa, err := asRegcred()
	require.NoError(t, err)
	app := testbed.NewNamespace(t, env.admin, "app-")
	victim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "db-password"}, StringData: map[string]string{"password": "s3cret"}}
	require.NoError(t, env.admin.Create(ctx, victim))
	system := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "system-secret"}, StringData: map[string]string{"k": "v"}}
	require.NoError(t, env.admin.Create(ctx, system))
	squat := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "regcred-squat"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"mine":{}}}`)}}
	require.NoError(t, env.admin.Create(ctx, squat))

	forbidden := func(t *testing.T, err error, byPolicy bool) {
		t.Helper()
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err) || apierrors.IsInvalid(err), "refused: %v", err)
		if byPolicy {
			assert.Contains(t, err.Error(), "ValidatingAdmissionPolicy")
		}
	}
	secretList := func(opts ...client.ListOption) error {
		return sa.List(ctx, &corev1.SecretList{}, opts...)
	}

	t.Run("reads", func(t *testing.T) {
		forbidden(t, secretList(), false)
		forbidden(t, secretList(client.InNamespace(app)), false)
		forbidden(t, secretList(client.InNamespace(app), client.MatchingFields{"metadata.name": "db-password"}), false)
		forbidden(t, sa.Get(ctx, client.ObjectKeyFromObject(victim), &corev1.Secret{}), false)
		forbidden(t, sa.Get(ctx, client.ObjectKeyFromObject(system), &corev1.Secret{}), false)
		assert.NoError(t, secretList(client.InNamespace(regcredNS)), "its own namespace: the Secrets its config refers to")
	})

	t.Run("writes it must be refused", func(t *testing.T) {
		v := victim.DeepCopy()
		v.StringData = map[string]string{"password": "pwned"}
		forbidden(t, sa.Update(ctx, v), false)
		forbidden(t, sa.Patch(ctx, victim.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"data":{"password":"cHduZWQ="}}`))), true)
		forbidden(t, sa.Delete(ctx, victim.DeepCopy()), true)
		forbidden(t, sa.Delete(ctx, system.DeepCopy()), true)
		tokenSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "regcred-token",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "namespace-controller"}}, Type: corev1.SecretTypeServiceAccountToken}
		forbidden(t, sa.Create(ctx, tokenSecret), true)
		forbidden(t, sa.Create(ctx, ours("kube-system", "reg")), true)
		forbidden(t, sa.Create(ctx, ours(excludedNS, "reg")), true)
		forbidden(t, sa.Create(ctx, ours("quiet", "reg")), true)
		opaque := ours(app, "reg")
		opaque.Type, opaque.Data = corev1.SecretTypeOpaque, map[string][]byte{"k": []byte("v")}
		forbidden(t, sa.Create(ctx, opaque), true)
		unlabelled := ours(app, "reg")
		unlabelled.Labels = nil
		forbidden(t, sa.Create(ctx, unlabelled), true)
		misnamed := ours(app, "reg")
		misnamed.Name = "stolen"
		forbidden(t, sa.Create(ctx, misnamed), true)
		mismatched := ours(app, "reg")
		mismatched.Labels["regcred.io/registry"] = "other"
		forbidden(t, sa.Create(ctx, mismatched), true)
		forbidden(t, sa.Patch(ctx, squat.DeepCopy(), client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":"regcred","regcred.io/registry":"squat"}}}`))), true)
		forbidden(t, sa.Delete(ctx, squat.DeepCopy()), true)
		forbidden(t, sa.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "regcred-x"}}), false)
	})

	t.Run("what regcred does still succeeds", func(t *testing.T) {
		s := ours(app, "reg")
		require.NoError(t, sa.Create(ctx, s))
		require.NoError(t, sa.Patch(ctx, s, client.RawPatch(types.JSONPatchType,
			[]byte(`[{"op":"test","path":"/metadata/labels/app.kubernetes.io~1managed-by","value":"regcred"},{"op":"replace","path":"/data","value":{".dockerconfigjson":"e30="}}]`))))
		require.NoError(t, sa.Delete(ctx, s, client.Preconditions{UID: &s.UID}))
		// Its own, in a namespace that opted out since: deleting it is cleanup.
		late := testbed.NewNamespace(t, env.admin, "late-")
		s = ours(late, "reg")
		require.NoError(t, sa.Create(ctx, s))
		var n corev1.Namespace
		require.NoError(t, env.admin.Get(ctx, client.ObjectKey{Name: late}, &n))
		n.Labels["regcred.io/inject"] = "false"
		require.NoError(t, env.admin.Update(ctx, &n))
		require.Eventually(t, func() bool {
			err := sa.Patch(ctx, ours(late, "reg"), client.RawPatch(types.MergePatchType, []byte(`{"data":{}}`)))
			return err != nil
		}, eventually, tick, "writes there are refused once it opts out")
		require.NoError(t, sa.Delete(ctx, s))
		// In its own namespace it keeps what it needs, each as it writes
		// it: its status whole, its index one key at a time.
		status := &corev1.ConfigMap{}
		require.NoError(t, sa.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: "regcred-status"}, status))
		require.NoError(t, sa.Update(ctx, status))
		forbidden(t, sa.Patch(ctx, status.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{}`))), false)
		shard := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: regcredNS, Name: "regcred-index-0"}}
		if err := sa.Create(ctx, shard); err != nil {
			require.True(t, apierrors.IsAlreadyExists(err), "%v", err)
		}
		require.NoError(t, sa.Patch(ctx, shard, client.RawPatch(types.MergePatchType, []byte(`{}`))))
		require.NoError(t, sa.Get(ctx, client.ObjectKeyFromObject(shard), shard))
		forbidden(t, sa.Update(ctx, shard), false)
		scratch := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: regcredNS, GenerateName: "scratch-"}}
		require.NoError(t, sa.Create(ctx, scratch))
		forbidden(t, sa.Patch(ctx, scratch, client.RawPatch(types.MergePatchType, []byte(`{}`))), false)
		require.NoError(t, env.admin.Delete(ctx, scratch))
	})

	t.Run("its TLS material and webhook configurations", func(t *testing.T) {
		// The chart's default (tls.selfManaged): regcred keeps a CA and a
		// certificate in regcred-tls, and the caBundle of its two webhook
		// configurations, nothing else.
		tlsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: regcredNS, Name: "regcred-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: []byte("c"), corev1.TLSPrivateKeyKey: []byte("k")}}
		require.NoError(t, sa.Create(ctx, tlsSecret))
		tlsSecret.Data["ca.crt"] = []byte("ca")
		require.NoError(t, sa.Update(ctx, tlsSecret))
		require.NoError(t, sa.Delete(ctx, tlsSecret))
		creds := &corev1.Secret{}
		require.NoError(t, env.admin.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: "reg-creds"}, creds))
		forbidden(t, sa.Update(ctx, creds.DeepCopy()), false)
		forbidden(t, sa.Patch(ctx, creds.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"data":{"password":"cHduZWQ="}}`))), true)
		forbidden(t, sa.Delete(ctx, creds.DeepCopy()), true)
		forbidden(t, sa.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: regcredNS, Name: "anything"}}), true)

		// It reads them by a list and watch by name (its cache), never a get.
		var hook admissionregistrationv1.MutatingWebhookConfiguration
		forbidden(t, sa.Get(ctx, client.ObjectKey{Name: "regcred"}, &hook), false)
		var named admissionregistrationv1.MutatingWebhookConfigurationList
		require.NoError(t, sa.List(ctx, &named, client.MatchingFields{"metadata.name": "regcred"}))
		require.Len(t, named.Items, 1)
		hook = named.Items[0]
		bundle, err := json.Marshal(hook.Webhooks[0].ClientConfig.CABundle)
		require.NoError(t, err)
		assert.NoError(t, sa.Patch(ctx, &hook, client.RawPatch(types.JSONPatchType,
			[]byte(`[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":`+string(bundle)+`}]`))), "its caBundle")
		forbidden(t, sa.Patch(ctx, &hook, client.RawPatch(types.JSONPatchType,
			[]byte(`[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Fail"}]`))), true)
		forbidden(t, sa.Patch(ctx, &hook, client.RawPatch(types.JSONPatchType,
			[]byte(`[{"op":"replace","path":"/webhooks/0/objectSelector","value":{}}]`))), true)
		// A finalizer would block its removal, an owner that does not
		// exist would have the garbage collector delete it.
		forbidden(t, sa.Patch(ctx, &hook, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"finalizers":["example.com/block"]}}`))), true)
		forbidden(t, sa.Patch(ctx, &hook, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"gone","uid":"6c4c5a3e-0000-4000-8000-000000000000"}]}}`))), true)
		var validating admissionregistrationv1.ValidatingWebhookConfiguration
		require.NoError(t, env.admin.Get(ctx, client.ObjectKey{Name: "regcred-pull-secrets"}, &validating))
		forbidden(t, sa.Patch(ctx, &validating, client.RawPatch(types.JSONPatchType,
			[]byte(`[{"op":"remove","path":"/webhooks/0/matchConditions"}]`))), true)
		forbidden(t, sa.Delete(ctx, &hook), false)
		forbidden(t, sa.List(ctx, &admissionregistrationv1.MutatingWebhookConfigurationList{}), false)
		other := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses"}}
		require.NoError(t, env.admin.Create(ctx, other))
		t.Cleanup(func() { _ = env.admin.Delete(context.Background(), other) })
		forbidden(t, sa.Get(ctx, client.ObjectKeyFromObject(other), other.DeepCopy()), false)
		forbidden(t, sa.Patch(ctx, other.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`))), false)
		forbidden(t, sa.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "regcred-more"}}), false)
	})

	t.Run("namespaces, its Lease, Events: no more than it uses", func(t *testing.T) {
		// A label would bring a registry's credentials into a namespace,
		// or take its opt-out away: regcred reads labels, never writes them.
		var ns corev1.Namespace
		require.NoError(t, sa.Get(ctx, client.ObjectKey{Name: app}, &ns), "it reads namespaces' labels")
		ns.Labels["team"] = "a"
		forbidden(t, sa.Update(ctx, ns.DeepCopy()), false)
		forbidden(t, sa.Patch(ctx, ns.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"regcred.io/inject":"true"}}}`))), false)
		// Leader election gets and updates its Lease, never patches it.
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: regcredNS, Name: "regcred"}}
		forbidden(t, sa.Patch(ctx, lease, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"holderIdentity":"someone"}}`))), false)
		// Its Events are events.k8s.io's; the core group's are refused.
		forbidden(t, sa.Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: regcredNS, GenerateName: "e-"},
			InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", Namespace: regcredNS, Name: "regcred"},
			Reason:         "ConfigRejected", Message: "m", Type: corev1.EventTypeWarning,
		}), false)
	})
}

// The policy's refusal is what regcred's store expects: a pull secret
// whose labels an admin removed, or in a namespace excluded since, is
// left in place and its index entry forgotten, rather than a delete
// retried at every sweep.
func TestStoreLeavesWhatThePolicyProtects(t *testing.T) {
	ctx := t.Context()
	sa, err := asRegcred()
	require.NoError(t, err)
	store := &secretstore.Store{API: sa, Index: secretstore.NewIndex(sa, regcredNS)}
	app := testbed.NewNamespace(t, env.admin, "app-")
	for name, s := range map[string]*corev1.Secret{
		"its labels removed":    ours(app, "unlabelled"),
		"an excluded namespace": ours(excludedNS, "excluded"),
	} {
		t.Run(name, func(t *testing.T) {
			// Read before the patch below, which empties s's labels.
			registry := s.Labels["regcred.io/registry"]
			require.NotEmpty(t, registry)
			require.NoError(t, env.admin.Create(ctx, s))
			t.Cleanup(func() { _ = env.admin.Delete(context.Background(), s) })
			if s.Namespace == app {
				require.NoError(t, env.admin.Patch(ctx, s, client.RawPatch(types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/labels"}]`))))
			}
			require.NoError(t, store.Pending(ctx, secretstore.Entry{Namespace: s.Namespace, Registry: registry}))
			e, known := store.Index.Lookup(ctx, s.Namespace, registry, false)
			require.True(t, known, "the index records it")
			err := store.Delete(ctx, e, s.Name)
			require.ErrorIs(t, err, secretstore.ErrLeftInPlace, "refused by the policy: %v", err)
			assert.NoError(t, env.admin.Get(ctx, client.ObjectKeyFromObject(s), &corev1.Secret{}), "left in place")
			_, known = secretstore.NewIndex(sa, regcredNS).Lookup(ctx, s.Namespace, registry, false)
			assert.False(t, known, "and its index entry forgotten")
		})
	}
}
