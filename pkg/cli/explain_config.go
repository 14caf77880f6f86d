package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
)

// serverFlags are the webhook server's flags explain needs: where its
// config is, this cluster's name, and the namespaces it never serves.
type serverFlags struct {
	namespace                          string
	configMap, configSecret, configKey string
	clusterName                        string
	exclude                            []string
}

func (s *serverFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&s.namespace, "regcred-namespace", "regcred", "regcred's namespace: its config, and a namespace it never serves.")
	fs.StringVar(&s.configMap, "config-configmap", "", "The ConfigMap in regcred's namespace that holds the config (default: as regcred's Deployment runs).")
	fs.StringVar(&s.configSecret, "config-secret", "", "The Secret in regcred's namespace that holds the config, instead of a ConfigMap.")
	fs.StringVar(&s.configKey, "config-key", "config.yaml", "The key of that ConfigMap or Secret (or of a --config-file manifest) that holds the config.")
	fs.StringVar(&s.clusterName, "cluster-name", "", "This cluster's name, for the registries' cluster policies (default: as regcred's Deployment runs).")
	fs.StringSliceVar(&s.exclude, "exclude-namespaces", nil, "Namespaces regcred never serves besides kube-system and its own (default: as regcred's Deployment runs).")
}

// options are the server's options these flags give.
func (s *serverFlags) options() app.Options {
	o := app.DefaultOptions()
	o.Namespace, o.ConfigMap, o.ConfigSecret, o.ConfigKey = s.namespace, s.configMap, s.configSecret, s.configKey
	o.ClusterName, o.ExcludeNamespaces = s.clusterName, s.exclude
	return o
}

// discover takes the config's ConfigMap or Secret, and the flags the admin
// did not give, from the args of regcred's Deployment in its namespace,
// parsed as the server parses them. It returns the Deployment's name.
func (s *serverFlags) discover(ctx context.Context, c client.Reader, changed func(string) bool) (string, error) {
	name, o, err := s.deployment(ctx, c)
	if err != nil {
		return "", err
	}
	s.configMap, s.configSecret = o.ConfigMap, o.ConfigSecret
	if !changed("config-key") {
		s.configKey = o.ConfigKey
	}
	s.takeUnchanged(o, changed)
	return name, nil
}

// takeUnchanged takes --cluster-name and --exclude-namespaces from o
// unless the admin gave them.
func (s *serverFlags) takeUnchanged(o *app.Options, changed func(string) bool) {
	if !changed("cluster-name") {
		s.clusterName = o.ClusterName
	}
	if !changed("exclude-namespaces") {
		s.exclude = o.ExcludeNamespaces
	}
}

// deploymentFlags are the flags explain takes from regcred's Deployment
// when the admin names the config: each is unknown without it.
var deploymentFlags = []struct {
	flag, what string
	plural     bool
}{
	{"cluster-name", "this cluster's name", false},
	{"exclude-namespaces", "the namespaces regcred excludes", true},
}

// discoverOthers takes the flags the admin did not give besides the
// config's location (--cluster-name, --exclude-namespaces) from regcred's
// Deployment, for an admin who named the config. It is best effort: when
// the Deployment cannot be read, it returns a note saying what is unknown.
func (s *serverFlags) discoverOthers(ctx context.Context, c client.Reader, changed func(string) bool) string {
	var missing, flags []string
	verb := "is"
	for _, f := range deploymentFlags {
		if !changed(f.flag) {
			missing = append(missing, fmt.Sprintf("%s (--%s)", f.what, f.flag))
			flags = append(flags, "--"+f.flag)
			if f.plural || len(missing) > 1 {
				verb = "are"
			}
		}
	}
	if len(missing) == 0 {
		return ""
	}
	_, o, err := s.deployment(ctx, c)
	if err != nil {
		return fmt.Sprintf("%s %s unknown: regcred's Deployment could not be read (%s); explained without %s (pass %s as regcred runs with %s)",
			strings.Join(missing, " and "), verb, err, pronoun(len(missing)), strings.Join(flags, " and "), pronoun(len(missing)))
	}
	s.takeUnchanged(o, changed)
	return ""
}

// deployment finds regcred's Deployment in its namespace and parses its
// container's args as the server parses them.
func (s *serverFlags) deployment(ctx context.Context, c client.Reader) (string, *app.Options, error) {
	var list appsv1.DeploymentList
	if err := c.List(ctx, &list, client.InNamespace(s.namespace)); err != nil {
		return "", nil, fmt.Errorf("looking for regcred's Deployment in namespace %q: %w", s.namespace, err)
	}
	type found struct {
		name string
		opts *app.Options
	}
	var hits []found
	for _, d := range list.Items {
		for _, ctr := range d.Spec.Template.Spec.Containers {
			if opts := serverOptions(ctr); opts != nil {
				hits = append(hits, found{d.Name, opts})
			}
		}
	}
	switch len(hits) {
	case 0:
		return "", nil, fmt.Errorf("no Deployment in namespace %q runs regcred with --config-configmap or --config-secret", s.namespace)
	case 1:
	default:
		names := make([]string, len(hits))
		for i, h := range hits {
			names[i] = h.name
		}
		return "", nil, fmt.Errorf("several Deployments in namespace %q run regcred (%s)", s.namespace, strings.Join(names, ", "))
	}
	return hits[0].name, hits[0].opts, nil
}

// serverOptions parses a container's arguments as regcred's server does;
// nil when they are not a regcred server's.
func serverOptions(ctr corev1.Container) *app.Options {
	args := append([]string(nil), ctr.Args...)
	if len(ctr.Command) > 1 {
		args = append(append([]string(nil), ctr.Command[1:]...), args...)
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	cmd := &cobra.Command{}
	opts := new(app.Options)
	*opts = app.DefaultOptions()
	bindServeOptions(cmd, opts)
	if err := cmd.ParseFlags(goStyleFlags(cmd.Flags(), args)); err != nil {
		return nil
	}
	if opts.ConfigMap == "" && opts.ConfigSecret == "" {
		return nil
	}
	return opts
}

// loaded is the config explain explains with.
type loaded struct {
	set *registries.Set
	// source says where the config is.
	source string
	// problems are the config's, when it is rejected.
	problems config.Problems
	// note, if any, says what of the server's flags is unknown.
	note string
}

// config loads the config to explain with: --config-file, or the live
// one, without reading the Secrets it names. Online, the server's flags
// the admin did not give are regcred's Deployment's.
func (e *explainCmd) config(ctx context.Context, c client.Reader, stdin io.Reader) (loaded, error) {
	var l loaded
	how := ""
	switch {
	case c == nil: // offline: nothing to look up
	case e.configFile == "" && e.server.configMap == "" && e.server.configSecret == "":
		deployment, err := e.server.discover(ctx, c, e.changed)
		if err != nil {
			return l, fmt.Errorf("finding regcred's config: %w: pass --config-configmap or --config-secret (and --cluster-name, --exclude-namespaces) as regcred runs with them", err)
		}
		how = fmt.Sprintf(" (as Deployment %s/%s runs)", e.server.namespace, deployment)
	default:
		l.note = e.server.discoverOthers(ctx, c, e.changed)
	}
	if e.configFile != "" {
		cf := common{file: e.configFile, key: e.server.configKey, cluster: e.server.clusterName, storedIn: e.storedIn, fallback: "configmap"}
		in, err := cf.read(stdin)
		if err != nil {
			return l, err
		}
		set, err := registries.Load(ctx, in.data, cf.options(nil))
		l.set = set
		l.problems, err = problemsOf(err)
		l.source = e.configFile
		if in.describe != "" {
			l.source += " (" + in.describe + ")"
		}
		return l, err
	}
	opts := e.server.options()
	src := opts.Source()
	data, _, err := src.Read(ctx, c)
	if err != nil {
		return l, err
	}
	set, err := registries.Load(ctx, data, registries.Options{ClusterName: opts.ClusterName, StoredIn: src.StoredIn})
	l.set, l.source = set, src.String()+how
	l.problems, err = problemsOf(err)
	return l, err
}

// problemsOf splits a load's error into the config's problems and any
// other error.
func problemsOf(err error) (config.Problems, error) {
	var ps config.Problems
	if errors.As(err, &ps) {
		return ps, nil
	}
	return nil, err
}
