package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/regcred/regcred/pkg/check"
)

// checkResult is one registry's check as -o json prints it: check.Result,
// whose durationNanoseconds is how long that registry's check took, and
// the same in Go's notation for a person.
type checkResult struct {
	check.Result
	DurationText string `json:"duration"`
}

func newCheck() *cobra.Command {
	var c common
	var name string
	var all bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check -f FILE [--registry NAME | --all]",
		Short: "Log in to registries now, as docker login does",
		Long: `Log in to registries now, as docker login does (/v2/, then the basic or
bearer-token challenge), honouring each registry's connection mode: what
regcred's periodic login check does: the default registry, the one
--registry names, or with --all every one. Registries are checked in
parallel, each within --timeout. Exit code 1 when a login fails; a registry
with nothing to log in with is skipped, and --all on a config with no
registries checks nothing: neither fails.

Credentials come from the file, and from the Secrets that secretKeyRefs name
in the cluster with --kubeconfig (in --namespace, regcred's).`,
		Example: `  # The default registry, with inline credentials
  regcred check -f config.yaml

  # Every registry, reading the Secrets the config names from the cluster
  regcred check -f config.yaml --all --kubeconfig ~/.kube/config --namespace regcred

  # One registry, as JSON (duration: how long its check took)
  regcred check -f config.yaml --registry harbor -o json`,
		Args: noArgs,
	}
	// A login does not depend on the registries' cluster policies: no
	// --cluster.
	c.bind(cmd.Flags(), "secret")
	c.bindSecrets(cmd.Flags())
	cmd.Flags().StringVar(&name, "registry", "", "The registry to check (default: the config's default registry).")
	cmd.Flags().BoolVar(&all, "all", false, "Check every registry.")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "How long each registry's check may take.")
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		if err := c.check(); err != nil {
			return err
		}
		if timeout <= 0 {
			return usageError{fmt.Errorf("--timeout %s: must be positive", timeout)}
		}
		if name != "" && all {
			return usageError{errors.New("--registry and --all: check one registry or all of them, not both")}
		}
		ctx := cmd.Context()
		set, err := c.registries(ctx, cmd.InOrStdin(), cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		regs, err := pick(set, name, all)
		if err != nil {
			return err
		}
		// An ECR registry with auth: iam-role mints as regcred's own AWS
		// identity in the cluster; here, as this machine's.
		for _, r := range regs {
			if a, ok := r.Provider.(interface{ AmbientIdentity() bool }); ok && a.AmbientIdentity() && !r.Location.Glob() { // a glob is skipped
				fmt.Fprintf(cmd.ErrOrStderr(), "regcred: registry %q (ecr.auth: iam-role) is checked with this machine's AWS identity (the AWS SDK's default chain here), not regcred's own in the cluster\n", r.Name)
			}
		}
		// Every registry at once, each within its own timeout.
		results := make([]check.Result, len(regs))
		var wg sync.WaitGroup
		for i, r := range regs {
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				results[i] = check.Login(cctx, r)
			})
		}
		wg.Wait()
		ok := true
		for _, res := range results {
			ok = ok && res.OK
		}
		stdout := cmd.OutOrStdout()
		if c.output == "json" {
			out := make([]checkResult, len(results))
			for i, r := range results {
				out[i] = checkResult{Result: r, DurationText: r.Duration.Round(time.Microsecond).String()}
			}
			if err := printJSON(stdout, out); err != nil {
				return err
			}
		} else {
			if len(results) == 0 {
				// Nothing checked, nothing failed: exit 0, as for
				// registries whose check is skipped.
				fmt.Fprintf(stdout, "%s: no registries to check: the config has none\n", c.file)
			}
			for _, r := range results {
				word := "ok"
				switch {
				case r.Skipped:
					word = "skipped"
				case !r.OK:
					word = "FAILED"
				}
				fmt.Fprintf(stdout, "%s: %s: %s\n", r.Registry, word, r.Message)
			}
		}
		if !ok {
			return errProblems
		}
		return nil
	})
	return cmd
}
