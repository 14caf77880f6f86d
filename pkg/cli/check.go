package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

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
	timeout := fs.Duration("timeout", 30*time.Second, "How long each registry's check may take.")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	set, err := c.registries(ctx, stdin, stderr)
	if err != nil {
		return err
	}
	regs, err := pick(set, *name, *all)
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError{fmt.Errorf("--timeout %s: must be positive", *timeout)}
	}
	// Every registry at once, each within its own timeout.
	results := make([]check.Result, len(regs))
	var wg sync.WaitGroup
	for i, r := range regs {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			results[i] = check.Login(cctx, r)
		})
	}
	wg.Wait()
	ok := true
	for _, res := range results {
		ok = ok && res.OK
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
