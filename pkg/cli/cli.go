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
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/app"
)

// Version is stamped at build time.
var Version = "dev"

// usageError is a command-line mistake: exit code 2.
type usageError struct{ error }

// ExitCode returns the process exit code for err: 2 for usage errors, 1
// otherwise (problems found, or a failure).
func ExitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `regcred gives every Pod the pull secrets of the private registries its images use.

Usage:
  regcred [serve] [flags]                          run the webhook server (regcred serve -h lists its flags)
  regcred validate -f config.yaml                  validate a registry config offline, every problem listed
  regcred match -f config.yaml [--cluster NAME] IMAGE...
                                                   which registry each image matches and which secret it gets, or why none
  regcred check -f config.yaml [--registry NAME | --all]
                                                   log in to registries now, as docker login does
  regcred render -f config.yaml [--registry NAME] [--show-secrets]
                                                   the .dockerconfigjson regcred would write (secrets redacted)
  regcred version

Every admin command takes -o json. Exit codes: 0 fine, 1 problems found, 2 usage error.
`

// Run runs the command line args.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		sub := map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) error{
			"validate": validate, "match": match, "check": checkCmd, "render": render,
		}
		switch cmd := args[0]; {
		case cmd == "serve":
			return serve(ctx, args[1:], stderr)
		case cmd == "version":
			_, err := fmt.Fprintln(stdout, Version)
			return err
		case cmd == "help" || cmd == "--help" || cmd == "-h":
			_, err := fmt.Fprint(stdout, usage)
			return err
		case sub[cmd] != nil:
			return sub[cmd](ctx, args[1:], stdin, stdout, stderr)
		}
	}
	return serve(ctx, args, stderr)
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("regcred serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nFlags of serve:\n")
		fs.PrintDefaults()
	}
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
	log := capVerbosity(zap.New(zap.UseFlagOptions(&zapOpts), zap.WriteTo(stderr)), MaxVerbosity)
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
	return a.Start(ctrl.LoggerInto(ctx, log))
}
