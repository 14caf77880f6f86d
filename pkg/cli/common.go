package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
)

// common are the flags of the commands that read a config file.
type common struct {
	file   string
	output string
	// formats are the output formats the command prints (-o).
	formats []string
	// storedIn is the --stored-in flag; empty: inferred from the file
	// (a ConfigMap or a Secret manifest), else fallback.
	storedIn, fallback string
	key                string
	cluster            string
	// kubeconfig and namespace locate the Secrets that secretKeyRefs name.
	kubeconfig, namespace string
	// reader, when set (by tests), resolves secretKeyRefs instead of a cluster.
	reader config.SecretReader
	// in is the file as read, once read.
	in *input
}

// bind binds the flags every config command takes, -o text or json
// included; fallback is where a bare config is taken to be stored.
func (c *common) bind(fs *pflag.FlagSet, fallback string) {
	c.bindFile(fs, fallback)
	c.bindOutput(fs, "text", "json")
}

// bindFile binds the flags that find the config in the file.
func (c *common) bindFile(fs *pflag.FlagSet, fallback string) {
	c.fallback = fallback
	fs.StringVarP(&c.file, "filename", "f", "", "The registry config (YAML): a RegistryConfig, a ConfigMap or Secret manifest holding one, or the Helm chart's values file; - reads standard input.")
	bindStoredIn(fs, &c.storedIn, "for a bare config "+fallback)
	fs.StringVar(&c.key, "config-key", "config.yaml", "The key of the ConfigMap or Secret manifest that holds the config.")
}

// bindStoredIn binds --stored-in; bare says what a bare config defaults to.
func bindStoredIn(fs *pflag.FlagSet, storedIn *string, bare string) {
	fs.StringVar(storedIn, "stored-in", "", "Where the config is stored: configmap (credentials must be secretKeyRefs) or secret (inline credentials allowed). Default: the manifest's kind; for a values file configmap; "+bare+".")
}

// bindOutput binds -o, with the formats the command prints; the first is
// the default.
func (c *common) bindOutput(fs *pflag.FlagSet, formats ...string) {
	c.formats = formats
	fs.StringVarP(&c.output, "output", "o", formats[0], "Output format: "+strings.Join(formats, " or ")+".")
}

// bindCluster binds --cluster, for the commands whose answer depends on
// the registries' cluster policies.
func (c *common) bindCluster(fs *pflag.FlagSet) {
	fs.StringVar(&c.cluster, "cluster", "", "This cluster's name, for the registries' cluster policies (the server's --cluster-name).")
}

func (c *common) bindSecrets(fs *pflag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Read the Secrets that secretKeyRefs name from this cluster (default: only inline values).")
	fs.StringVar(&c.namespace, "namespace", "regcred", "regcred's namespace, where those Secrets are.")
}

// check checks the common flags.
func (c *common) check() error {
	if c.file == "" {
		return usageError{errors.New("-f FILE is required")}
	}
	if err := checkOutput(c.output, c.formats...); err != nil {
		return err
	}
	return checkStoredIn(c.storedIn)
}

// checkOutput checks -o against the formats the command prints (default:
// text and json).
func checkOutput(output string, formats ...string) error {
	if len(formats) == 0 {
		formats = []string{"text", "json"}
	}
	if !slices.Contains(formats, output) {
		return usageError{fmt.Errorf("-o %q: must be %s", output, strings.Join(formats, " or "))}
	}
	return nil
}

func checkStoredIn(storedIn string) error {
	if storedIn != "" && storedIn != "configmap" && storedIn != "secret" {
		return usageError{fmt.Errorf("--stored-in %q: must be configmap or secret", storedIn)}
	}
	return nil
}

// stored says where the config is stored: --stored-in, else what the file
// says, else the command's fallback.
func (c *common) stored() config.StoredIn {
	s := c.storedIn
	if s == "" && c.in != nil && c.in.storedIn != "" {
		return c.in.storedIn
	}
	if s == "" {
		s = c.fallback
	}
	if s == "secret" {
		return config.InSecret
	}
	return config.InConfigMap
}

// read reads the file and finds the config in it.
func (c *common) read(stdin io.Reader) (*input, error) {
	if c.in != nil {
		return c.in, nil
	}
	var raw []byte
	var err error
	if c.file == "-" {
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(c.file)
	}
	if err != nil {
		return nil, err
	}
	in, err := readInput(raw, c.key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.file, err)
	}
	if c.storedIn != "" && in.storedIn != "" && c.stored() != in.storedIn {
		return nil, usageError{fmt.Errorf("--stored-in %s: %s is a %s", c.storedIn, c.file, in.storedIn)}
	}
	c.in = in
	return in, nil
}

// cliECRBudget is how long a command waits for an ECR token: as long as a
// call to ECR may take (the command's own timeout, check's --timeout,
// bounds it too), not an admission's budget of a few seconds.
const cliECRBudget = time.Minute

// options are the load options regcred itself uses, with secrets
// resolving secretKeyRefs (nil: left unread).
func (c *common) options(secrets config.SecretReader) registries.Options {
	return registries.Options{
		Types:       registrytype.Builtin(registrytype.Deps{ECR: ecr.NewMinter(ecr.Options{Budget: cliECRBudget, CallTimeout: cliECRBudget})}),
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
	in, err := c.read(stdin)
	if err != nil {
		return nil, err
	}
	secrets, err := c.secrets()
	if err != nil {
		return nil, err
	}
	return registries.Load(ctx, in.data, c.options(secrets))
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

// printJSON prints v as indented JSON, for a terminal rather than a web
// page: <, > and & as they are (<redacted>, not \u003credacted\u003e).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// plural returns "1 registry", "2 registries".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
