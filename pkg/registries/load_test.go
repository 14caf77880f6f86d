package registries

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registrytype"
)

// cfg wraps registries' YAML into a config.
func cfg(body string) string {
	return "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n" + body
}

func TestLoadNamesRegistryAndField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     config.StoredIn
		config string
		want   []string
	}{
		{"bad header", config.InSecret, "apiVersion: v1\nkind: Foo\n", []string{"apiVersion: must be regcred.io/v1alpha1", "kind: must be RegistryConfig"}},
		{"unknown type", config.InSecret, cfg("- {name: a, type: harbor, url: x.io}"), []string{`registry "a": type: "harbor" is not one of ecr, docker`}},
		{"bad name", config.InSecret, cfg("- {name: Bad_Name, type: other, url: x.io, username: {value: u}, password: {value: p}}"), []string{`registry "Bad_Name": name: must be a DNS label`}},
		{"long name", config.InSecret, cfg("- {name: " + strings.Repeat("a", 56) + ", type: other, url: x.io, username: {value: u}, password: {value: p}}"), []string{"name: must be at most 55 characters"}},
		{"no name", config.InSecret, cfg("- {type: other, url: x.io, username: {value: u}, password: {value: p}}"), []string{"registries[0]: name: must not be empty"}},
		{"duplicate name", config.InSecret, cfg("- {name: a, type: other, url: x.io, username: {value: u}, password: {value: p}}\n- {name: a, type: other, url: y.io, username: {value: u}, password: {value: p}}"), []string{`registry "a" (registries[1]): name: is also the name of registries[0]`}},
		{"duplicate url", config.InSecret, cfg("- {name: a, type: other, url: X.io/p, username: {value: u}, password: {value: p}}\n- {name: b, type: other, url: 'https://x.io/p/', username: {value: u}, password: {value: p}}"), []string{`registry "b": url: x.io/p is also the url of registry "a"`}},
		{"two defaults", config.InSecret, cfg("- {name: a, default: true, type: other, url: x.io, username: {value: u}, password: {value: p}}\n- {name: b, default: true, type: other, url: y.io, username: {value: u}, password: {value: p}}"), []string{`default: at most one registry may be the default, not "a", "b"`}},
		{"ecr url", config.InSecret, cfg("- {name: e, type: ecr, url: 'https://12345.dkr.ecr.eu-west-1.amazonaws.com', ecr: {auth: iam-role}}"), []string{`registry "e": url: "https://12345.dkr.ecr.eu-west-1.amazonaws.com" is not an ecr registry address: must be https://<12-digit account>.dkr.ecr.<region>.amazonaws.com (or another AWS partition's domain`}},
		{"ecr without auth", config.InSecret, cfg("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com}"), []string{`registry "e": ecr: is required`}},
		{"ecr access key missing", config.InSecret, cfg("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key}}"), []string{"ecr.accessKeyID: is required", "ecr.secretAccessKey: is required"}},
		{"ecr role with keys", config.InSecret, cfg("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role, accessKeyID: {value: A}}}"), []string{"ecr: auth: iam-role uses regcred's own AWS identity"}},
		{"ecr with password", config.InSecret, cfg("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, password: {value: p}, ecr: {auth: iam-role}}"), []string{"password: is not used by an ecr registry"}},
		{"ecr auth unknown", config.InSecret, cfg("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: sso}}"), []string{`ecr.auth: "sso" is not one of iam-role, access-key`}},
		{"ecr block on docker", config.InSecret, cfg("- {name: h, type: docker, url: docker.io, username: {value: u}, password: {value: p}, ecr: {auth: iam-role}}"), []string{"ecr: is used only by type ecr, not docker"}},
		{"docker url", config.InSecret, cfg("- {name: h, type: docker, url: quay.io, username: {value: u}, password: {value: p}}"), []string{`url: "quay.io" is not a docker registry address: must be docker.io`}},
		{"azure url", config.InSecret, cfg("- {name: z, type: azure, url: myreg.azure.io, username: {value: u}, password: {value: p}}"), []string{"must be <registry>.azurecr.io"}},
		{"gcr url", config.InSecret, cfg("- {name: g, type: gcr, url: gcr.com, password: {value: '{}'}}"), []string{"must be gcr.io or a regional"}},
		{"artifact url", config.InSecret, cfg("- {name: g, type: artifact-registry, url: europe-west1.pkg.dev, password: {value: '{}'}}"), []string{"must be <region>-docker.pkg.dev"}},
		{"quay url", config.InSecret, cfg("- {name: q, type: quay, url: quay.example.com, username: {value: u}, password: {value: p}}"), []string{"for a self-hosted Quay, use type other"}},
		{"gcr user", config.InSecret, cfg("- {name: g, type: gcr, url: gcr.io, username: {value: admin}, password: {value: '{}'}}"), []string{"username: must be _json_key or _json_key_base64"}},
		{"missing credentials", config.InSecret, cfg("- {name: o, type: other, url: x.io}"), []string{`registry "o": username: is required`, `registry "o": password: is required`}},
		{"inline password in configmap", config.InConfigMap, cfg("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: hunter2}}"), []string{`registry "o": password: a credential must not be written inline in a ConfigMap`}},
		{"inline ecr key in configmap", config.InConfigMap, cfg("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key, accessKeyID: {value: AKIA}, secretAccessKey: {value: s3cr3t}}}"), []string{"ecr.accessKeyID: a credential must not be written inline", "ecr.secretAccessKey: a credential must not be written inline"}},
		{"both value and ref", config.InSecret, cfg("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p, secretKeyRef: {name: s, key: k}}}"), []string{"password: set value or secretKeyRef, not both"}},
		{"neither value nor ref", config.InSecret, cfg("- {name: o, type: other, url: x.io, username: {value: u}, password: {}}"), []string{"password: set value or secretKeyRef"}},
		{"bad ref", config.InSecret, cfg("- {name: o, type: other, url: x.io, username: {value: u}, password: {secretKeyRef: {name: Bad/Name, key: 'a b'}}}"), []string{"password.secretKeyRef.name: must be a Secret name", "password.secretKeyRef.key: must be a Secret key"}},
		{"connection unknown", config.InSecret, cfg("- {name: o, type: other, url: x.io, connection: tls, username: {value: u}, password: {value: p}}"), []string{`connection: "tls" is not one of secure, secure-with-ca, insecure`}},
		{"ca missing", config.InSecret, cfg("- {name: o, type: other, url: x.io, connection: secure-with-ca, username: {value: u}, password: {value: p}}"), []string{"caCert: is required with connection: secure-with-ca"}},
		{"ca unused", config.InSecret, cfg("- {name: o, type: other, url: x.io, caCert: {value: pem}, username: {value: u}, password: {value: p}}"), []string{"caCert: is used only with connection: secure-with-ca"}},
		{"http needs insecure", config.InSecret, cfg("- {name: o, type: other, url: 'http://x.io', username: {value: u}, password: {value: p}}"), []string{"url: plain http:// needs connection: insecure"}},
		{"ipv6 without port", config.InSecret, cfg("- {name: o, type: other, url: '[::1]', username: {value: u}, password: {value: p}}"), []string{"an IPv6 registry needs an explicit port"}},
		{"cluster mode", config.InSecret, cfg("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, clusters: {mode: all}}"), []string{`clusters.mode: "all" is not one of inject-everywhere-except, inject-only`}},
		{"inject-only empty", config.InSecret, cfg("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, clusters: {mode: inject-only}}"), []string{"clusters.names: inject-only needs at least one cluster name"}},
		{"cluster listed twice", config.InSecret, cfg("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, clusters: {names: [a, a, '']}}"), []string{`clusters.names[1]: "a" is listed twice`, "clusters.names[2]: must not be empty"}},
		{"pull secret mode", config.InSecret, cfg("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, pullSecret: {mode: copy}}"), []string{`pullSecret.mode: "copy" is not one of registry-credentials, image-pull-secret`}},
		{"pull secret name missing", config.InSecret, cfg("- {name: o, type: other, url: x.io, pullSecret: {mode: image-pull-secret}}"), []string{"pullSecret.name: is required with mode: image-pull-secret"}},
		{"ghcr url", config.InSecret, cfg("- {name: g, type: ghcr, url: github.com, username: {value: u}, password: {value: p}}"), []string{`url: "github.com" is not a ghcr registry address: must be ghcr.io`}},
		{"unnamed unknown type", config.InSecret, cfg("- {type: nexus, url: x.io}"), []string{`registries[0]: type: "nexus" is not one of`}},
		{"missing type", config.InSecret, cfg("- {name: notype, url: x.io}"), []string{`registry "notype": type: is required: one of ecr, docker`}},
		{"gcr key checked as the webhook checks it", config.InSecret, cfg("- {name: g, type: gcr, url: gcr.io, password: {value: 'not a key'}}"), []string{`registry "g": password: is neither a service-account JSON key nor one in base64`}},
		{"pull secret name unused", config.InSecret, cfg("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, pullSecret: {name: mine}}"), []string{"pullSecret.name: is used only with mode: image-pull-secret (in registry-credentials mode regcred names the secret regcred-o)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(t.Context(), []byte(tc.config), Options{StoredIn: tc.in})
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			for _, secret := range []string{"hunter2", "s3cr3t", "AKIA"} {
				assert.NotContains(t, err.Error(), secret, "an error must not quote a credential")
			}
		})
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	_, err := Load(t.Context(), []byte(cfg(`
- {name: a, type: other, url: 'x.io'}
- {name: b, type: docker, url: quay.io, username: {value: u}, password: {value: p}}
- {name: c, type: ecr, url: nowhere, ecr: {auth: iam-role}, clusters: {mode: inject-only}}
- {name: d, type: quay, url: quay.io, usernme: {value: u}, pasword: {value: p}}
`)), Options{StoredIn: config.InSecret})
	require.Error(t, err)
	ps := config.ProblemsOf(err)
	var got []string
	for _, p := range ps {
		got = append(got, p.Registry+" "+p.Field)
	}
	assert.ElementsMatch(t, []string{
		"a username", "a password", "b url", "c url", "c clusters.names",
		"d usernme", "d pasword", "d username", "d password", "d url", // quay.io is b's url too
	}, got, err.Error())
	assert.Len(t, strings.Split(err.Error(), "\n"), len(ps))
}

// Every credential is used trimmed, so one that is only whitespace (a
// token Secret holding just a newline) is refused at load, naming the
// registry and the field, for every type and credential field, instead
// of rendering a pull secret with an empty password.
func TestLoadRefusesBlankCredentials(t *testing.T) {
	const gcpKey = `{"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com", "private_key": "KEY"}`
	for _, tc := range []struct {
		name, registry, want string
		refs                 secrets
	}{
		{"docker token", "- {name: hub, type: docker, url: docker.io, username: {value: me}, password: {secretKeyRef: {name: hub, key: token}}}",
			`registry "hub": password: secretKeyRef hub/token: holds only whitespace`, secrets{"hub/token": "\n"}},
		{"other password", "- {name: o, type: other, url: x.io, username: {value: me}, password: {secretKeyRef: {name: o, key: password}}}",
			`registry "o": password: secretKeyRef o/password: holds only whitespace`, secrets{"o/password": "  "}},
		{"username", "- {name: q, type: quay, url: quay.io, username: {secretKeyRef: {name: q, key: user}}, password: {secretKeyRef: {name: q, key: token}}}",
			`registry "q": username: secretKeyRef q/user: holds only whitespace`, secrets{"q/user": "\r\n", "q/token": "t0ken"}},
		{"azure password", "- {name: z, type: azure, url: myregistry.azurecr.io, username: {value: app-id}, password: {secretKeyRef: {name: z, key: password}}}",
			`registry "z": password: secretKeyRef z/password: holds only whitespace`, secrets{"z/password": "\t\n"}},
		{"ghcr token", "- {name: g, type: ghcr, url: ghcr.io, username: {value: octocat}, password: {secretKeyRef: {name: g, key: token}}}",
			`registry "g": password: secretKeyRef g/token: holds only whitespace`, secrets{"g/token": " \n"}},
		{"gcr service-account key", "- {name: gcr, type: gcr, url: gcr.io, password: {secretKeyRef: {name: gcp, key: key.json}}}",
			`registry "gcr": password: secretKeyRef gcp/key.json: holds only whitespace`, secrets{"gcp/key.json": "\n\n"}},
		{"artifact registry key, user from a Secret", "- {name: ar, type: artifact-registry, url: europe-west1-docker.pkg.dev, username: {secretKeyRef: {name: gcp, key: user}}, password: {secretKeyRef: {name: gcp, key: key.json}}}",
			`registry "ar": username: secretKeyRef gcp/user: holds only whitespace`, secrets{"gcp/user": " ", "gcp/key.json": gcpKey}},
		{"ecr access key id", "- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key, accessKeyID: {secretKeyRef: {name: aws, key: id}}, secretAccessKey: {secretKeyRef: {name: aws, key: secret}}}}",
			`registry "e": ecr.accessKeyID: secretKeyRef aws/id: holds only whitespace`, secrets{"aws/id": "\n", "aws/secret": "s3cr3t"}},
		{"ecr secret access key", "- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key, accessKeyID: {secretKeyRef: {name: aws, key: id}}, secretAccessKey: {secretKeyRef: {name: aws, key: secret}}}}",
			`registry "e": ecr.secretAccessKey: secretKeyRef aws/secret: holds only whitespace`, secrets{"aws/id": "AKIAEXAMPLE", "aws/secret": "  "}},
		{"inline password", "- {name: o, type: other, url: x.io, username: {value: me}, password: {value: \"\\n\"}}",
			`registry "o": password.value: must not be only whitespace`, nil},
		{"inline ecr key", "- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key, accessKeyID: {value: AKIAEXAMPLE}, secretAccessKey: {value: ' '}}}",
			`registry "e": ecr.secretAccessKey.value: must not be only whitespace`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(t.Context(), []byte(cfg(tc.registry)), Options{StoredIn: config.InSecret, Secrets: tc.refs})
			require.Error(t, err)
			requireNoContent(t, err.Error(), "t0ken", "s3cr3t", "AKIAEXAMPLE", "KEY\"")
			assert.Equal(t, tc.want, err.Error(), "one problem, of the blank field, and none of the provider built without it")
		})
	}
}

// A Google key's username is checked as it is used: trimmed, and
// wherever it comes from.
func TestLoadChecksAGoogleUsernameAsUsed(t *testing.T) {
	const gcpKey = `{"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com", "private_key": "KEY"}`
	refs := secrets{"gcp/user": "admin", "gcp/key.json": gcpKey, "gcp/json-key": "_json_key\n"}
	_, err := Load(t.Context(), []byte(cfg("- {name: g, type: gcr, url: gcr.io, username: {secretKeyRef: {name: gcp, key: user}}, password: {secretKeyRef: {name: gcp, key: key.json}}}")),
		Options{StoredIn: config.InConfigMap, Secrets: refs})
	require.Error(t, err)
	assert.Equal(t, `registry "g": username: must be _json_key or _json_key_base64 for a gcr registry`, err.Error())
	requireNoContent(t, err.Error(), "admin")

	for _, username := range []string{`{value: "_json_key\n"}`, `{secretKeyRef: {name: gcp, key: json-key}}`} {
		set, err := Load(t.Context(), []byte(cfg("- {name: g, type: artifact-registry, url: europe-west1-docker.pkg.dev, username: "+username+", password: {secretKeyRef: {name: gcp, key: key.json}}}")),
			Options{StoredIn: config.InSecret, Secrets: refs})
		require.NoError(t, err, username)
		c, err := set.Get("g").Provider.Credential(t.Context())
		require.NoError(t, err)
		assert.Equal(t, registrytype.JSONKeyUser, c.Username)
	}
}

// In image-pull-secret mode the credentials are optional, as a pair: half
// of one would only fail the login checks, without naming what is missing.
func TestLoadImagePullSecretCredentialsAreAPair(t *testing.T) {
	for reg, want := range map[string]string{
		"{name: r, type: other, url: x.io, password: {value: p}":       `registry "r": username: is required with password`,
		"{name: r, type: docker, url: docker.io, username: {value: u}": `registry "r": password: is required with username`,
	} {
		_, err := Load(t.Context(), []byte(cfg("- "+reg+", pullSecret: {mode: image-pull-secret, name: regcred}}")), Options{StoredIn: config.InSecret})
		require.Error(t, err, reg)
		assert.Equal(t, want, err.Error())
	}
}

// In image-pull-secret mode the credentials are optional for every type:
// a registry without them loads, with no provider, whatever its type's
// default username. One with a key is checked with the default username.
func TestLoadImagePullSecretWithoutCredentials(t *testing.T) {
	for _, reg := range []string{
		"{name: r, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com",
		"{name: r, type: docker, url: docker.io",
		"{name: r, type: azure, url: myregistry.azurecr.io",
		"{name: r, type: artifact-registry, url: europe-west1-docker.pkg.dev",
		"{name: r, type: gcr, url: gcr.io",
		"{name: r, type: quay, url: quay.io",
		"{name: r, type: ghcr, url: ghcr.io",
		"{name: r, type: other, url: x.io",
	} {
		t.Run(reg, func(t *testing.T) {
			set, err := Load(t.Context(), []byte(cfg("- "+reg+", pullSecret: {mode: image-pull-secret, name: regcred}}")), Options{StoredIn: config.InConfigMap})
			require.NoError(t, err)
			r := set.Get("r")
			require.NotNil(t, r)
			assert.Nil(t, r.Provider, "no credentials: regcred injects the admin's secret")
			assert.Equal(t, "regcred", r.SecretName)
		})
	}

	const gcpKey = `{"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com", "private_key": "KEY"}`
	for _, typ := range []string{"gcr, url: gcr.io", "artifact-registry, url: europe-west1-docker.pkg.dev"} {
		set, err := Load(t.Context(), []byte(cfg("- {name: g, type: "+typ+", password: {secretKeyRef: {name: gcp, key: key.json}}, pullSecret: {mode: image-pull-secret, name: regcred}}")),
			Options{StoredIn: config.InConfigMap, Secrets: secrets{"gcp/key.json": gcpKey}})
		require.NoError(t, err, typ)
		require.NotNil(t, set.Get("g").Provider, "a key given in image-pull-secret mode is for login checks: %s", typ)
		c, err := set.Get("g").Provider.Credential(t.Context())
		require.NoError(t, err)
		assert.Equal(t, registrytype.JSONKeyUser, c.Username, typ)
	}
}
