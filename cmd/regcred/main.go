// Command regcred is a Kubernetes mutating admission webhook that gives
// every Pod the pull secrets of the private registries its images use.
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
	if err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !cli.Printed(err) {
			fmt.Fprintln(os.Stderr, "regcred:", err)
		}
		os.Exit(cli.ExitCode(err))
	}
}
