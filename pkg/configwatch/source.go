package configwatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
		return nil, nil, fmt.Errorf("%s: %w", s, readError{cause(err)})
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
		return nil, readError{cause(err)}
	}
	v, ok := s.Data[key]
	if !ok {
		return nil, config.ErrKeyNotFound
	}
	return v, nil
}

// readError is a read that failed for want of the API server (or of
// regcred's access to it), not for what was read: the load is tried
// again. Its text is a fixed cause, never the failure's own text, which
// may quote what was being read.
type readError struct{ cause string }

func (e readError) Error() string { return e.cause }

// isReadError reports whether err is, or wraps, a readError.
func isReadError(err error) bool {
	var re readError
	return errors.As(err, &re)
}

// cause names why a call to the API server failed, in fixed words: the
// API's reason (NotFound, Forbidden, Timeout, ...), or for an error that
// never reached it, its class. The error's own text may quote the request
// or what came back, and is never used.
func cause(err error) string {
	if r := apierrors.ReasonForError(err); r != metav1.StatusReasonUnknown {
		return string(r)
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	return "cannot reach the API server"
}
