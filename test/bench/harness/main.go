package harness

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Main runs a benchmark named name until it ends or is interrupted (it
// then still stops what it started), and exits 1 when it fails.
func Main(name string, run func(context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Sayer reports a benchmark's progress on stderr (its table goes to
// stdout).
func Sayer(name string) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, name+": "+format+"\n", args...)
	}
}

// List splits a comma-separated flag value; empty is none.
func List(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
