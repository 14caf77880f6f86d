package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/regcred/regcred/pkg/config"
)

type validateResult struct {
	File       string `json:"file"`
	Valid      bool   `json:"valid"`
	Registries int    `json:"registries"`
	Default    string `json:"default,omitempty"`
	// Problems carry their registry and field as data.
	Problems []config.Problem `json:"problems,omitempty"`
	// Unchecked lists the fields whose secretKeyRefs were not read (no
	// --kubeconfig), as "registry.field".
	Unchecked []string `json:"unchecked,omitempty"`
}

// validate checks a config with exactly what regcred runs when it loads
// one; secretKeyRefs are resolved when --kubeconfig is given.
func validate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("regcred validate", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var c common
	c.bind(flags, "configmap")
	c.bindSecrets(flags)
	if err := c.parse(flags, args); err != nil {
		return err
	}
	res, err := c.validate(ctx, stdin)
	if err != nil {
		return err
	}
	if c.output == "json" {
		if err := printJSON(stdout, res); err != nil {
			return err
		}
	} else if res.Valid {
		fmt.Fprintf(stdout, "%s: valid, %s", c.file, plural(res.Registries, "registry", "registries"))
		if res.Default != "" {
			fmt.Fprintf(stdout, " (default %s)", res.Default)
		}
		fmt.Fprintln(stdout)
		if n := len(res.Unchecked); n > 0 {
			fmt.Fprintf(stdout, "%s: %s not read (pass --kubeconfig to check the Secrets they name)\n", c.file, plural(n, "secretKeyRef", "secretKeyRefs"))
		}
	} else {
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
	return res, nil
}
