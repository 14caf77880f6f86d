package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/regcred/regcred/pkg/check"
)

// checkCmd runs the login check now, honouring each registry's connection mode.
func checkCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("regcred check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.bind(fs, "secret")
	c.bindSecrets(fs)
	name := fs.String("registry", "", "The registry to check (default: the config's default registry).")
	all := fs.Bool("all", false, "Check every registry.")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	set, err := c.registries(ctx, stdin, stderr, false)
	if err != nil {
		return err
	}
	regs, err := pick(set, *name, *all)
	if err != nil {
		return err
	}
	var results []check.Result
	ok := true
	for _, r := range regs {
		res := check.Login(ctx, r)
		ok = ok && res.OK
		results = append(results, res)
	}
	if c.output == "json" {
		if err := printJSON(stdout, results); err != nil {
			return err
		}
	} else {
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
}
