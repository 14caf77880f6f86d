package cli

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/app"
)

func newServe() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the webhook server (the default command)",
		Long: `Run the webhook server: admit Pods, inject their pull secrets, and keep
those secrets up to date. regcred with no command does the same.

The registry config is read from a ConfigMap (--config-configmap) or a Secret
(--config-secret) in regcred's namespace, and watched.`,
		Example: `  # As the Helm chart runs it
  regcred serve --config-configmap=regcred-config --cluster-name=prod-eu --zap-log-level=info

  # On your machine, against a cluster
  regcred serve --kubeconfig ~/.kube/config --config-configmap=regcred-config --cert-dir ./certs`,
		Args: noArgs,
	}
	cmd.RunE = bindServe(cmd)
	return cmd
}

// bindServe binds the webhook server's flags to cmd and returns what runs
// the server with them.
func bindServe(cmd *cobra.Command) func(*cobra.Command, []string) error {
	opts := app.DefaultOptions()
	zapOpts := bindServeOptions(cmd, &opts)
	return runE(func(cmd *cobra.Command, _ []string) error {
		if err := opts.Validate(); err != nil {
			return usageError{err}
		}
		setGCPercent()
		stderr := cmd.ErrOrStderr()
		log := capVerbosity(zap.New(zap.UseFlagOptions(zapOpts), zap.WriteTo(stderr)), MaxVerbosity)
		ctrl.SetLogger(log)
		klog.SetLogger(log) // client-go's own lines (leader election) in the same format

		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = opts.Kubeconfig
		restConfig, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return fmt.Errorf("loading kubeconfig: %w", err)
		}
		restConfig.UserAgent = "regcred/" + Version
		a, err := app.New(opts, restConfig, app.Deps{Version: Version})
		if err != nil {
			return err
		}
		log.Info("Starting regcred", "version", Version, "namespace", opts.Namespace, "cluster", opts.ClusterName)
		return a.Start(ctrl.LoggerInto(cmd.Context(), log))
	})
}

// serverGCPercent is the webhook server's GOGC unless the environment
// sets one. Its live heap is small (about 5 MiB serving a few namespaces),
// so most of its memory under load is the room Go's collector leaves the
// heap to grow: half of the live heap instead of all of it lowered peak
// RSS under make bench-admission's load by about 3 MiB, for a CPU cost
// per request within that benchmark's noise.
const serverGCPercent = 50

// setGCPercent applies serverGCPercent, unless GOGC is set.
func setGCPercent() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
}

// bindServeOptions binds the server's flags, app.Options and zap's, to
// cmd; it returns zap's options.
func bindServeOptions(cmd *cobra.Command, opts *app.Options) *zap.Options {
	zapOpts := &zap.Options{}
	goFlags := flag.NewFlagSet("serve", flag.ContinueOnError)
	opts.BindFlags(goFlags)
	zapOpts.BindFlags(goFlags)
	cmd.Flags().AddGoFlagSet(goFlags)
	return zapOpts
}

// goStyleServeFlags rewrites the webhook server's flags written with one
// dash (-zap-log-level=debug), as Go's flag package accepted them before
// regcred's command line moved to kubectl's conventions, into their two-dash
// form, so that a server started as before still starts. Only serve's flags
// (regcred with no command, or regcred serve) are rewritten.
func goStyleServeFlags(root *cobra.Command, args []string) []string {
	switch {
	case root.Flags().Lookup("config-key") == nil:
		return args // the plugin's root has no server flags
	case len(args) > 0 && args[0] == "serve":
		return append([]string{"serve"}, goStyleFlags(root.Flags(), args[1:])...)
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		return args // another command
	}
	return goStyleFlags(root.Flags(), args)
}

// goStyleFlags rewrites -name and -name=value into --name and
// --name=value for the long flags of fs (and -help); single letters stay
// shorthands.
func goStyleFlags(fs *pflag.FlagSet, args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) > 1 && (fs.Lookup(name) != nil || name == "help") {
			out[i] = "-" + a
		}
	}
	return out
}
