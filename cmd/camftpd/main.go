// Command camftpd is the camera's FTPES upload daemon; see package daemon.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/camftpd/camftpd/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := daemon.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
