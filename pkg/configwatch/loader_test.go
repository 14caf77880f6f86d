package configwatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

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

// hookReader runs hooks at each read of the named object: fail, if set,
// may fail it; afterGet, if set, runs after it.
type hookReader struct {
	client.Reader
	name     string
	fail     func() error
	afterGet func()
}

func (h hookReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if key.Name == h.name && h.fail != nil {
		if err := h.fail(); err != nil {
			return err
		}
	}
	err := h.Reader.Get(ctx, key, obj, opts...)
	if key.Name == h.name && h.afterGet != nil {
		h.afterGet()
	}
	return err
}

// Two loads at once (the start's and a reconcile's) end with the newest
// config serving, watched and kept: a load that read an older one and
// finishes last does not win.
func TestConcurrentReloadsEndWithTheNewestConfig(t *testing.T) {
	v2Config := strings.ReplaceAll(goodConfig, "quay-creds", "quay-creds-v2")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "cfg"}, Data: map[string]string{"config.yaml": goodConfig}}
	l, c, _, _ := newLoader(cm,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "quay-creds"}, Data: map[string][]byte{"token": []byte("t0ken")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "quay-creds-v2"}, Data: map[string][]byte{"token": []byte("t0ken2")}})
	l.LastGood = &LastGood{Reader: c, Writer: c, Namespace: "regcred", Name: "regcred-last-good-config"}

	// The first load reads v1, then waits until it is told to go on.
	var reads atomic.Int32
	readV1, goOn := make(chan struct{}), make(chan struct{})
	l.Reader = hookReader{Reader: c, name: "cfg", afterGet: func() {
		if reads.Add(1) == 1 {
			close(readV1)
			<-goOn
		}
	}}
	first := make(chan error, 1)
	go func() { first <- l.Reload(t.Context()) }()
	<-readV1

	// v2 is stored, and its change is reconciled.
	cm.Data["config.yaml"] = v2Config
	require.NoError(t, c.Update(t.Context(), cm))
	second := make(chan error, 1)
	go func() {
		_, err := l.Reconcile(t.Context(), reconcile.Request{})
		second <- err
	}()
	// Without serialisation the reconcile finishes now, with v2; with
	// it, it waits for the first load: either way the first finishes
	// after the reconcile began.
	var secondErr error
	secondDone := false
	select {
	case secondErr = <-second:
		secondDone = true
	case <-time.After(300 * time.Millisecond):
	}
	close(goOn)
	require.NoError(t, <-first)
	if !secondDone {
		secondErr = <-second
	}
	require.NoError(t, secondErr)

	assert.Equal(t, cm.ResourceVersion, l.Status().Version, "the newest config serves")
	w, err := l.Current().Get("quay").Want(t.Context(), registries.Need{})
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(w.Data), "t0ken2"), "with the newest config's credentials (not shown)")
	assert.True(t, l.relevant(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "quay-creds-v2"}}), "the Secrets of the newest config are watched")
	var kept corev1.Secret
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: "regcred", Name: "regcred-last-good-config"}, &kept))
	assert.Equal(t, v2Config, string(kept.Data["config.yaml"]), "the newest config is kept")
}

// failingReader fails every read of the named objects with err.
type failingReader struct {
	client.Reader
	names map[string]bool
	err   error
}

func (f failingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if f.names[key.Name] {
		return f.err
	}
	return f.Reader.Get(ctx, key, obj, opts...)
}

// failingWriter fails every write with err.
type failingWriter struct {
	client.Client
	err error
}

func (f failingWriter) Create(context.Context, client.Object, ...client.CreateOption) error {
	return f.err
}

func (f failingWriter) Update(context.Context, client.Object, ...client.UpdateOption) error {
	return f.err
}

// A read that fails for want of the API server, not for what it read,
// says why in words of regcred's own (the error's text may quote what it
// was reading), and the reconcile is retried: no change of the config
// would come to load it again.
func TestReadFailuresNameTheirCauseAndAreRetried(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6443}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name   string
		failed string // the object whose read fails
		err    error
		want   string
	}{
		{"Secret read times out", "quay-creds", context.DeadlineExceeded, `registry "quay": password: secretKeyRef quay-creds/token: timeout`},
		{"Secret read refused", "quay-creds", refused, `registry "quay": password: secretKeyRef quay-creds/token: connection refused`},
		{"Secret read fails otherwise", "quay-creds", errors.New("S3cretInTheError"), `registry "quay": password: secretKeyRef quay-creds/token: cannot reach the API server`},
		{"Secret read forbidden", "quay-creds", apierrors.NewForbidden(corev1.Resource("secrets"), "quay-creds", errors.New("S3cretInTheError")), `registry "quay": password: secretKeyRef quay-creds/token: Forbidden`},
		{"config read times out", "cfg", fmt.Errorf("get: %w", context.DeadlineExceeded), "ConfigMap regcred/cfg key config.yaml: timeout"},
		{"config read fails otherwise", "cfg", errors.New("S3cretInTheError"), "ConfigMap regcred/cfg key config.yaml: cannot reach the API server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c, _, e := newLoader(
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "cfg"}, Data: map[string]string{"config.yaml": goodConfig}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "quay-creds"}, Data: map[string][]byte{"token": []byte("t0ken")}})
			l.Reader = failingReader{Reader: c, names: map[string]bool{tc.failed: true}, err: tc.err}
			_, err := l.Reconcile(t.Context(), reconcile.Request{})
			require.Error(t, err, "the reconcile is retried")
			require.Error(t, l.Status().LastError)
			assert.Equal(t, tc.want, l.Status().LastError.Error())
			// An Event, when the config object was read.
			for _, text := range append([]string{err.Error(), l.Status().LastError.Error()}, *e...) {
				assert.NotContains(t, text, "S3cretInTheError")
				assert.NotContains(t, text, "127.0.0.1")
			}

			// Once the read works, the config loads, and no retry is asked for.
			l.Reader = c
			_, err = l.Reconcile(t.Context(), reconcile.Request{})
			require.NoError(t, err)
			require.NoError(t, l.Status().LastError)
		})
	}

	// A config that is wrong is not retried: only a change can mend it.
	l, _, _, _ := newLoader(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "cfg"}, Data: map[string]string{"config.yaml": goodConfig}})
	_, err := l.Reconcile(t.Context(), reconcile.Request{})
	require.NoError(t, err)
	assert.EqualError(t, l.Status().LastError, `registry "quay": password: secretKeyRef quay-creds/token: secret not found`)
}

// A failure to keep the last good config names its cause, never the
// error's text.
func TestLastGoodSaveFailureNamesItsCause(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "keeping the last good config in Secret regcred/kept: timeout"},
		{errors.New("S3cretInTheError"), "keeping the last good config in Secret regcred/kept: cannot reach the API server"},
		{apierrors.NewForbidden(corev1.Resource("secrets"), "kept", errors.New("S3cretInTheError")), "keeping the last good config in Secret regcred/kept: Forbidden"},
	} {
		g := &LastGood{Reader: c, Writer: failingWriter{Client: c, err: tc.err}, Namespace: "regcred", Name: "kept"}
		assert.EqualError(t, g.save(t.Context(), snapshot{data: []byte(goodConfig)}), tc.want)
	}
}

// The start's load is tried again when a read fails: the controller
// retries only the loads it ran itself.
func TestInitialLoadRetriesReadFailures(t *testing.T) {
	l, c, _, _ := newLoader(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "cfg"}, Data: map[string]string{"config.yaml": goodConfig}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "quay-creds"}, Data: map[string][]byte{"token": []byte("t0ken")}})
	var fails atomic.Int32
	fails.Store(3)
	l.Reader = hookReader{Reader: c, name: "quay-creds", fail: func() error {
		if fails.Add(-1) >= 0 {
			return context.DeadlineExceeded
		}
		return nil
	}}
	done := make(chan error, 1)
	go func() {
		done <- initialLoad{l: l, synced: func(context.Context) bool { return true }, retry: time.Millisecond}.Start(t.Context())
	}()
	require.NoError(t, <-done)
	assert.True(t, l.HasConfig())
	require.NoError(t, l.Status().LastError)
}
