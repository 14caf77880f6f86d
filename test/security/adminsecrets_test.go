package security

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/test/testbed"
)

// What warnMissingAdminSecrets adds to regcred's permissions, tried by
// impersonation as the installed chart has them (the opt-in off), with the
// chart's admin-secrets ClusterRole and binding (rendered from the same
// values with warnMissingAdminSecrets on) added, and after they are removed
// again. What regcred does with it is pkg/pullsecret's Presence: a
// metadata-only list and watch of Secrets in every namespace, one per name
// the admin's pull secrets have, selected by metadata.name.
func TestImpersonationMatrixAdminSecrets(t *testing.T) {
	ctx := t.Context()
	sa := regcredClientset(t)
	meta := regcredMetadata(t)
	secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

	// The admin's own pull secret, in two namespaces, neither regcred's;
	// and another Secret beside it.
	const name = "admin-pull"
	a := testbed.NewNamespace(t, env.admin, "admin-secrets-")
	b := testbed.NewNamespace(t, env.admin, "admin-secrets-")
	for _, ns := range []string{a, b} {
		require.NoError(t, env.admin.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"admin.example":{"auth":"YWRtaW46czNjcmV0"}}}`)},
		}))
	}
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a, Name: "db-password"}, StringData: map[string]string{"password": "s3cret"}}
	require.NoError(t, env.admin.Create(ctx, other))
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	both := []string{a + "/" + name, b + "/" + name}

	// Each check tries one thing the opt-in grants, refused without it.
	// The role grants more than regcred asks for: list and watch of whole
	// Secrets, with or without a field selector.
	checks := map[string]func(t *testing.T) error{
		"list Secrets in another namespace (data included)": func(t *testing.T) error {
			l, err := sa.CoreV1().Secrets(a).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, s := range l.Items {
				if s.Name == other.Name && string(s.Data["password"]) == "s3cret" {
					return nil
				}
			}
			return fmt.Errorf("%s/%s not listed with its data", a, other.Name)
		},
		"list Secrets in another namespace by name": func(t *testing.T) error {
			_, err := sa.CoreV1().Secrets(a).List(ctx, byName)
			return err
		},
		"watch Secrets in another namespace": func(t *testing.T) error {
			w, err := sa.CoreV1().Secrets(a).Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		},
		"watch Secrets in another namespace by name": func(t *testing.T) error {
			w, err := sa.CoreV1().Secrets(a).Watch(ctx, byName)
			if err == nil {
				w.Stop()
			}
			return err
		},
		// What regcred does: the metadata client, the name's field
		// selector, every namespace.
		"list Secrets' metadata by name in every namespace": func(t *testing.T) error {
			l, err := meta.Resource(secrets).Namespace(metav1.NamespaceAll).List(ctx, byName)
			if err != nil {
				return err
			}
			found := map[string]bool{}
			for _, m := range l.Items {
				if m.Name != name {
					return fmt.Errorf("listed %s/%s, not named %s", m.Namespace, m.Name, name)
				}
				found[m.Namespace+"/"+m.Name] = true
			}
			for _, k := range both {
				if !found[k] {
					return fmt.Errorf("%s not listed", k)
				}
			}
			return nil
		},
		"watch Secrets' metadata by name in every namespace": func(t *testing.T) error {
			w, err := meta.Resource(secrets).Namespace(metav1.NamespaceAll).Watch(ctx, byName)
			if err != nil {
				return err
			}
			return watched(w, name, both)
		},
	}
	// Never, the opt-in on or off: reading one Secret, and writing any
	// Secret that is not regcred's outside its namespace (RBAC refuses what
	// it never grants, the chart's ValidatingAdmissionPolicy the rest).
	never := map[string]struct {
		byPolicy bool
		try      func(t *testing.T) error
	}{
		"get the admin's Secret": {false, func(t *testing.T) error {
			_, err := sa.CoreV1().Secrets(a).Get(ctx, name, metav1.GetOptions{})
			return err
		}},
		"get the admin's Secret's metadata": {false, func(t *testing.T) error {
			_, err := meta.Resource(secrets).Namespace(a).Get(ctx, name, metav1.GetOptions{})
			return err
		}},
		"get another Secret": {false, func(t *testing.T) error {
			_, err := sa.CoreV1().Secrets(a).Get(ctx, other.Name, metav1.GetOptions{})
			return err
		}},
		"create a Secret of the admin's name": {true, func(t *testing.T) error {
			ns := testbed.NewNamespace(t, env.admin, "admin-secrets-")
			_, err := sa.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Type:       corev1.SecretTypeDockerConfigJson,
				Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)},
			}, metav1.CreateOptions{})
			return err
		}},
		"update the admin's Secret": {false, func(t *testing.T) error {
			s := secretOf(t, a, name)
			require.NotNil(t, s)
			s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{}}`)
			_, err := sa.CoreV1().Secrets(a).Update(ctx, s, metav1.UpdateOptions{})
			return err
		}},
		"patch the admin's Secret": {true, func(t *testing.T) error {
			_, err := sa.CoreV1().Secrets(a).Patch(ctx, name, types.MergePatchType, []byte(`{"data":{".dockerconfigjson":"e30="}}`), metav1.PatchOptions{})
			return err
		}},
		"delete the admin's Secret": {true, func(t *testing.T) error {
			return sa.CoreV1().Secrets(b).Delete(ctx, name, metav1.DeleteOptions{})
		}},
		"delete another Secret": {true, func(t *testing.T) error {
			return sa.CoreV1().Secrets(a).Delete(ctx, other.Name, metav1.DeleteOptions{})
		}},
		"delete every Secret in a namespace": {false, func(t *testing.T) error {
			return sa.CoreV1().Secrets(a).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}},
	}
	forbidden := func(t *testing.T, err error, byPolicy bool) {
		t.Helper()
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err) || apierrors.IsInvalid(err), "refused: %v", err)
		if byPolicy {
			assert.Contains(t, err.Error(), "ValidatingAdmissionPolicy")
		}
	}
	tryAll := func(t *testing.T, allowed bool) {
		for what, check := range checks {
			t.Run(what, func(t *testing.T) {
				if allowed {
					// RBAC reaches the authorizer through an informer.
					require.EventuallyWithT(t, func(c *assert.CollectT) { assert.NoError(c, check(t)) }, eventually, tick, "%s allowed", what)
					return
				}
				require.Eventually(t, func() bool { return apierrors.IsForbidden(check(t)) }, eventually, tick, "%s refused", what)
				err := check(t)
				require.Error(t, err)
				assert.True(t, apierrors.IsForbidden(err), "refused: %v", err)
			})
		}
		t.Run("never", func(t *testing.T) {
			for what, n := range never {
				t.Run(what, func(t *testing.T) { forbidden(t, n.try(t), n.byPolicy) })
			}
		})
	}

	t.Run("opt-in off: refused", func(t *testing.T) { tryAll(t, false) })

	objs := adminSecretsRBAC(t)
	for _, o := range objs {
		require.NoError(t, env.admin.Create(ctx, o))
	}
	t.Cleanup(func() {
		for _, o := range objs {
			_ = env.admin.Delete(context.Background(), o)
		}
	})
	t.Run("opt-in on: allowed", func(t *testing.T) { tryAll(t, true) })

	t.Run("regcred's Presence, through the role, knows where the admin's Secret is", func(t *testing.T) {
		elsewhere := testbed.NewNamespace(t, env.admin, "admin-secrets-")
		p := pullsecret.NewPresence(meta)
		p.Track([]string{name})
		pctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Start(pctx) }()
		t.Cleanup(func() { stop(); <-done })
		require.Eventually(t, func() bool {
			_, known := p.Exists(a, name)
			return known
		}, eventually, tick, "its informer syncs")
		for _, ns := range []string{a, b} {
			exists, known := p.Exists(ns, name)
			assert.True(t, exists && known, "%s/%s exists", ns, name)
		}
		exists, known := p.Exists(elsewhere, name)
		assert.True(t, !exists && known, "%s/%s does not", elsewhere, name)
	})

	for _, o := range objs {
		require.NoError(t, env.admin.Delete(ctx, o))
	}
	t.Run("opt-in off again: refused", func(t *testing.T) { tryAll(t, false) })

	// Nothing above changed the admin's Secrets.
	for _, ns := range []string{a, b} {
		s := secretOf(t, ns, name)
		require.NotNil(t, s, "%s/%s is still there", ns, name)
		assert.Contains(t, string(s.Data[corev1.DockerConfigJsonKey]), "admin.example", "%s/%s unchanged", ns, name)
	}
	assert.NotNil(t, secretOf(t, a, other.Name), "%s/%s is still there", a, other.Name)
}

// regcredMetadata impersonates regcred's ServiceAccount with the client
// Presence reads Secrets through: metadata only.
func regcredMetadata(t *testing.T) metadata.Interface {
	t.Helper()
	cfg := rest.CopyConfig(env.cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: saUser, Groups: saGroups}
	c, err := metadata.NewForConfig(cfg)
	require.NoError(t, err)
	return c
}

// watched reads w until it has seen an ADDED event for each of want
// (namespace/name), every one of Secret metadata named name; it stops w.
func watched(w watch.Interface, name string, want []string) error {
	defer w.Stop()
	left := map[string]bool{}
	for _, k := range want {
		left[k] = true
	}
	timeout := time.After(5 * time.Second)
	for len(left) > 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errors.New("the watch ended")
			}
			if ev.Type == watch.Error {
				return apierrors.FromObject(ev.Object)
			}
			m, ok := ev.Object.(*metav1.PartialObjectMetadata)
			if !ok {
				return fmt.Errorf("watched a %T, not metadata", ev.Object)
			}
			if m.Name != name {
				return fmt.Errorf("watched %s/%s, not named %s", m.Namespace, m.Name, name)
			}
			if ev.Type == watch.Added {
				delete(left, m.Namespace+"/"+m.Name)
			}
		case <-timeout:
			return fmt.Errorf("not watched: %v", left)
		}
	}
	return nil
}

// adminSecretsRBAC renders the chart with the values it was installed with
// and warnMissingAdminSecrets on, and returns what that adds to the RBAC:
// the admin-secrets ClusterRole and its binding.
func adminSecretsRBAC(t *testing.T) []client.Object {
	t.Helper()
	objs := renderOptIn(t, "warnMissingAdminSecrets=true", named("regcred-admin-secrets"), "rbac.yaml")
	require.Equal(t, map[string]int{"ClusterRole": 1, "ClusterRoleBinding": 1}, kindsOf(objs), "the admin-secrets ClusterRole and its binding")
	return objs
}
