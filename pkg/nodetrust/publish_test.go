package nodetrust

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
)

type recorded struct {
	hosts map[Mode]int
	notes int
}

func (r *recorded) NodeTrustPublished(hosts map[Mode]int, notes int) { r.hosts, r.notes = hosts, notes }

// setOf is a registry set holding regs.
func setOf(t *testing.T, regs ...*registries.Registry) *registries.Set {
	t.Helper()
	s := registries.Empty()
	s.Registries = regs
	return s
}

func TestPublisher(t *testing.T) {
	ctx := t.Context()
	ca := newCA(t, "a")
	var writes atomic.Int32
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			writes.Add(1)
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			writes.Add(1)
			return c.Update(ctx, obj, opts...)
		},
	}).Build()
	var loaded atomic.Bool
	current := setOf(t)
	rec := &recorded{}
	p := NewPublisher(&Publisher{
		Client: c, Reader: c, Namespace: "regcred", Name: "regcred-node-trust",
		Registries: func() *registries.Set { return current },
		HasConfig:  loaded.Load,
		Metrics:    rec,
	})
	published := func() Decoded {
		t.Helper()
		var cm corev1.ConfigMap
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "regcred", Name: "regcred-node-trust"}, &cm))
		assert.Equal(t, map[string]string{"app.kubernetes.io/managed-by": "regcred", LabelNodeTrust: "true"}, cm.Labels)
		d, err := Decode([]byte(cm.Data[Key]))
		require.NoError(t, err)
		return d
	}

	_, err := p.publish(ctx)
	require.NoError(t, err)
	assert.Zero(t, writes.Load(), "nothing is published before a config is loaded: an empty list would remove what nodes trust")

	loaded.Store(true)
	current = setOf(t, reg(t, "harbor", "harbor:8443", config.SecureWithCA, ca), reg(t, "wild", "*.example.com", config.Insecure, nil))
	_, err = p.publish(ctx)
	require.NoError(t, err)
	assert.Equal(t, int32(1), writes.Load())
	assert.Equal(t, []Host{{Host: "harbor:8443", CA: string(ca), Registries: []string{"harbor"}}}, published().Hosts)
	assert.Equal(t, map[Mode]int{ModeCA: 1}, rec.hosts)
	assert.Equal(t, 1, rec.notes)

	_, err = p.publish(ctx)
	require.NoError(t, err)
	assert.Equal(t, int32(1), writes.Load(), "written only when it changes")

	current = setOf(t, reg(t, "plain", "http://reg:5000", config.Insecure, nil))
	_, err = p.publish(ctx)
	require.NoError(t, err)
	assert.Equal(t, int32(2), writes.Load())
	assert.Equal(t, []Host{{Host: "reg:5000", PlainHTTP: true, Registries: []string{"plain"}}}, published().Hosts)

	// Edited by someone else: written back.
	var cm corev1.ConfigMap
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "regcred", Name: "regcred-node-trust"}, &cm))
	cm.Data[Key] = `{"format":1,"hosts":[{"host":"evil.example.com","skipVerify":true,"registries":["x"]}]}`
	require.NoError(t, c.Update(ctx, &cm))
	_, err = p.publish(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Host{{Host: "reg:5000", PlainHTTP: true, Registries: []string{"plain"}}}, published().Hosts)

	// Every registry gone: an empty list, so that agents remove theirs.
	current = setOf(t)
	_, err = p.publish(ctx)
	require.NoError(t, err)
	assert.Empty(t, published().Hosts)
}

// laggingReader is a cache that stopped seeing the API server's changes.
type laggingReader struct {
	client.Reader
	frozen *corev1.ConfigMap
}

func (r *laggingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if r.frozen == nil {
		return r.Reader.Get(ctx, key, obj, opts...)
	}
	r.frozen.DeepCopyInto(obj.(*corev1.ConfigMap))
	return nil
}

// A change and its undoing, both before the cache sees the first: the
// cache holds what the config says again, but the API server holds the
// change, and the change is written over at once, not at the next resync.
func TestPublisherUndoesAChangeTheCacheHasNotSeen(t *testing.T) {
	ctx := t.Context()
	ca := newCA(t, "a")
	c := fake.NewClientBuilder().Build()
	r := &laggingReader{Reader: c}
	verified := setOf(t, reg(t, "harbor", "harbor:8443", config.SecureWithCA, ca))
	current := verified
	p := NewPublisher(&Publisher{
		Client: c, Reader: r, Namespace: "regcred", Name: "regcred-node-trust",
		Registries: func() *registries.Set { return current },
		HasConfig:  func() bool { return true },
	})
	published := func() []Host {
		t.Helper()
		var cm corev1.ConfigMap
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "regcred", Name: "regcred-node-trust"}, &cm))
		d, err := Decode([]byte(cm.Data[Key]))
		require.NoError(t, err)
		return d.Hosts
	}
	want := []Host{{Host: "harbor:8443", CA: string(ca), Registries: []string{"harbor"}}}

	_, err := p.publish(ctx)
	require.NoError(t, err)
	require.Equal(t, want, published())
	r.frozen = &corev1.ConfigMap{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "regcred", Name: "regcred-node-trust"}, r.frozen))

	current = setOf(t, reg(t, "harbor", "harbor:8443", config.Insecure, nil))
	_, err = p.publish(ctx)
	require.NoError(t, err)
	require.Equal(t, []Host{{Host: "harbor:8443", SkipVerify: true, Registries: []string{"harbor"}}}, published())

	current = verified
	_, err = p.publish(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, published(), "nodes verify harbor:8443 again")

	// Once written, not written again while nothing changes.
	var before corev1.ConfigMap
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "regcred", Name: "regcred-node-trust"}, &before))
	r.frozen = before.DeepCopy()
	_, err = p.publish(ctx)
	require.NoError(t, err)
	var after corev1.ConfigMap
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "regcred", Name: "regcred-node-trust"}, &after))
	assert.Equal(t, before.ResourceVersion, after.ResourceVersion)
}
