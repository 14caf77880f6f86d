// Command regcred is a Kubernetes mutating admission webhook that gives
// every Pod the pull secrets of the private registries its images use, and
// the admin's command line. Installed as kubectl-regcred, it is a kubectl
// plugin.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/regcred/regcred/pkg/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful stop; a second one, during it,
	// ends the process at once, as Go does by default.
	context.AfterFunc(ctx, stop)
	if err := cli.RunAs(ctx, os.Args[0], os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !cli.Printed(err) {
			fmt.Fprintln(os.Stderr, "regcred:", err)
		}
		os.Exit(cli.ExitCode(err))
	}
}
