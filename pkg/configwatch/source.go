package configwatch

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/config"
)

// Source says where the config is stored.
type Source struct {
	// Namespace is regcred's own namespace.
	Namespace string
	// StoredIn is ConfigMap or Secret.
	StoredIn config.StoredIn
	// Name of the ConfigMap or Secret, and the Key that holds the YAML.
	Name, Key string
}

func (s Source) String() string {
	return fmt.Sprintf("%s %s/%s key %s", s.StoredIn, s.Namespace, s.Name, s.Key)
}

// object returns an empty object of the source's kind.
func (s Source) object() client.Object {
	if s.StoredIn == config.InSecret {
		return &corev1.Secret{}
	}
	return &corev1.ConfigMap{}
}

// Read returns the config's bytes and the object they came from.
func (s Source) Read(ctx context.Context, c client.Reader) ([]byte, client.Object, error) {
	obj := s.object()
	if err := c.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("%s: not found", s)
		}
		return nil, nil, fmt.Errorf("%s: %w", s, err)
	}
	var data []byte
	var ok bool
	switch o := obj.(type) {
	case *corev1.Secret:
		data, ok = o.Data[s.Key]
	case *corev1.ConfigMap:
		var str string
		if str, ok = o.Data[s.Key]; ok {
			data = []byte(str)
		} else {
			data, ok = o.BinaryData[s.Key]
		}
	}
	if !ok {
		return nil, obj, fmt.Errorf("%s: the key does not exist", s)
	}
	return data, obj, nil
}

// SecretReader resolves secretKeyRefs from the Secrets of regcred's
// namespace, through Reader (a cache, or a client of the API server).
type SecretReader struct {
	Reader    client.Reader
	Namespace string
}

var _ config.SecretReader = SecretReader{}

// ReadSecretKey returns one key of a Secret; errors never quote a value.
func (r SecretReader) ReadSecretKey(ctx context.Context, name, key string) ([]byte, error) {
	var s corev1.Secret
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, config.ErrSecretNotFound
		}
		return nil, errors.New(string(apierrors.ReasonForError(err)))
	}
	v, ok := s.Data[key]
	if !ok {
		return nil, config.ErrKeyNotFound
	}
	return v, nil
}
