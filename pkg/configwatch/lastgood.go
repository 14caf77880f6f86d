package configwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/config"
)

// LastGood keeps the last config regcred loaded, with the values of the
// Secrets it referred to, in a Secret of regcred's own namespace, so that a
// replica that starts while the stored config is broken (or its Secrets
// are) serves the last good one. It holds credentials: it is a Secret, in
// the namespace that holds them anyway.
type LastGood struct {
	// Reader reads regcred's namespace (a cache); Writer writes there.
	Reader client.Reader
	Writer client.Client
	// Namespace and Name locate the Secret.
	Namespace, Name string
}

// Keys of the last good config's Secret.
const (
	lastGoodConfigKey = "config.yaml"
	lastGoodValuesKey = "values.json"
	// AnnotationSavedAt records when the config was loaded.
	AnnotationSavedAt = "regcred.io/saved-at"
)

// snapshot is a loaded config and the referenced values it was loaded with.
type snapshot struct {
	data    []byte
	values  map[string][]byte // "secret/key" -> value
	savedAt time.Time
}

// load returns the stored snapshot, if any.
func (g *LastGood) load(ctx context.Context) (snapshot, bool) {
	var s corev1.Secret
	if err := g.Reader.Get(ctx, client.ObjectKey{Namespace: g.Namespace, Name: g.Name}, &s); err != nil {
		return snapshot{}, false
	}
	data, ok := s.Data[lastGoodConfigKey]
	if !ok {
		return snapshot{}, false
	}
	snap := snapshot{data: data, values: map[string][]byte{}}
	if raw := s.Data[lastGoodValuesKey]; len(raw) > 0 {
		if err := json.Unmarshal(raw, &snap.values); err != nil {
			return snapshot{}, false
		}
	}
	snap.savedAt, _ = time.Parse(time.RFC3339, s.Annotations[AnnotationSavedAt])
	return snap, true
}

// save stores a snapshot, unless the stored one holds the same.
func (g *LastGood) save(ctx context.Context, snap snapshot) error {
	values, err := json.Marshal(snap.values)
	if err != nil {
		return err
	}
	if have, ok := g.load(ctx); ok && bytes.Equal(have.data, snap.data) && equalValues(have.values, snap.values) {
		return nil
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: g.Namespace, Name: g.Name,
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "regcred"},
			Annotations: map[string]string{AnnotationSavedAt: snap.savedAt.UTC().Format(time.RFC3339)}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{lastGoodConfigKey: snap.data, lastGoodValuesKey: values},
	}
	err = g.Writer.Update(ctx, s)
	if apierrors.IsNotFound(err) {
		err = g.Writer.Create(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("keeping the last good config in Secret %s/%s: %s", g.Namespace, g.Name, cause(err))
	}
	return nil
}

func equalValues(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// recordingReader reads Secrets through a SecretReader and remembers what
// it read, for the snapshot, and whether a read failed (see readError).
type recordingReader struct {
	inner      config.SecretReader
	mu         sync.Mutex
	seen       map[string][]byte
	readFailed bool
}

func (r *recordingReader) ReadSecretKey(ctx context.Context, name, key string) ([]byte, error) {
	v, err := r.inner.ReadSecretKey(ctx, name, key)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.seen[name+"/"+key] = v
	case isReadError(err):
		r.readFailed = true
	}
	return v, err
}

// failed reports whether a read failed for want of the API server.
func (r *recordingReader) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readFailed
}

// snapshotReader serves the values a snapshot was loaded with.
type snapshotReader map[string][]byte

func (s snapshotReader) ReadSecretKey(_ context.Context, name, key string) ([]byte, error) {
	v, ok := s[name+"/"+key]
	if !ok {
		return nil, errors.New("not in the last good config's snapshot")
	}
	return v, nil
}
