// Package cli is regcred's command line: the webhook server (serve, the
// default) and the admin's subcommands.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/app"
)

// Version is stamped at build time.
var Version = "dev"

// usageError is a command-line mistake: exit code 2.
type usageError struct{ error }

// ExitCode returns the process exit code for err: 2 for usage errors, 1
// otherwise.
func ExitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// Run runs the command line args.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return serve(ctx, args[1:], stderr)
		case "version":
			_, err := fmt.Fprintln(stdout, Version)
			return err
		}
	}
	return serve(ctx, args, stderr)
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("regcred serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := app.DefaultOptions()
	opts.BindFlags(fs)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if err := opts.Validate(); err != nil {
		return usageError{err}
	}
	log := zap.New(zap.UseFlagOptions(&zapOpts), zap.WriteTo(stderr))
	ctrl.SetLogger(log)

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	restConfig, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	restConfig.UserAgent = "regcred/" + Version
	a, err := app.New(opts, restConfig)
	if err != nil {
		return err
	}
	log.Info("Starting regcred", "version", Version, "namespace", opts.Namespace, "cluster", opts.ClusterName)
	return a.Start(ctrl.LoggerInto(ctx, log))
}
