// Command bunker backs up directory trees and streams into deduplicated,
// compressed, encrypted repositories.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/bunkerbackup/bunker/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
