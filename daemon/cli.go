package daemon

import (
	"context"
	"fmt"
	"io"
)

// Version is stamped by the linker (-ldflags -X).
var Version = "dev"

// Main runs the command line with args (without the program name) and
// returns the process exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		fmt.Fprintln(stdout, "camftpd", Version)
		return 0
	}
	fmt.Fprintln(stderr, "camftpd: not implemented yet")
	return 2
}
