package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
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
	// kubeconfig and namespace locate the Secrets that secretKeyRefs name.
	kubeconfig, namespace string
	// reader, when set (by tests), resolves secretKeyRefs instead of a cluster.
	reader config.SecretReader
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

// parse parses the command line and checks the common flags.
func (c *common) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	return c.check(fs)
}

// read returns the config file's bytes.
func (c *common) read(stdin io.Reader) ([]byte, error) {
	if c.file == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(c.file)
}

// options are the load options regcred itself uses, with secrets
// resolving secretKeyRefs (nil: left unread).
func (c *common) options(secrets config.SecretReader) registries.Options {
	return registries.Options{
		Types:       registrytype.Builtin(registrytype.Deps{ECR: ecr.NewMinter(ecr.Options{})}),
		ClusterName: c.cluster,
		StoredIn:    c.stored(),
		Secrets:     secrets,
	}
}

// secrets returns what resolves secretKeyRefs: the cluster's Secrets when
// --kubeconfig was given, else nil (they are left unread).
func (c *common) secrets() (config.SecretReader, error) {
	if c.reader != nil || c.kubeconfig == "" {
		return c.reader, nil
	}
	return clusterSecrets(c.kubeconfig, c.namespace)
}

// load loads the config file as regcred loads every config.
func (c *common) load(ctx context.Context, stdin io.Reader) (*registries.Set, error) {
	data, err := c.read(stdin)
	if err != nil {
		return nil, err
	}
	secrets, err := c.secrets()
	if err != nil {
		return nil, err
	}
	return registries.Load(ctx, data, c.options(secrets))
}

// registries loads the config file; it prints the config's problems, if
// any, to stderr.
func (c *common) registries(ctx context.Context, stdin io.Reader, stderr io.Writer) (*registries.Set, error) {
	set, err := c.load(ctx, stdin)
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintf(stderr, "%s: %s\n", c.file, p.Error())
		}
		return nil, errProblems
	}
	return set, err
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
	if d := set.Default(); d != nil {
		return []*registries.Registry{d}, nil
	}
	return nil, usageError{errors.New("the config marks no registry default: name one with --registry, or use --all")}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// plural returns "1 registry", "2 registries".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
