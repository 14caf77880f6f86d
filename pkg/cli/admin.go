package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/registries"
)

// errProblems is returned when a command ran and found problems: exit 1,
// with the problems already printed.
var errProblems = errors.New("problems found")

// Printed reports whether the command has already told the user about err.
func Printed(err error) bool { return errors.Is(err, errProblems) }

// common are the flags every admin subcommand takes.
type common struct {
	file     string
	output   string
	storedIn string
	cluster  string
	// secrets resolves secretKeyRefs (from a cluster), or nil.
	kubeconfig, namespace string
}

func (c *common) bind(fs *flag.FlagSet, storedIn string) {
	fs.StringVar(&c.file, "f", "", "The registry config file (YAML); - reads standard input.")
	fs.StringVar(&c.output, "o", "text", "Output format: text or json.")
	fs.StringVar(&c.storedIn, "stored-in", storedIn, "Where the config will be stored: configmap (credentials must be secretKeyRefs) or secret (inline credentials allowed).")
	fs.StringVar(&c.cluster, "cluster", "", "This cluster's name, for the registries' cluster policies.")
}

func (c *common) bindSecrets(fs *flag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Read the Secrets that secretKeyRefs name from this cluster (default: only inline values).")
	fs.StringVar(&c.namespace, "namespace", "regcred", "regcred's namespace, where those Secrets are.")
}

func (c *common) check(fs *flag.FlagSet) error {
	if c.file == "" {
		return usageError{errors.New("-f FILE is required")}
	}
	if c.output != "text" && c.output != "json" {
		return usageError{fmt.Errorf("-o %q: must be text or json", c.output)}
	}
	if c.storedIn != "configmap" && c.storedIn != "secret" {
		return usageError{fmt.Errorf("--stored-in %q: must be configmap or secret", c.storedIn)}
	}
	if fs.NArg() > 0 && fs.Name() != "regcred match" {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func (c *common) stored() config.StoredIn {
	if c.storedIn == "secret" {
		return config.InSecret
	}
	return config.InConfigMap
}

// load parses the config file.
func (c *common) load(stdin io.Reader) (*config.Config, error) {
	var data []byte
	var err error
	if c.file == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(c.file)
	}
	if err != nil {
		return nil, err
	}
	return config.Parse(data)
}

// parse parses the command line and checks the common flags.
func (c *common) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	return c.check(fs)
}

// registries loads and compiles the config file, resolving credentials
// unless skip; it prints the config's problems, if any, to stderr.
func (c *common) registries(ctx context.Context, stdin io.Reader, stderr io.Writer, skip bool) (*registries.Set, error) {
	cfg, err := c.load(stdin)
	if err != nil {
		return nil, err
	}
	set, err := c.build(ctx, cfg, skip)
	if err != nil {
		for _, p := range lines(err) {
			fmt.Fprintf(stderr, "%s: %s\n", c.file, p)
		}
		return nil, errProblems
	}
	return set, nil
}

// build compiles the config, resolving credentials unless skip.
func (c *common) build(ctx context.Context, cfg *config.Config, skip bool) (*registries.Set, error) {
	opts := registries.Options{ClusterName: c.cluster, StoredIn: c.stored(), SkipCredentials: skip, Tokens: ecr.NewMinter(ecr.Options{}).Provider}
	if !skip && c.kubeconfig != "" {
		r, err := clusterSecrets(c.kubeconfig, c.namespace)
		if err != nil {
			return nil, err
		}
		opts.Secrets = r
	}
	return registries.Build(ctx, cfg, opts)
}

// pick returns the named registry, or the default one, or (all) every one.
func pick(set *registries.Set, name string, all bool) ([]*registries.Registry, error) {
	switch {
	case name != "":
		r := set.Get(name)
		if r == nil {
			return nil, usageError{fmt.Errorf("no registry named %q in the config", name)}
		}
		return []*registries.Registry{r}, nil
	case all:
		return set.Registries, nil
	}
	for _, r := range set.Registries {
		if r.Default {
			return []*registries.Registry{r}, nil
		}
	}
	return nil, usageError{errors.New("the config marks no registry default: name one with --registry, or use --all")}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// lines splits a joined error into its problems.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}
