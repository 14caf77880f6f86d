package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
)

const redacted = "<redacted>"

// newRender prints the .dockerconfigjson regcred would write for a
// registry, with its secrets redacted unless asked otherwise.
func newRender() *cobra.Command {
	var c common
	var name string
	var show bool
	cmd := &cobra.Command{
		Use:   "render -f FILE [--registry NAME] [--show-secrets]",
		Short: "Print the .dockerconfigjson regcred would write (secrets redacted)",
		Long: `Print the .dockerconfigjson of the pull secret regcred would write for a
registry, with the keys the kubelet and go-containerregistry resolve, as
JSON (-o json, the only format). The password and auth fields are redacted
unless --show-secrets.

Credentials come from the file, and from the Secrets that secretKeyRefs name
in the cluster with --kubeconfig (in --namespace, regcred's).`,
		Example: `  # The default registry's pull secret
  regcred render -f config.yaml

  # A registry whose password is in a Secret of regcred's namespace
  regcred render -f config.yaml --registry hub --kubeconfig ~/.kube/config`,
		Args: noArgs,
	}
	// A .dockerconfigjson is JSON: render prints no text. Cluster
	// policies decide where a secret is injected, not what it holds: no
	// --cluster.
	c.bindFile(cmd.Flags(), "secret")
	c.bindOutput(cmd.Flags(), "json")
	c.bindSecrets(cmd.Flags())
	cmd.Flags().StringVar(&name, "registry", "", "The registry (default: the config's default registry).")
	cmd.Flags().BoolVar(&show, "show-secrets", false, "Print the password and auth fields instead of redacting them.")
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		if err := c.check(); err != nil {
			return err
		}
		ctx := cmd.Context()
		set, err := c.registries(ctx, cmd.InOrStdin(), cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		regs, err := pick(set, name, false)
		if err != nil {
			return err
		}
		r := regs[0]
		switch {
		case r.Mode == config.ImagePullSecret:
			// Its credentials, if any, are for the login checks only.
			return fmt.Errorf("registry %q injects the admin's secret %q; regcred writes none", r.Name, r.SecretName)
		case len(r.Unresolved) > 0:
			return usageError{fmt.Errorf("registry %q: %s: pass --kubeconfig (and --namespace, regcred's namespace) to read %s from the cluster", r.Name, fromSecrets(r.Unresolved), pronoun(len(r.Unresolved)))}
		}
		want, err := r.Want(ctx, registries.Need{})
		if err != nil {
			return err
		}
		var doc struct {
			Auths map[string]map[string]string `json:"auths"`
		}
		if err := json.Unmarshal(want.Data, &doc); err != nil {
			return err
		}
		if !show {
			for _, a := range doc.Auths {
				a["password"], a["auth"] = redacted, redacted
			}
		}
		return printJSON(cmd.OutOrStdout(), doc)
	})
	return cmd
}

// fromSecrets says that fields come from Secrets: "password comes from a
// Secret (secretKeyRef)", "username, password come from Secrets
// (secretKeyRef)".
func fromSecrets(fields []string) string {
	if len(fields) == 1 {
		return fields[0] + " comes from a Secret (secretKeyRef)"
	}
	return strings.Join(fields, ", ") + " come from Secrets (secretKeyRef)"
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}
