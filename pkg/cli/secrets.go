package cli

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/regcred/regcred/pkg/config"
)

// kubeSecrets resolves secretKeyRefs from a cluster.
type kubeSecrets struct {
	cs        kubernetes.Interface
	namespace string
}

func clusterSecrets(kubeconfig, namespace string) (config.SecretReader, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return kubeSecrets{cs: cs, namespace: namespace}, nil
}

func (k kubeSecrets) ReadSecretKey(ctx context.Context, name, key string) ([]byte, error) {
	s, err := k.cs.CoreV1().Secrets(k.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, config.ErrSecretNotFound
	}
	if err != nil {
		return nil, errors.New(string(apierrors.ReasonForError(err)))
	}
	v, ok := s.Data[key]
	if !ok {
		return nil, config.ErrKeyNotFound
	}
	return v, nil
}
