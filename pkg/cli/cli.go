// Package cli is regcred's command line: the webhook server (serve, the
// default) and the admin's commands. It behaves like kubectl's: help with
// examples for every command (-h, --help, help), exit code 2 and a pointer
// to --help for a usage mistake, shell completion, and, when the binary is
// named kubectl-regcred, a kubectl plugin.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Version is stamped at build time.
var Version = "dev"

// PluginName is the binary's name as a kubectl plugin: on PATH under this
// name, `kubectl regcred ...` runs it.
const PluginName = "kubectl-regcred"

// usageError is a command-line mistake: exit code 2.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// ranError is an error of a command that ran (as opposed to one of the
// command line itself, which cobra reports before running anything).
type ranError struct{ error }

func (r ranError) Unwrap() error { return r.error }

// printedError is an error already told to the user.
type printedError struct{ error }

func (p printedError) Unwrap() error { return p.error }

// errProblems is returned when a command ran and found problems: exit 1,
// with the problems already printed.
var errProblems = errors.New("problems found")

// ExitCode returns the process exit code for err: 2 for usage errors, 1
// otherwise (problems found, or a failure).
func ExitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// Printed reports whether the command has already told the user about err.
func Printed(err error) bool {
	var p printedError
	return errors.Is(err, errProblems) || errors.As(err, &p)
}

// Run runs the command line args (without the program's name) as regcred.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return RunAs(ctx, "regcred", args, stdin, stdout, stderr)
}

// RunAs runs the command line args as the program named program (os.Args[0]).
// Named kubectl-regcred, it is a kubectl plugin: its usage reads `kubectl
// regcred`, and with no command it prints its help rather than starting the
// webhook server.
func RunAs(ctx context.Context, program string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	plugin := IsPlugin(program)
	root := newRoot(plugin, stdin, stdout, stderr)
	root.SetArgs(goStyleServeFlags(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	var ran ranError
	if errors.As(err, &ran) {
		return ran.error
	}
	// Anything else is a mistake in the command line: cobra's own (an
	// unknown command or flag) or a command's (usageError).
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "%s: %s\nSee '%s --help' for usage.\n", root.DisplayName(), err, cmd.CommandPath())
	return printedError{usageError{err}}
}

// IsPlugin reports whether program (os.Args[0]) names regcred as a kubectl
// plugin.
func IsPlugin(program string) bool {
	name := strings.TrimSuffix(filepath.Base(program), ".exe")
	return name == PluginName
}

const rootLong = `regcred gives every Pod the pull secrets of the private registries its images use.

With no command, regcred runs the webhook server (regcred serve --help lists
its flags); node-agent runs on every node when the chart's nodeTrust is
enabled. The other commands answer an admin's questions: explain reads a
Pod or workload and the live config from the cluster; validate, match, check
and render work on a config file.

Exit codes: 0 fine, 1 problems found (an invalid config, an image that gets
no secret, a failed login) or a failure, 2 a usage mistake.`

const pluginLong = `regcred explains, as the webhook decides, which pull secrets a Pod gets.

Installed as kubectl-regcred on PATH, it runs as a kubectl plugin: kubectl
regcred explain pod NAME -n NAMESPACE.

Exit codes: 0 fine, 1 problems found or a failure, 2 a usage mistake.`

// newRoot builds the command tree, reading and writing the streams given.
func newRoot(plugin bool, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "regcred",
		Short: "Give every Pod the pull secrets of the private registries its images use",
		Long:  rootLong,
		Example: `  # Run the webhook server (in a cluster, as the Helm chart does)
  regcred --config-configmap=regcred-config --cluster-name=prod-eu

  # Why did this Pod get (or not get) its pull secrets?
  regcred explain pod web-7d9c -n shop

  # Check a config before it ships
  regcred validate -f config.yaml`,
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		Args:                       noArgs,
	}
	if plugin {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl regcred"}
		root.Long = pluginLong
		root.Example = `  # Why did this Pod get (or not get) its pull secrets?
  kubectl regcred explain pod web-7d9c -n shop

  # Which pull secrets would this Deployment's Pods get?
  kubectl regcred explain deployment/web -n shop`
		root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	} else {
		run := bindServe(root)
		// The root command's flags are serve's: hidden from the root's
		// help, which lists the commands; serve --help lists them.
		root.Flags().VisitAll(func(f *pflag.Flag) { f.Hidden = true })
		root.RunE = run
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServe(), newNodeAgent(), newExplain(), newValidate(), newMatch(), newCheck(), newRender(), newVersion())
	// cobra's completion command, runnable so that an unknown shell is a
	// usage mistake rather than a silent help page.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	}
	if plugin {
		for _, c := range root.Commands() {
			c.Example = strings.ReplaceAll(c.Example, "  regcred ", "  kubectl regcred ")
			// A webhook server or a node agent is no kubectl plugin's
			// business, though either still runs.
			c.Hidden = c.Name() == "serve" || c.Name() == "node-agent"
		}
	}
	return root
}

// runE marks the errors of a command that ran, so that RunAs tells them
// apart from the command line's mistakes; a usageError stays one.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var u usageError
		if err == nil || errors.As(err, &u) {
			return err
		}
		return ranError{err}
	}
}

// noArgs refuses positional arguments; for a command with subcommands, the
// first one is an unknown command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasAvailableSubCommands() {
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return usageError{errors.New(msg)}
	}
	return usageError{fmt.Errorf("unexpected argument %q", args[0])}
}
