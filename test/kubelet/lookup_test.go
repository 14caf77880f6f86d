package kubelet

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regcred/regcred/test/testbed"
)

// TestLookup runs every case through the kubelet's code (one judge run for
// all of them) and through go-containerregistry's keychain.
func TestLookup(t *testing.T) {
	pods := make([]testbed.JudgePod, len(lookupCases))
	for i, c := range lookupCases {
		for _, s := range c.secrets {
			pods[i].Secrets = append(pods[i].Secrets, testbed.JudgeSecret{Name: s.name, DockerConfigJSON: dockerConfigJSON(t, s)})
		}
		pods[i].Images = []string{c.image}
	}
	res, err := testbed.KubeletJudge(t.Context(), pods)
	require.NoError(t, err)

	for i, c := range lookupCases {
		t.Run(c.name, func(t *testing.T) {
			require.Empty(t, res[i].Error)
			require.Len(t, res[i].Images, 1)
			img := res[i].Images[0]
			require.Empty(t, img.Error)
			assert.Equal(t, c.image, img.Image)
			if c.lookup != "" {
				assert.Equal(t, c.lookup, img.Lookup)
			}
			var got []cand
			for _, cr := range img.Credentials {
				got = append(got, cand{cr.Secret, cr.Key, cr.Username})
				assert.Equal(t, password(cr.Username), cr.Password)
			}
			assert.Equal(t, c.kubelet, got, "kubelet")
			assert.Equal(t, c.ggcr, ggcrUser(t, c.secrets, c.image), "go-containerregistry")
		})
	}
}

// password makes up a user's password.
func password(user string) string { return user + "-Pa55-judge" }

// dockerConfigJSON renders a secret the way regcred and kubectl do: user
// name, password and auth.
func dockerConfigJSON(t *testing.T, s secret) json.RawMessage {
	t.Helper()
	auths := map[string]map[string]string{}
	for _, e := range s.entries {
		auths[e.key] = map[string]string{
			"username": e.user,
			"password": password(e.user),
			"auth":     base64.StdEncoding.EncodeToString([]byte(e.user + ":" + password(e.user))),
		}
	}
	b, err := json.Marshal(map[string]any{"auths": auths})
	require.NoError(t, err)
	return b
}

// ggcrUser returns the user go-containerregistry's pull-secret keychain
// resolves an image to ("" for anonymous, "error" when it cannot parse the
// image), as remote.Image does: for the reference's repository.
func ggcrUser(t *testing.T, secrets []secret, image string) string {
	t.Helper()
	var pullSecrets []corev1.Secret
	for _, s := range secrets {
		pullSecrets = append(pullSecrets, corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: "default"},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfigJSON(t, s)},
		})
	}
	kc, err := kubernetes.NewFromPullSecrets(t.Context(), pullSecrets)
	require.NoError(t, err)
	ref, err := name.ParseReference(image)
	if err != nil {
		return "error"
	}
	auth, err := kc.Resolve(ref.Context())
	require.NoError(t, err)
	cfg, err := auth.Authorization()
	require.NoError(t, err)
	if cfg.Username != "" {
		assert.Equal(t, password(cfg.Username), cfg.Password)
	}
	return cfg.Username
}
