package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
)

const redacted = "<redacted>"

// render prints the .dockerconfigjson regcred would write for a registry,
// with its secrets redacted unless asked otherwise.
func render(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("regcred render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.bind(fs, "secret")
	c.bindSecrets(fs)
	name := fs.String("registry", "", "The registry (default: the config's default registry).")
	show := fs.Bool("show-secrets", false, "Print the password and auth fields instead of redacting them.")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	set, err := c.registries(ctx, stdin, stderr)
	if err != nil {
		return err
	}
	regs, err := pick(set, *name, false)
	if err != nil {
		return err
	}
	r := regs[0]
	switch {
	case r.Mode == config.ImagePullSecret && r.Provider == nil && len(r.Unresolved) == 0:
		return fmt.Errorf("registry %q injects the admin's secret %q; regcred writes none", r.Name, r.SecretName)
	case len(r.Unresolved) > 0:
		return usageError{fmt.Errorf("registry %q: %s come from Secrets (secretKeyRef): pass --kubeconfig (and --namespace, regcred's namespace) to read them from the cluster", r.Name, strings.Join(r.Unresolved, ", "))}
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
	if !*show {
		for _, a := range doc.Auths {
			a["password"], a["auth"] = redacted, redacted
		}
	}
	return printJSON(stdout, doc)
}
