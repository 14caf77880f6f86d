package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
)

type validateResult struct {
	File       string   `json:"file"`
	Valid      bool     `json:"valid"`
	Registries int      `json:"registries"`
	Default    string   `json:"default,omitempty"`
	Problems   []string `json:"problems,omitempty"`
}

// validate checks a config offline with the webhook's own validation.
func validate(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("regcred validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.bind(fs, "configmap")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	res := validateResult{File: c.file}
	cfg, err := c.load(stdin)
	if err == nil {
		err = cfg.Validate(c.stored())
		res.Registries = len(cfg.Registries)
		if d := cfg.DefaultRegistry(); d != nil {
			res.Default = d.Name
		}
	}
	res.Valid, res.Problems = err == nil, lines(err)
	if c.output == "json" {
		if err := printJSON(stdout, res); err != nil {
			return err
		}
	} else if res.Valid {
		fmt.Fprintf(stdout, "%s: valid, %d registries", c.file, res.Registries)
		if res.Default != "" {
			fmt.Fprintf(stdout, " (default %s)", res.Default)
		}
		fmt.Fprintln(stdout)
	} else {
		for _, p := range res.Problems {
			fmt.Fprintf(stdout, "%s: %s\n", c.file, p)
		}
	}
	if !res.Valid {
		return errProblems
	}
	return nil
}
