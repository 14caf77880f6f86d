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
	var list appsv1.DeploymentList
	if err := c.List(ctx, &list, client.InNamespace(s.namespace)); err != nil {
		return "", fmt.Errorf("looking for regcred's Deployment in namespace %q: %w", s.namespace, err)
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
		return "", fmt.Errorf("no Deployment in namespace %q runs regcred with --config-configmap or --config-secret", s.namespace)
	case 1:
	default:
		names := make([]string, len(hits))
		for i, h := range hits {
			names[i] = h.name
		}
		return "", fmt.Errorf("several Deployments in namespace %q run regcred (%s)", s.namespace, strings.Join(names, ", "))
	}
	o := hits[0].opts
	s.configMap, s.configSecret = o.ConfigMap, o.ConfigSecret
	if !changed("config-key") {
		s.configKey = o.ConfigKey
	}
	if !changed("cluster-name") {
		s.clusterName = o.ClusterName
	}
	if !changed("exclude-namespaces") {
		s.exclude = o.ExcludeNamespaces
	}
	return hits[0].name, nil
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

// config loads the config to explain with: --config-file, or the live
// one, without reading the Secrets it names. It returns the config, where
// it is, and its problems if it is rejected.
func (e *explainCmd) config(ctx context.Context, c client.Reader, stdin io.Reader) (*registries.Set, string, config.Problems, error) {
	if e.configFile != "" {
		cf := common{file: e.configFile, key: e.server.configKey, cluster: e.server.clusterName, fallback: "configmap"}
		in, err := cf.read(stdin)
		if err != nil {
			return nil, "", nil, err
		}
		set, err := registries.Load(ctx, in.data, cf.options(nil))
		ps, err := problemsOf(err)
		label := e.configFile
		if in.describe != "" {
			label += " (" + in.describe + ")"
		}
		return set, label, ps, err
	}
	how := ""
	if e.server.configMap == "" && e.server.configSecret == "" {
		deployment, err := e.server.discover(ctx, c, e.changed)
		if err != nil {
			return nil, "", nil, fmt.Errorf("finding regcred's config: %w: pass --config-configmap or --config-secret (and --cluster-name, --exclude-namespaces) as regcred runs with them", err)
		}
		how = fmt.Sprintf(" (as Deployment %s/%s runs)", e.server.namespace, deployment)
	}
	opts := e.server.options()
	src := opts.Source()
	data, _, err := src.Read(ctx, c)
	if err != nil {
		return nil, "", nil, err
	}
	set, err := registries.Load(ctx, data, registries.Options{ClusterName: opts.ClusterName, StoredIn: src.StoredIn})
	ps, err := problemsOf(err)
	return set, src.String() + how, ps, err
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
