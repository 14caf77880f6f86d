package configwatch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
)

type reloads struct{ ok, rejected int }

func (r *reloads) ConfigReload(ok bool) {
	if ok {
		r.ok++
	} else {
		r.rejected++
	}
}

type events []string

func (e *events) Eventf(_, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	*e = append(*e, eventtype+" "+reason+": "+fmt.Sprintf(note, args...))
}

const goodConfig = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: quay, type: quay, url: quay.io, username: {value: me}, password: {secretKeyRef: {name: quay-creds, key: token}}}
`

func newLoader(objs ...client.Object) (*Loader, client.Client, *reloads, *events) {
	c := fake.NewClientBuilder().WithObjects(objs...).Build()
	r, e := &reloads{}, &events{}
	return &Loader{
		Source:  Source{Namespace: "regcred", StoredIn: config.InConfigMap, Name: "cfg", Key: "config.yaml"},
		Reader:  c,
		Metrics: r,
		Events:  e,
	}, c, r, e
}

func TestReload(t *testing.T) {
	l, c, r, e := newLoader(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "quay-creds"},
		Data:       map[string][]byte{"token": []byte("t0ken")},
	})
	var seen []*registries.Set
	l.OnChange(func(s *registries.Set) { seen = append(seen, s) })

	// No config yet: nothing served, the load was attempted.
	require.NoError(t, l.Reload(t.Context()))
	assert.True(t, l.Status().Attempted)
	assert.False(t, l.HasConfig())
	assert.EqualError(t, l.Status().LastError, "ConfigMap regcred/cfg key config.yaml: not found")
	assert.Empty(t, l.Current().Registries)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "cfg"}, Data: map[string]string{"config.yaml": goodConfig}}
	require.NoError(t, c.Create(t.Context(), cm))
	require.NoError(t, l.Reload(t.Context()))
	require.NoError(t, l.Status().LastError)
	assert.Equal(t, cm.ResourceVersion, l.Status().Version)
	require.Len(t, seen, 1)
	good := l.Current()
	assert.Same(t, seen[0], good)
	assert.Equal(t, "quay", good.Registries[0].Name)

	// A broken change is rejected and the good config keeps serving.
	cm.Data["config.yaml"] = goodConfig + "- {name: quay, type: quay, url: quay.io, username: {value: me}, password: {value: inline-pass}}\n"
	require.NoError(t, c.Update(t.Context(), cm))
	require.NoError(t, l.Reload(t.Context()))
	assert.Same(t, good, l.Current())
	assert.Equal(t, cm.ResourceVersion, l.Status().RejectedVersion)
	assert.ErrorContains(t, l.Status().LastError, `registry "quay" (registries[1]): name: is also the name of registries[0]`)
	assert.Len(t, seen, 1)
	assert.Equal(t, &reloads{ok: 1, rejected: 2}, r)
	require.Len(t, *e, 2)
	assert.Equal(t, "Normal ConfigLoaded: Config loaded: 1 registry", (*e)[0])
	assert.Contains(t, (*e)[1], "Warning ConfigRejected: Config rejected, the last good config keeps serving: ")
	assert.NotContains(t, (*e)[1], "inline-pass")

	// A missing key is named.
	cm.Data = map[string]string{"other": "x"}
	require.NoError(t, c.Update(t.Context(), cm))
	require.NoError(t, l.Reload(t.Context()))
	assert.EqualError(t, l.Status().LastError, "ConfigMap regcred/cfg key config.yaml: the key does not exist")
	assert.Same(t, good, l.Current())
}

func TestRelevant(t *testing.T) {
	l, _, _, _ := newLoader()
	l.watch([]string{"quay-creds"})
	secret := func(ns, name string) client.Object {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	cm := func(ns, name string) client.Object {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	assert.True(t, l.relevant(cm("regcred", "cfg")))
	assert.True(t, l.relevant(secret("regcred", "quay-creds")))
	assert.False(t, l.relevant(secret("regcred", "cfg")), "a Secret named like the ConfigMap is not the config")
	assert.False(t, l.relevant(cm("other", "cfg")))
	assert.False(t, l.relevant(secret("other", "quay-creds")))
	assert.False(t, l.relevant(secret("regcred", "unrelated")))
	assert.False(t, l.relevant(cm("regcred", "quay-creds")))
}

func TestLastGoodConfigSurvivesARestart(t *testing.T) {
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "quay-creds"},
		Data:       map[string][]byte{"token": []byte("t0ken")},
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "cfg"}, Data: map[string]string{"config.yaml": goodConfig}}
	l, c, _, _ := newLoader(creds, cm)
	l.LastGood = &LastGood{Reader: c, Writer: c, Namespace: "regcred", Name: "regcred-last-good-config"}
	require.NoError(t, l.Reload(t.Context()))
	require.NoError(t, l.Status().LastError)
	select {
	case <-l.Loaded():
	default:
		t.Fatal("Loaded is closed after the first load")
	}
	var kept corev1.Secret
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: "regcred", Name: "regcred-last-good-config"}, &kept))
	assert.Equal(t, goodConfig, string(kept.Data["config.yaml"]))
	assert.NotEmpty(t, kept.Annotations[AnnotationSavedAt])
	rv := kept.ResourceVersion
	require.NoError(t, l.Reload(t.Context()))
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: "regcred", Name: "regcred-last-good-config"}, &kept))
	assert.Equal(t, rv, kept.ResourceVersion, "the same config is not written again")

	// The stored config breaks, and the Secret it refers to goes away;
	// then a new replica starts.
	cm.Data["config.yaml"] = goodConfig + "- {name: broken, type: nexus}\n"
	require.NoError(t, c.Update(t.Context(), cm))
	require.NoError(t, c.Delete(t.Context(), creds))
	restarted := &Loader{Source: l.Source, Reader: c, Metrics: &reloads{}, Events: &events{},
		LastGood: &LastGood{Reader: c, Writer: c, Namespace: "regcred", Name: "regcred-last-good-config"}}
	require.NoError(t, restarted.Reload(t.Context()))
	st := restarted.Status()
	assert.True(t, st.FromLastGood, "the last good config serves")
	assert.Error(t, st.LastError, "and the rejection is reported")
	require.Len(t, restarted.Current().Registries, 1)
	w, err := restarted.Current().Get("quay").Want(t.Context(), registries.Need{})
	require.NoError(t, err)
	assert.Contains(t, string(w.Data), "t0ken", "with the credentials it was loaded with")

	// A replica without a kept config serves nothing.
	c2 := fake.NewClientBuilder().WithObjects(cm.DeepCopy()).Build()
	fresh := &Loader{Source: l.Source, Reader: c2, Metrics: &reloads{},
		LastGood: &LastGood{Reader: c2, Writer: c2, Namespace: "regcred", Name: "regcred-last-good-config"}}
	require.NoError(t, fresh.Reload(t.Context()))
	assert.False(t, fresh.HasConfig())
	assert.False(t, fresh.Status().FromLastGood)
}

// Before any config has loaded, a rejected one leaves nothing serving,
// and the Event says so, as the log does.
func TestRejectedFirstConfigSaysNothingServes(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "cfg"}, Data: map[string]string{"config.yaml": goodConfig + "- {name: broken, type: nexus}\n"}}
	l, _, r, e := newLoader(cm)
	require.NoError(t, l.Reload(t.Context()))
	assert.False(t, l.HasConfig())
	assert.Equal(t, &reloads{rejected: 1}, r)
	require.Len(t, *e, 1)
	assert.Contains(t, (*e)[0], "Warning ConfigRejected: Config rejected, no registry is served until a valid config is stored: ")
	assert.NotContains(t, (*e)[0], "keeps serving")
}

// Problems that could quote a credential (a blank token, an unquoted
// password read as a YAML alias, a key where value: was forgotten, a URL
// with userinfo, a caCert that is a key) are rejections like any other:
// the last good config keeps serving, and neither the status nor the
// Event quotes the credential.
func TestCredentialProblemsKeepTheLastGoodConfig(t *testing.T) {
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "quay-creds"},
		Data:       map[string][]byte{"token": []byte("t0ken")},
	}
	cfgSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "cfg"}, Data: map[string][]byte{"config.yaml": []byte(goodConfig)}}
	l, c, _, e := newLoader(creds, cfgSecret)
	l.Source.StoredIn = config.InSecret
	require.NoError(t, l.Reload(t.Context()))
	require.NoError(t, l.Status().LastError)
	good := l.Current()

	const header = "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n"
	for _, tc := range []struct {
		name, config, token, want, secret string
	}{
		{"blank token", goodConfig, "\n", `registry "quay": password: secretKeyRef quay-creds/token: holds only whitespace`, ""},
		{"password read as an alias", header + "- {name: quay, type: quay, url: quay.io, username: {value: me}, password: {value: *Xk9pQ2vL}}\n", "t0ken", "not valid YAML: line 4: ", "Xk9pQ2vL"},
		{"value: forgotten", header + "- {name: quay, type: quay, url: quay.io, username: {value: me}, password: {S3cretPassw0rd}}\n", "t0ken", `registry "quay": password: unknown field`, "S3cretPassw0rd"},
		{"userinfo in a glob URL", header + "- {name: quay, type: other, url: 'https://robot:S3cretT0ken@*.example.com', username: {value: me}, password: {value: p}}\n", "t0ken", `registry "quay": url: must not contain credentials`, "S3cretT0ken"},
		{"caCert that is not a certificate", header + "- {name: quay, type: other, url: quay.example.com, connection: secure-with-ca, caCert: {value: S3cretNotPEM}, username: {value: me}, password: {value: p}}\n", "t0ken", `registry "quay": caCert: holds no PEM certificate`, "S3cretNotPEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds.Data["token"] = []byte(tc.token)
			require.NoError(t, c.Update(t.Context(), creds))
			cfgSecret.Data["config.yaml"] = []byte(tc.config)
			require.NoError(t, c.Update(t.Context(), cfgSecret))
			*e = nil
			require.NoError(t, l.Reload(t.Context()))
			assert.Same(t, good, l.Current(), "the last good config keeps serving")
			require.Error(t, l.Status().LastError)
			require.Len(t, *e, 1)
			for _, text := range []string{l.Status().LastError.Error(), (*e)[0]} {
				if tc.secret != "" && strings.Contains(strings.ToLower(text), strings.ToLower(tc.secret)) {
					t.Fatalf("a rejection quotes credential text (%d characters, not shown)", len(tc.secret))
				}
			}
			assert.Contains(t, l.Status().LastError.Error(), tc.want)
			assert.Contains(t, (*e)[0], "Warning ConfigRejected: Config rejected, the last good config keeps serving: "+tc.want)
		})
	}
}
