package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
)

type noEvents struct{}

func (noEvents) ConfigReload(bool) {}

// `regcred validate` and the running webhook load a config with the same
// function: on a table of good and bad configs, they accept the same ones
// and report the same problems.
func TestValidateAgreesWithTheWebhook(t *testing.T) {
	const header = "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n"
	key := `{"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com", "private_key": "KEY"}`
	secrets := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "creds"},
		Data: map[string][]byte{
			"token":    []byte("t0ken"),
			"gcp-good": []byte(key),
			"gcp-bad":  []byte("this is not a key"),
			"empty":    {},
		},
	}
	for _, tc := range []struct {
		name   string
		config string
		valid  bool
	}{
		{"good quay", header + "- {name: q, type: quay, url: quay.io, username: {value: me}, password: {secretKeyRef: {name: creds, key: token}}}", true},
		{"good gcr key in a Secret", header + "- {name: g, type: gcr, url: gcr.io, password: {secretKeyRef: {name: creds, key: gcp-good}}}", true},
		{"gcr password that is no key", header + "- {name: g, type: gcr, url: gcr.io, password: {secretKeyRef: {name: creds, key: gcp-bad}}}", false},
		{"missing Secret", header + "- {name: q, type: quay, url: quay.io, username: {value: me}, password: {secretKeyRef: {name: nope, key: token}}}", false},
		{"missing key", header + "- {name: q, type: quay, url: quay.io, username: {value: me}, password: {secretKeyRef: {name: creds, key: nope}}}", false},
		{"empty key", header + "- {name: q, type: quay, url: quay.io, username: {value: me}, password: {secretKeyRef: {name: creds, key: empty}}}", false},
		{"ecr iam-role", header + "- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}", true},
		{"ecr other partition", header + "- {name: e, type: ecr, url: 123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu, ecr: {auth: iam-role}}", true},
		{"ecr bad host", header + "- {name: e, type: ecr, url: 1234.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}", false},
		{"ghcr", header + "- {name: gh, type: ghcr, url: ghcr.io/my-org, username: {value: octocat}, password: {secretKeyRef: {name: creds, key: token}}}", true},
		{"unknown fields", header + "- {name: q, type: quay, url: quay.io, usernme: {value: me}, pasword: {secretKeyRef: {name: creds, key: token}}}", false},
		{"inline password in a ConfigMap", header + "- {name: q, type: quay, url: quay.io, username: {value: me}, password: {value: hunter2}}", false},
		{"duplicate names", header + "- {name: q, type: quay, url: quay.io, username: {value: me}, password: {secretKeyRef: {name: creds, key: token}}}\n- {name: q, type: other, url: x.io, username: {value: me}, password: {secretKeyRef: {name: creds, key: token}}}", false},
		{"admin's own secret", header + "- {name: h, type: other, url: harbor.example.com, pullSecret: {mode: image-pull-secret, name: regcred}}", true},
		{"wrong kind", "apiVersion: regcred.io/v1alpha1\nkind: Other\nregistries: []\n", false},
		{"not YAML", "registries: [", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "cfg"}, Data: map[string]string{"config.yaml": tc.config}}
			c := fake.NewClientBuilder().WithObjects(cm, secrets.DeepCopy()).Build()
			// The webhook's loader, as app wires it.
			loader := &configwatch.Loader{
				Source: configwatch.Source{Namespace: "regcred", StoredIn: config.InConfigMap, Name: "cfg", Key: "config.yaml"},
				Reader: c,
				Build: registries.Options{
					Types:       registrytype.Builtin(registrytype.Deps{ECR: ecr.NewMinter(ecr.Options{})}),
					ClusterName: "prod",
				},
				Metrics: noEvents{},
			}
			require.NoError(t, loader.Reload(context.Background()))
			webhookErr := loader.Status().LastError

			// regcred validate, reading the same Secrets.
			cmd := common{file: "-", storedIn: "configmap", cluster: "prod",
				reader: configwatch.SecretReader{Reader: c, Namespace: "regcred"}}
			res, err := cmd.validate(t.Context(), strings.NewReader(tc.config))
			require.NoError(t, err)

			assert.Equal(t, tc.valid, webhookErr == nil, "webhook: %v", webhookErr)
			assert.Equal(t, tc.valid, res.Valid, "validate: %v", res.Problems)
			assert.Equal(t, config.ProblemsOf(webhookErr), config.Problems(res.Problems), "the same problems, field for field")
			assert.NotContains(t, config.Problems(res.Problems).Error(), "hunter2")
			assert.NotContains(t, config.Problems(res.Problems).Error(), "this is not a key")
		})
	}
}
