// Command easymail is the Easymail outbound relay: `easymail serve` runs it, the other subcommands
// administer it through its REST API. See `easymail help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"easymail/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
