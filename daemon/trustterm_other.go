//go:build !linux

package daemon

import "io"

// isTerminal is false off Linux (camftpd runs on Linux cameras): `camftpd
// trust` needs -yes there.
func isTerminal(io.Reader) bool { return false }
