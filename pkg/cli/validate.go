package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regcred/regcred/pkg/config"
)

type validateResult struct {
	File string `json:"file"`
	// Input says where in the file the config is: empty for a bare
	// RegistryConfig, else the manifest and key, or the chart's values.
	Input string `json:"input,omitempty"`
	// StoredIn is where the config was validated as stored (ConfigMap or
	// Secret), which decides whether credentials may be inline.
	StoredIn   config.StoredIn `json:"storedIn"`
	Valid      bool            `json:"valid"`
	Registries int             `json:"registries"`
	Default    string          `json:"default,omitempty"`
	// Problems carry their registry and field as data.
	Problems []config.Problem `json:"problems,omitempty"`
	// Unchecked lists the fields whose secretKeyRefs were not read (no
	// --kubeconfig), as "registry.field".
	Unchecked []string `json:"unchecked,omitempty"`
	// Cluster is --cluster, and NotInjected the registries whose cluster
	// policy leaves that cluster out (empty without --cluster).
	Cluster     string   `json:"cluster,omitempty"`
	NotInjected []string `json:"notInjected,omitempty"`
}

func newValidate() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Validate a registry config offline, every problem listed",
		Long: `Validate a registry config with exactly what regcred runs when it loads one.
Every problem is listed at once, each with its registry and field; unknown
fields are named with their path.

The file is a RegistryConfig, a ConfigMap or Secret manifest that holds one
under --config-key (a Secret's data is base64, its stringData plain), or the
Helm chart's values file (config.registries). Where the config is stored
decides whether credentials may be written inline: it is the manifest's kind
(a values file renders a ConfigMap), or --stored-in.

The Secrets that secretKeyRefs name are read from the cluster with
--kubeconfig (in --namespace, regcred's), as the webhook reads them;
otherwise they are left unread and listed.`,
		Example: `  # A config file, as the chart's ConfigMap would store it
  regcred validate -f config.yaml

  # The ConfigMap in the cluster, and the Secrets it names
  kubectl -n regcred get configmap regcred-config -o yaml | regcred validate -f - --kubeconfig ~/.kube/config

  # The chart's values, before helm upgrade
  regcred validate -f my-registries.yaml

  # Problems as data: registry, index, field, message
  regcred validate -f config.yaml -o json`,
		Args: noArgs,
	}
	c.bind(cmd.Flags(), "configmap")
	c.bindCluster(cmd.Flags())
	c.bindSecrets(cmd.Flags())
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		if err := c.check(); err != nil {
			return err
		}
		return c.runValidate(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
	})
	return cmd
}

// runValidate validates the config and prints the outcome.
func (c *common) runValidate(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	res, err := c.validate(ctx, stdin)
	if err != nil {
		return err
	}
	if c.output == "json" {
		if err := printJSON(stdout, res); err != nil {
			return err
		}
	} else {
		if res.Input != "" {
			fmt.Fprintf(stdout, "%s: the config in %s, stored in a %s\n", c.file, res.Input, res.StoredIn)
		}
		if res.Valid {
			fmt.Fprintf(stdout, "%s: valid, %s", c.file, plural(res.Registries, "registry", "registries"))
			if res.Default != "" {
				fmt.Fprintf(stdout, " (default %s)", res.Default)
			}
			fmt.Fprintln(stdout)
			switch n := len(res.Unchecked); {
			case n == 1:
				fmt.Fprintf(stdout, "%s: 1 secretKeyRef not read (pass --kubeconfig to check the Secret it names)\n", c.file)
			case n > 1:
				fmt.Fprintf(stdout, "%s: %d secretKeyRefs not read (pass --kubeconfig to check the Secrets they name)\n", c.file, n)
			}
			switch n := len(res.NotInjected); {
			case res.Cluster == "":
			case n == 0:
				fmt.Fprintf(stdout, "%s: in cluster %q, every registry injects\n", c.file, res.Cluster)
			case n == 1:
				fmt.Fprintf(stdout, "%s: in cluster %q, 1 registry injects nowhere (its cluster policy): %s\n", c.file, res.Cluster, res.NotInjected[0])
			default:
				fmt.Fprintf(stdout, "%s: in cluster %q, %d registries inject nowhere (their cluster policy): %s\n", c.file, res.Cluster, n, strings.Join(res.NotInjected, ", "))
			}
		}
		for _, p := range res.Problems {
			fmt.Fprintf(stdout, "%s: %s\n", c.file, p.Error())
		}
	}
	if !res.Valid {
		return errProblems
	}
	return nil
}

// validate loads the config as regcred does and reports the outcome.
func (c *common) validate(ctx context.Context, stdin io.Reader) (validateResult, error) {
	res := validateResult{File: c.file}
	set, err := c.load(ctx, stdin)
	if c.in != nil {
		res.Input = c.in.describe
	}
	res.StoredIn = c.stored()
	var ps config.Problems
	switch {
	case errors.As(err, &ps):
		res.Problems = ps
		return res, nil
	case err != nil:
		return res, err
	}
	res.Valid, res.Registries = true, len(set.Registries)
	if d := set.Default(); d != nil {
		res.Default = d.Name
	}
	for _, r := range set.Registries {
		for _, f := range r.Unresolved {
			res.Unchecked = append(res.Unchecked, r.Name+"."+f)
		}
	}
	if c.cluster != "" {
		res.Cluster = c.cluster
		for _, r := range set.Registries {
			if !r.Injects {
				res.NotInjected = append(res.NotInjected, r.Name)
			}
		}
	}
	return res, nil
}
