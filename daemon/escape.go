package daemon

// EscapeText makes a file name or a server's text safe to print on a
// terminal, as the command line prints them (control characters, invalid
// UTF-8 and bidirectional overrides escaped Go-style): for the commands
// that print the daemon's events themselves (camftpd-demo).
func EscapeText(s string) string { return escName(s) }
